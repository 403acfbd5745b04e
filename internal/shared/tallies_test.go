package shared

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

func TestTalliesKeepEveryBucketOfABusyToken(t *testing.T) {
	ts := newTallies(10)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 5 { // five seconds with calls: two inline, three beside
		ts.count("busy", t0.Add(time.Duration(i)*time.Second), int64(i+1), time.Minute)
	}
	if got := ts.count("busy", t0.Add(10*time.Second), 0, time.Minute); got.InWindow != 15 || got.Total != 15 || !got.Oldest.Equal(t0) {
		t.Fatalf("%+v, want 15 in the window, total 15, oldest t0", got)
	}
	if got := ts.count("busy", t0.Add(62*time.Second), 0, time.Minute); got.InWindow != 9 || !got.Oldest.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("62 s later: %+v, want the first three seconds out: 9, oldest t0+3 s", got)
	}
	if got := ts.count("busy", t0.Add(200*time.Second), 1, time.Minute); got.InWindow != 1 || got.Total != 16 || len(ts.more) != 0 {
		t.Fatalf("much later: %+v (%d records beside), want 1 in the window, total 16, none beside", got, len(ts.more))
	}
}

func TestIdleTalliesGoByTimeAsWellAsCount(t *testing.T) {
	ts := newTallies(100)
	now := time.Now()
	for i := range 10 {
		ts.count(fmt.Sprint("idle-", i), now, 1, time.Minute)
	}
	ts.epoch = ts.epoch.Add(-2 * tallyIdle) // two hours pass
	for i := range 5 {                      // each call frees up to two idle tallies
		ts.count(fmt.Sprint("new-", i), now, 1, time.Minute)
	}
	if n := ts.len(); n != 5 {
		t.Fatalf("%d tallies after two idle hours and 5 new tokens, want the 5 new", n)
	}
	for i := range 20 { // the freed records are reused before the slice grows
		ts.count(fmt.Sprint("more-", i), now, 1, time.Minute)
	}
	if len(ts.recs) != 25 {
		t.Fatalf("%d records for 25 tallies, want 25", len(ts.recs))
	}
}

// A one-off token's tally is a fixed-size record and an index entry: 134
// bytes with the slice's and the map's spare room, where a string-keyed LRU
// element, a tally and its buckets took 203 besides the key's 64.
func TestATallyCostsLittleMemory(t *testing.T) {
	const n = 20_000
	l := NewLocal(0)
	ctx := context.Background()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("budget:%043d", i)
	}
	before := liveHeap()
	for _, k := range keys {
		_, _ = l.Count(ctx, k, time.Now(), 1, time.Minute)
	}
	per := (int64(liveHeap()) - int64(before)) / n
	runtime.KeepAlive(l)
	runtime.KeepAlive(keys)
	t.Logf("%d bytes per tally; TallyBytes %d, the heap %d", per, l.TallyBytes(), per*n)
	if got, heap := float64(l.TallyBytes()), float64(per*n); got < 0.8*heap || got > 1.2*heap {
		t.Errorf("TallyBytes %.0f, the heap %.0f: want within 20%%", got, heap)
	}
	if per > 160 {
		t.Fatalf("%d bytes per tally, want at most 160", per)
	}
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
