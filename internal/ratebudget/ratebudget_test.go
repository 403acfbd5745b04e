package ratebudget_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/ratebudget"
	"github.com/oceangraph/oceangraph/internal/redistest"
	"github.com/oceangraph/oceangraph/internal/shared"
)

// clock is a settable clock shared by the "replicas" of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stores runs a test with the budget's state in-process, and in Redis.
func stores(t *testing.T, test func(t *testing.T, open func() shared.Store)) {
	t.Run("local", func(t *testing.T) {
		s := shared.NewLocal(0)
		test(t, func() shared.Store { return s })
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		test(t, func() shared.Store { return openRedis(t, srv.URL()) })
	})
}

func openRedis(t *testing.T, url string) *shared.Shared {
	t.Helper()
	s, err := shared.Open(context.Background(), shared.Options{RedisURL: url, Wait: 5 * time.Second, RetryEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

const dashboard = 27 // upstream calls of a cold dashboard

func TestReserveRefusesWholeOperationsPastThePerMinuteLimit(t *testing.T) {
	stores(t, func(t *testing.T, open func() shared.Store) {
		clk := newClock()
		b := ratebudget.New(ratebudget.Options{Store: open(), PerMinute: 250, Reserve: 5, Now: clk.Now})
		ctx := context.Background()
		for i := range 9 { // 9 × 27 = 243 ≤ 250 − 5
			if _, ok, _ := b.Reserve(ctx, "tk", dashboard); !ok {
				t.Fatalf("dashboard %d refused with %d of 250 calls used", i+1, i*dashboard)
			}
			clk.Advance(time.Second)
		}
		_, ok, retry := b.Reserve(ctx, "tk", dashboard)
		if ok {
			t.Fatal("a 10th dashboard (270 calls in a minute) was admitted")
		}
		if retry != 53*time.Second { // the first dashboard's calls leave the window (60 s + 2 s of margin) 62 s after they were made, 9 s ago
			t.Fatalf("retryAfter = %v, want 53s", retry)
		}
		if _, ok, _ := b.Reserve(ctx, "tk", 1); !ok {
			t.Fatal("a single cheap call was refused although the reserve is kept for it")
		}
		if _, ok, _ := b.Reserve(ctx, "other-token", dashboard); !ok {
			t.Fatal("another token's dashboard was refused: budgets are per token")
		}
		clk.Advance(53 * time.Second)
		if _, ok, _ := b.Reserve(ctx, "tk", dashboard); !ok {
			t.Fatal("refused after the first dashboard's calls left the minute")
		}
	})
}

func TestRefusalLeavesTheBudgetAsItWas(t *testing.T) {
	stores(t, func(t *testing.T, open func() shared.Store) {
		b := ratebudget.New(ratebudget.Options{Store: open(), PerMinute: 30, Reserve: -1, Now: newClock().Now})
		ctx := context.Background()
		if _, ok, _ := b.Reserve(ctx, "tk", 20); !ok {
			t.Fatal("20 of 30 refused")
		}
		for range 5 {
			if _, ok, _ := b.Reserve(ctx, "tk", 20); ok {
				t.Fatal("20 more admitted with 10 left")
			}
		}
		if _, ok, _ := b.Reserve(ctx, "tk", 10); !ok {
			t.Fatal("the last 10 refused: refusals consumed budget")
		}
	})
}

func TestSettleCountsTheCallsReallyMade(t *testing.T) {
	stores(t, func(t *testing.T, open func() shared.Store) {
		b := ratebudget.New(ratebudget.Options{Store: open(), PerMinute: 50, Reserve: -1, Now: newClock().Now})
		ctx := context.Background()
		r, ok, _ := b.Reserve(ctx, "tk", dashboard)
		if !ok {
			t.Fatal("refused")
		}
		r.Settle(ctx, 3) // a warm dashboard: 3 calls made, the cache answered the rest
		r2, ok, _ := b.Reserve(ctx, "tk", 40)
		if !ok {
			t.Fatal("40 refused although only 3 of 50 were spent")
		}
		r2.Settle(ctx, 45) // retries: more calls than reserved
		if _, ok, _ := b.Reserve(ctx, "tk", 3); ok {
			t.Fatal("3 admitted with 48 of 50 spent")
		}
		if _, ok, _ := b.Reserve(ctx, "tk", 2); !ok {
			t.Fatal("the last 2 of 50 refused")
		}
	})
}

func TestObservedRemainingBoundsTheBudget(t *testing.T) {
	stores(t, func(t *testing.T, open func() shared.Store) {
		clk := newClock()
		b := ratebudget.New(ratebudget.Options{Store: open(), PerMinute: 250, Reserve: 5, Now: clk.Now})
		ctx := context.Background()
		// Something else used the token: DigitalOcean says 100 are left, reset in 20 s.
		b.Observe(ctx, "tk", ratebudget.Observation{Remaining: 100, Reset: clk.Now().Add(20 * time.Second)})
		for i := range 2 { // 54 + 5 ≤ 100
			if _, ok, _ := b.Reserve(ctx, "tk", dashboard); !ok {
				t.Fatalf("dashboard %d refused with 100 remaining", i+1)
			}
		}
		if _, ok, _ := b.Reserve(ctx, "tk", dashboard); !ok {
			t.Fatal("3rd dashboard refused: 100 − 54 = 46 ≥ 27 + 5")
		}
		_, ok, retry := b.Reserve(ctx, "tk", dashboard)
		if ok {
			t.Fatal("4th dashboard admitted with 19 calls left by DigitalOcean's count")
		}
		if retry != 20*time.Second {
			t.Fatalf("retryAfter = %v, want 20s (DigitalOcean's reset)", retry)
		}
		clk.Advance(21 * time.Second) // past the reset: the observation no longer binds
		if _, ok, _ := b.Reserve(ctx, "tk", dashboard); !ok {
			t.Fatal("refused after DigitalOcean's reset, with 81 of 250 used by our count")
		}
	})
}

// keys records the keys a store is asked to set.
type keys struct {
	shared.Store
	mu  sync.Mutex
	set []string
}

func (k *keys) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	k.mu.Lock()
	k.set = append(k.set, key)
	k.mu.Unlock()
	return k.Store.Set(ctx, key, value, ttl)
}

// An observation that says no more than our own count (the token used only
// through us) is not stored, and replaces an older, tighter one, as a stored
// observation would: the budget answers as if every observation were kept.
func TestAnObservationThatAddsNothingIsNotKept(t *testing.T) {
	stores(t, func(t *testing.T, open func() shared.Store) {
		clk := newClock()
		store := &keys{Store: open()}
		b := ratebudget.New(ratebudget.Options{Store: store, PerMinute: 250, Reserve: 5, Now: clk.Now})
		ctx := context.Background()
		r, ok, _ := b.Reserve(ctx, "tk", 1)
		if !ok {
			t.Fatal("refused")
		}
		r.Settle(ctx, 1)
		b.Observe(ctx, "tk", ratebudget.Observation{Remaining: 249, Reset: clk.Now().Add(60 * time.Second)})
		if len(store.set) != 0 {
			t.Fatalf("an observation agreeing with our count was stored: %q", store.set)
		}

		b.Observe(ctx, "tk", ratebudget.Observation{Remaining: 30, Reset: clk.Now().Add(60 * time.Second)})
		if len(store.set) != 1 {
			t.Fatalf("an observation of calls made elsewhere was not stored: %q", store.set)
		}
		if _, ok, _ := b.Reserve(ctx, "tk", dashboard); ok {
			t.Fatal("27 + 5 calls admitted with 30 left by DigitalOcean's count")
		}
		clk.Advance(time.Second)
		// Newer: DigitalOcean's count came down to ours again (the other use left its minute).
		b.Observe(ctx, "tk", ratebudget.Observation{Remaining: 249, Reset: clk.Now().Add(59 * time.Second)})
		if _, ok, _ := b.Reserve(ctx, "tk", dashboard); !ok {
			t.Fatal("refused after the newest observation agreed with our count: an older one still bound")
		}
	})
}

func TestTwoReplicasShareOneBudget(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	replicas := []*ratebudget.Budget{
		ratebudget.New(ratebudget.Options{Store: openRedis(t, srv.URL()), Reserve: 5, Now: clk.Now}),
		ratebudget.New(ratebudget.Options{Store: openRedis(t, srv.URL()), Reserve: 5, Now: clk.Now}),
	}
	ctx := context.Background()
	admitted := 0
	for i := range 20 {
		if _, ok, _ := replicas[i%2].Reserve(ctx, "tk", dashboard); ok {
			admitted++
		}
	}
	if admitted != 9 {
		t.Fatalf("%d dashboards admitted over two replicas in one minute, want 9 (243 of 250 with 5 reserved)", admitted)
	}
	// An observation made at one replica binds the other.
	replicas[0].Observe(ctx, "tk2", ratebudget.Observation{Remaining: 10, Reset: clk.Now().Add(30 * time.Second)})
	if _, ok, _ := replicas[1].Reserve(ctx, "tk2", dashboard); ok {
		t.Fatal("replica 2 admitted 27 calls after replica 1 saw only 10 remaining")
	}
}

func TestConcurrentReplicasNeverOverspend(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	var replicas []*ratebudget.Budget
	for range 3 {
		replicas = append(replicas, ratebudget.New(ratebudget.Options{Store: openRedis(t, srv.URL()), Reserve: 5, Now: clk.Now}))
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if _, ok, _ := replicas[i%3].Reserve(context.Background(), "tk", dashboard); ok {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n == 0 || n*dashboard > 250-5 {
		t.Fatalf("%d dashboards admitted concurrently (%d calls), want 1..9 (≤ 245 calls)", n, n*dashboard)
	}
}

func TestRedisOutageStillAnswers(t *testing.T) {
	srv := redistest.Start(t)
	s, err := shared.Open(context.Background(), shared.Options{RedisURL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := ratebudget.New(ratebudget.Options{Store: s, Reserve: 5})
	srv.Stop()
	start := time.Now()
	if _, ok, _ := b.Reserve(context.Background(), "tk", dashboard); !ok {
		t.Fatal("refused with Redis down and nothing spent")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Reserve took %v with Redis down", d)
	}
}
