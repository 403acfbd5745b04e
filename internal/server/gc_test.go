package server

import (
	"runtime/debug"
	"testing"
	"time"
)

func TestGCPercentDiscountsTheCache(t *testing.T) {
	const MiB = 1 << 20
	for _, tc := range []struct {
		name        string
		live, cache uint64
		want        int
	}{
		{"no cache", 40 * MiB, 0, 400},
		{"not measured yet", 0, 10 * MiB, 400},
		{"a full 64 MiB cache beside 16 MiB", 80 * MiB, 64 * MiB, 80},     // goal 64 + 5×16 = 144 MiB, not 400 MiB
		{"the cache counted above the live heap", 20 * MiB, 30 * MiB, 80}, // the goal floored at 16 MiB over it
		{"a small cache", 100 * MiB, 4 * MiB, 384},
		// The rest under the runtime's own floor (16 MiB at 400): goal 4 + 16 = 20 MiB, what 2 MiB
		// without a cache gets plus the cache (the floor at 4 MiB of the rest made it 22).
		{"a small heap beside the cache", 6 * MiB, 4 * MiB, 233},
	} {
		if got := gcPercentFor(400, tc.live, tc.cache); got != tc.want {
			t.Errorf("%s: GOGC %d for live %d MiB with a %d MiB cache, want %d", tc.name, got, tc.live/MiB, tc.cache/MiB, tc.want)
		}
	}
}

func TestTheGCAdapterSetsGOGCAndPutsItBack(t *testing.T) {
	old := debug.SetGCPercent(400)
	defer debug.SetGCPercent(old)
	a := &gcAdapter{percent: 400, set: 400, cacheBytes: func() uint64 { return 64 << 20 }}
	a.step(80 << 20)
	if got := debug.SetGCPercent(a.set); got != 80 || a.set != 80 {
		t.Fatalf("GOGC %d (adapter says %d) with 64 of 80 MiB live in the cache, want 80", got, a.set)
	}
	stop := adaptGC(400, func() uint64 { return 0 }, time.Hour)
	debug.SetGCPercent(123) // as a step would have left it
	stop()
	if got := debug.SetGCPercent(400); got != 400 {
		t.Fatalf("GOGC %d after the adapter stopped, want 400 back", got)
	}
}
