package graph

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// A call that frees a slot lets the call waiting for it start before its own
// answer is handed on (on one P, where the order is the scheduler's to choose).
// The scheduler takes from its global queue first once in 61 rounds (and a GC
// worker may run between), so the order is counted over 20 hand-overs: without
// the yield the waiting call never goes first.
func TestFreedSlotStartsTheWaitingCallFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const handovers = 20
	first := 0
	for range handovers {
		if waitingCallFirst(t) {
			first++
		}
	}
	if first <= handovers/2 {
		t.Errorf("the waiting call started before the freed call's answer was handed on in %d of %d hand-overs, want most", first, handovers)
	}
}

// waitingCallFirst runs one hand-over of a request's only slot and reports
// whether the waiting call started before the first call's answer was handed on.
func waitingCallFirst(t *testing.T) bool {
	s := newRequestScope(Config{MaxConcurrency: 1}, callerToken, nil)
	ctx := withScope(t.Context(), s)
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	release, waiting := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		callUpstream(ctx, func(context.Context) error {
			close(waiting)
			<-release
			return nil
		})
		record("answer handed on")
	})
	<-waiting
	wg.Go(func() {
		callUpstream(ctx, func(context.Context) error {
			record("waiting call started")
			return nil
		})
	})
	for !waitingForSlot() {
		runtime.Gosched() // until the second call waits for the slot
	}
	close(release)
	wg.Wait()
	return slices.Equal(events, []string{"waiting call started", "answer handed on"})
}

// waitingForSlot reports whether waitingCallFirst's second call waits in callUpstream's select.
func waitingForSlot() bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "[select]") && strings.Contains(g, "graph.callUpstream(") && strings.Contains(g, "waitingCallFirst") {
			return true
		}
	}
	return false
}
