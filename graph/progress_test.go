package graph

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oceangraph/oceangraph/graph/model"
	"github.com/oceangraph/oceangraph/upstream"
)

// scriptedPoll answers polls from a script of statuses (the last one repeats)
// and counts them; gate, when set, holds the first poll until it is closed.
type scriptedPoll struct {
	script []model.ActionStatus
	errs   []error // errs[i] replaces the i-th answer when non-nil
	gate   chan struct{}
	calls  atomic.Int32
	tokens sync.Map
}

func (s *scriptedPoll) poll(ctx context.Context, token, volumeID, actionID string) (*model.VolumeAction, upstream.RateLimit, error) {
	n := int(s.calls.Add(1)) - 1
	s.tokens.Store(token, true)
	if n == 0 && s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, upstream.RateLimit{}, ctx.Err()
		}
	}
	rl := upstream.RateLimit{Limit: 250, Remaining: 250 - n - 1}
	if n < len(s.errs) && s.errs[n] != nil {
		return nil, rl, s.errs[n]
	}
	st := s.script[min(n, len(s.script)-1)]
	return &model.VolumeAction{ID: actionID, Type: "attach_volume", Status: st, VolumeID: volumeID}, rl, nil
}

func fastHub(p *scriptedPoll) *progressHub {
	h := newProgressHub(p.poll)
	h.pollMin, h.pollMax = time.Millisecond, 2*time.Millisecond
	return h
}

// drain reads a subscription to its end and returns the statuses seen.
func drain(t *testing.T, sub subscription) []model.ActionStatus {
	t.Helper()
	var seen []model.ActionStatus
	timeout := time.After(10 * time.Second)
	for {
		select {
		case a, ok := <-sub.states:
			if !ok {
				return seen
			}
			seen = append(seen, a.Status)
		case <-timeout:
			t.Fatalf("the subscription did not end; saw %v", seen)
		}
	}
}

// Fifty subscribers of one action cost one poller's polls, and each sees the
// action go IN_PROGRESS → COMPLETED, then the end; nothing keeps running.
func TestProgressHubOnePollerForManySubscribers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := &scriptedPoll{script: []model.ActionStatus{model.ActionStatusInProgress, model.ActionStatusInProgress, model.ActionStatusInProgress, model.ActionStatusCompleted}, gate: make(chan struct{})}
	h := fastHub(p)
	var ratesSeen atomic.Int32
	subs := make([]subscription, 50)
	for i := range subs {
		subs[i] = h.subscribe("tok", "vol-1", "42", &watcher{onEvent: func(rl upstream.RateLimit) {
			if rl.Limit == 250 {
				ratesSeen.Add(1)
			}
		}})
	}
	if n := h.running(); n != 1 {
		t.Fatalf("%d pollers run for one action, want 1", n)
	}
	close(p.gate)
	for i, sub := range subs {
		got := drain(t, sub)
		if len(got) != 2 || got[0] != model.ActionStatusInProgress || got[1] != model.ActionStatusCompleted {
			t.Errorf("subscriber %d saw %v, want [IN_PROGRESS COMPLETED]", i, got)
		}
		sub.leave() // after the end: a no-op
	}
	if n := p.calls.Load(); n != 4 {
		t.Errorf("the poller polled %d times for 50 subscribers, want the script's 4", n)
	}
	if n := ratesSeen.Load(); n != 100 {
		t.Errorf("subscribers were told the rate limit %d times, want 100 (2 states × 50)", n)
	}
	if n := h.running(); n != 0 {
		t.Errorf("%d pollers still run after the action completed", n)
	}
}

// A subscriber who joins a running watch gets its newest state at once,
// without a poll of its own.
func TestProgressHubLateJoinerGetsNewestState(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := &scriptedPoll{script: []model.ActionStatus{model.ActionStatusInProgress}}
	h := fastHub(p)
	h.pollMin, h.pollMax = time.Hour, time.Hour // one poll, then a long wait
	first := h.subscribe("tok", "vol-1", "42", &watcher{})
	if a := <-first.states; a.Status != model.ActionStatusInProgress {
		t.Fatalf("first state %v", a.Status)
	}
	late := h.subscribe("tok", "vol-1", "42", &watcher{})
	select {
	case a := <-late.states:
		if a.Status != model.ActionStatusInProgress {
			t.Errorf("late joiner got %v, want IN_PROGRESS", a.Status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the late joiner got no state")
	}
	if n := p.calls.Load(); n != 1 {
		t.Errorf("%d polls, want 1: the late joiner must not poll", n)
	}
	first.leave()
	late.leave()
}

// When the last subscriber leaves, the poller stops (its in-flight poll is
// cancelled) and no goroutine is left behind; other tokens have their own.
func TestProgressHubStopsWhenLastSubscriberLeaves(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := &scriptedPoll{script: []model.ActionStatus{model.ActionStatusInProgress}}
	h := fastHub(p)
	a := h.subscribe("token-a", "vol-1", "42", &watcher{})
	b := h.subscribe("token-a", "vol-1", "42", &watcher{})
	c := h.subscribe("token-b", "vol-1", "42", &watcher{})
	if n := h.running(); n != 2 {
		t.Fatalf("%d pollers for two tokens, want 2", n)
	}
	<-a.states
	a.leave()
	if n := h.running(); n != 2 {
		t.Fatalf("%d pollers after one of two subscribers left, want 2", n)
	}
	b.leave()
	c.leave()
	c.leave()
	if n := h.running(); n != 0 {
		t.Fatalf("%d pollers after every subscriber left, want 0", n)
	}
	if _, ok := <-a.states; ok {
		// a's channel may hold one unread state; after it, closed.
		if _, ok := <-a.states; ok {
			t.Error("a departed subscriber's channel is not closed")
		}
	}
}

// Transient failures are retried with back-off and not shown; a lasting
// failure (here a 404) ends every subscriber with the error.
func TestProgressHubFailures(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	unavailable := &upstream.Error{Kind: upstream.KindHTTP, Status: 503}
	notFound := &upstream.Error{Kind: upstream.KindHTTP, Status: 404}
	p := &scriptedPoll{
		script: []model.ActionStatus{model.ActionStatusInProgress},
		errs:   []error{unavailable, unavailable, nil, notFound},
	}
	h := fastHub(p)
	var failed []error
	var mu sync.Mutex
	sub := h.subscribe("tok", "vol-1", "42", &watcher{fail: func(err error) {
		mu.Lock()
		failed = append(failed, err)
		mu.Unlock()
	}})
	got := drain(t, sub)
	if len(got) != 1 || got[0] != model.ActionStatusInProgress {
		t.Errorf("saw %v, want [IN_PROGRESS] (the 503s are retried quietly)", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 1 || !errors.Is(failed[0], notFound) {
		t.Errorf("failures reported %v, want the 404 once", failed)
	}
	if n := h.running(); n != 0 {
		t.Errorf("%d pollers after a lasting failure, want 0", n)
	}
}
