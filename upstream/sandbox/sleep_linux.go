package sandbox

import (
	"runtime"
	"syscall"
	"time"
)

// spinFor is the end of a wait spent yielding rather than asleep: nanosleep
// wakes 50-150 µs late here (the kernel's timer slack, then the vCPU's
// wake-up), and holds its P while asleep, so other answers due at the same
// moment wait behind it.
const spinFor = 150 * time.Microsecond

// sleepUntil sleeps the last (sub-millisecond) stretch of a wait: the
// runtime's timers wake on epoll's millisecond grid, up to 1 ms late, which an
// emulated 20 ms upstream cannot afford. nanosleep takes it to spinFor before
// the time (a signal cutting it short only lengthens the spin), then it yields
// until the time.
func sleepUntil(until time.Time) {
	if d := time.Until(until) - spinFor; d > 0 {
		ts := syscall.NsecToTimespec(int64(d))
		syscall.Nanosleep(&ts, nil)
	}
	for time.Now().Before(until) {
		runtime.Gosched()
	}
}
