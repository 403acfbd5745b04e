package server

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The Go GC's heap goal is the live heap times (1 + GOGC/100). With GOGC=400
// a full 64 MiB cache made that goal five times the cache: peak RSS rose by
// four budgets, not one. gcAdapter discounts the cache from it: the goal
// becomes the cache plus (1 + GOGC/100) times the rest of the live heap, so
// the cache costs its budget and collections come as often as without it.

// heapMinimum is the runtime's own floor of the heap goal at GOGC=100 (it
// scales with GOGC: 16 MiB at 400), which keeps a nearly empty heap from
// collecting constantly. The adapter floors the rest of the goal at the same
// figure, so that a small live heap beside the cache gets the goal it would
// get without one, and the cache costs its bytes, not its bytes and a floor.
const heapMinimum = 4 << 20

// gcPercentFor is the GOGC that puts the heap goal at
// cache + max((1+percent/100) × (live - cache), heapMinimum × percent/100).
func gcPercentFor(percent int, live, cache uint64) int {
	if live == 0 || cache == 0 {
		return percent
	}
	cache = min(cache, live)
	goal := cache + max((live-cache)*uint64(100+percent)/100, heapMinimum*uint64(percent)/100)
	if goal >= live*uint64(100+percent)/100 {
		return percent
	}
	return max(int(100*goal/live)-100, 1)
}

type gcAdapter struct {
	percent    int
	cacheBytes func() uint64
	set        int // the GOGC last set
	sample     []metrics.Sample
}

// adaptGC runs the adapter every interval until stop is called, and puts GOGC back to percent then.
func adaptGC(percent int, cacheBytes func() uint64, interval time.Duration) (stop func()) {
	a := &gcAdapter{percent: percent, cacheBytes: cacheBytes, set: percent,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				debug.SetGCPercent(percent)
				return
			case <-tick.C:
				metrics.Read(a.sample)
				a.step(a.sample[0].Value.Uint64())
			}
		}
	}()
	return func() { close(done); <-finished }
}

// step sets GOGC for the live heap of the last collection, when it moved by more than a twentieth.
func (a *gcAdapter) step(live uint64) {
	p := gcPercentFor(a.percent, live, a.cacheBytes())
	if d := p - a.set; d*20 > a.set || -d*20 > a.set {
		debug.SetGCPercent(p)
		a.set = p
	}
}
