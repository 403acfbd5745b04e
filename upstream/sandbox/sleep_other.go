//go:build !linux

package sandbox

import "time"

// sleepUntil sleeps the last stretch of a wait (see sleep_linux.go).
func sleepUntil(until time.Time) { time.Sleep(time.Until(until)) }
