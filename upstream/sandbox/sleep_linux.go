package sandbox

import (
	"syscall"
	"time"
)

// finishSleep sleeps the last (sub-millisecond) stretch of a wait with
// nanosleep: the runtime's timers wake on epoll's millisecond grid, up to
// 1 ms late, which an emulated 20 ms upstream cannot afford.
func finishSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.Nanosleep(&ts, nil)
}
