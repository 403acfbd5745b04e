package sandbox

import (
	"syscall"
	"time"
)

// sleepUntil sleeps the last (sub-millisecond) stretch of a wait with
// nanosleep, again after each signal that cuts it short (the runtime's
// preemption signals do): the runtime's timers wake on epoll's millisecond
// grid, up to 1 ms late, which an emulated 20 ms upstream cannot afford.
func sleepUntil(until time.Time) {
	for d := time.Until(until); d > 0; d = time.Until(until) {
		ts := syscall.NsecToTimespec(int64(d))
		syscall.Nanosleep(&ts, nil)
	}
}
