//go:build !linux

package sandbox

import "time"

// finishSleep sleeps the last stretch of a wait (see sleep_linux.go).
func finishSleep(d time.Duration) { time.Sleep(d) }
