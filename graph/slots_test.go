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
func TestFreedSlotStartsTheWaitingCallFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
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
		record("first call's answer handed on")
	})
	<-waiting
	wg.Go(func() {
		callUpstream(ctx, func(context.Context) error {
			record("second call started")
			return nil
		})
	})
	for !waitingForSlot() {
		runtime.Gosched() // until the second call waits for the slot
	}
	close(release)
	wg.Wait()
	if want := []string{"second call started", "first call's answer handed on"}; !slices.Equal(events, want) {
		t.Errorf("events %q, want %q", events, want)
	}
}

// waitingForSlot reports whether a goroutine waits in callUpstream's select.
func waitingForSlot() bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "[select]") && strings.Contains(g, "graph.callUpstream(") {
			return true
		}
	}
	return false
}
