package shared_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/logbuffer"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oceangraph/oceangraph/internal/redistest"
	"github.com/oceangraph/oceangraph/internal/shared"
)

// stores runs a test against each Store: in-process, and Redis on a real redis-server.
func stores(t *testing.T, test func(t *testing.T, s shared.Store)) {
	t.Run("local", func(t *testing.T) { test(t, shared.NewLocal(0)) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		r, err := shared.NewRedis(srv.URL(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		test(t, r)
	})
}

func TestStoreGetSetDeleteAndExpiry(t *testing.T) {
	stores(t, func(t *testing.T, s shared.Store) {
		ctx := context.Background()
		if _, err := s.Get(ctx, "absent"); !errors.Is(err, shared.ErrNotFound) {
			t.Fatalf("Get of an absent key: %v, want ErrNotFound", err)
		}
		if err := s.Set(ctx, "k", []byte("v1"), 0); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(ctx, "k"); err != nil || string(v) != "v1" {
			t.Fatalf("Get after Set = %q, %v; want v1", v, err)
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "k"); !errors.Is(err, shared.ErrNotFound) {
			t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
		}
		if err := s.Set(ctx, "short", []byte("x"), time.Second); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := s.Get(ctx, "short"); errors.Is(err, shared.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("an entry with a 1 s TTL still there after 5 s")
			}
			time.Sleep(50 * time.Millisecond) // polling the entry's expiry
		}
	})
}

func TestStoreSetNXClaimsOnce(t *testing.T) {
	stores(t, func(t *testing.T, s shared.Store) {
		ctx := context.Background()
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				ok, err := s.SetNX(ctx, "claim", []byte("me"), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d of 20 concurrent SetNX won the claim, want exactly 1", wins.Load())
		}
	})
}

func TestStoreCountSlidesOverTheWindow(t *testing.T) {
	stores(t, func(t *testing.T, s shared.Store) {
		ctx := context.Background()
		t0 := time.Unix(1_800_000_000, 0)
		must := func(tl shared.Tally, err error) shared.Tally {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return tl
		}
		must(s.Count(ctx, "c", t0, 5, time.Minute))
		must(s.Count(ctx, "c", t0.Add(30*time.Second), 7, time.Minute))
		got := must(s.Count(ctx, "c", t0.Add(59*time.Second), 0, time.Minute))
		if got.InWindow != 12 || got.Total != 12 || !got.Oldest.Equal(t0) {
			t.Fatalf("at +59 s: %+v, want 12 in window, total 12, oldest t0", got)
		}
		got = must(s.Count(ctx, "c", t0.Add(60*time.Second), 1, time.Minute))
		if got.InWindow != 8 || got.Total != 13 || !got.Oldest.Equal(t0.Add(30*time.Second)) {
			t.Fatalf("at +60 s: %+v, want the first bucket out of the window: 8, total 13, oldest +30 s", got)
		}
		got = must(s.Count(ctx, "c", t0.Add(60*time.Second), -1, time.Minute))
		if got.InWindow != 7 || got.Total != 12 {
			t.Fatalf("after a refund: %+v, want 7 in window, total 12", got)
		}
	})
}

// openShared opens a Shared on url with its own metrics registry and log buffer.
func openShared(t *testing.T, url string) (*shared.Shared, *prometheus.Registry, *logbuffer.Buffer) {
	t.Helper()
	return openSharedWait(t, url, 0)
}

// openSharedWait is openShared with a Redis wait of its own: tests of what is
// shared use a generous one, so a slow race-detector run is not an outage.
func openSharedWait(t *testing.T, url string, wait time.Duration) (*shared.Shared, *prometheus.Registry, *logbuffer.Buffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &logbuffer.Buffer{}
	s, err := shared.Open(context.Background(), shared.Options{
		RedisURL: url, Wait: wait, RetryEvery: 20 * time.Millisecond, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, reg, logs
}

func TestSharedSurvivesARedisOutageAndComesBack(t *testing.T) {
	srv := redistest.Start(t)
	s, reg, logs := openShared(t, srv.URL())
	ctx := context.Background()
	if !s.Up() {
		t.Fatal("shared tier not up with Redis running")
	}
	if err := s.Set(ctx, "before", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	start := time.Now()
	if err := s.Set(ctx, "during", []byte("2"), 0); err != nil {
		t.Fatalf("Set with Redis down returned an error to the caller: %v", err)
	}
	if v, err := s.Get(ctx, "during"); err != nil || string(v) != "2" {
		t.Fatalf("Get with Redis down = %q, %v; want the in-process value 2", v, err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("two calls with Redis down took %v; each should be bounded by the wait", waited)
	}
	if s.Up() {
		t.Fatal("Up() still true with Redis stopped")
	}
	if got := gauge(t, reg, "oceangraph_shared_tier_up"); got != 0 {
		t.Fatalf("oceangraph_shared_tier_up = %v with Redis down, want 0", got)
	}
	if got := counterSum(t, reg, "oceangraph_shared_tier_errors_total"); got < 1 {
		t.Fatalf("oceangraph_shared_tier_errors_total = %v, want ≥ 1", got)
	}
	if !strings.Contains(logs.String(), "going on in-process") {
		t.Fatalf("no log line about the outage; log:\n%s", logs.String())
	}

	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for !s.Up() {
		if time.Now().After(deadline) {
			t.Fatal("shared tier did not come back within 5 s of Redis restarting")
		}
		_, _ = s.Get(ctx, "probe")
		time.Sleep(10 * time.Millisecond) // polling for the tier's own retry
	}
	if err := s.Set(ctx, "after", []byte("3"), 0); err != nil {
		t.Fatal(err)
	}
	dump, err := srv.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(dump["oceangraph:after"]) != "3" {
		t.Fatalf("after the restart the value did not reach Redis; Redis holds %q", keys(dump))
	}
	if got := gauge(t, reg, "oceangraph_shared_tier_up"); got != 1 {
		t.Fatalf("oceangraph_shared_tier_up = %v after Redis came back, want 1", got)
	}
	if !strings.Contains(logs.String(), "sharing resumed") {
		t.Fatalf("no log line about the tier coming back; log:\n%s", logs.String())
	}
}

func TestSharedLogsAnOutageOnceNotPerCall(t *testing.T) {
	srv := redistest.Start(t)
	s, reg, logs := openShared(t, srv.URL())
	srv.Stop()
	ctx := context.Background()
	for range 200 {
		_, _ = s.Get(ctx, "k")
	}
	if n := strings.Count(logs.String(), "going on in-process"); n != 1 {
		t.Fatalf("%d outage log lines for 200 calls, want 1 (rate-limited)", n)
	}
	if got := counterSum(t, reg, "oceangraph_shared_tier_bypassed_total"); got < 100 {
		t.Fatalf("oceangraph_shared_tier_bypassed_total = %v for 200 calls while down, want most of them", got)
	}
}

func TestSharedStartsWithRedisDownAndWithoutFailing(t *testing.T) {
	srv := redistest.Start(t)
	url := srv.URL()
	srv.Stop()
	s, _, _ := openShared(t, url)
	if s.Up() {
		t.Fatal("Up() true although Redis was down at start")
	}
	if err := s.Set(context.Background(), "k", []byte("v"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
}

func TestSharedWithoutRedisIsInProcess(t *testing.T) {
	s, reg, _ := openShared(t, "")
	if s.Up() {
		t.Fatal("Up() true without a Redis URL")
	}
	if err := s.Set(context.Background(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if n, _ := testutil.GatherAndCount(reg); n != 0 {
		t.Fatalf("%d shared-tier metrics exported without Redis, want none", n)
	}
}

func TestSharedRejectsABadRedisURL(t *testing.T) {
	_, err := shared.Open(context.Background(), shared.Options{RedisURL: "http://nope"})
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Fatalf("Open with a bad URL: %v, want an error naming REDIS_URL", err)
	}
}

func TestAPQRegisteredAtOneReplicaRunsAtAnother(t *testing.T) {
	srv := redistest.Start(t)
	a, _, _ := openSharedWait(t, srv.URL(), 5*time.Second)
	b, _, _ := openSharedWait(t, srv.URL(), 5*time.Second)
	ctx := context.Background()
	shared.APQ{Store: a}.Add(ctx, "abc123", "{ balance { monthToDateUsage } }")
	q, ok := shared.APQ{Store: b}.Get(ctx, "abc123")
	if !ok || q != "{ balance { monthToDateUsage } }" {
		t.Fatalf("replica b: %q, %v; want the query registered at replica a", q, ok)
	}
	if _, ok := (shared.APQ{Store: b}).Get(ctx, "unknown"); ok {
		t.Fatal("an unknown hash was found")
	}
}

func TestRechecksAreSharedAndExpire(t *testing.T) {
	srv := redistest.Start(t)
	a, _, _ := openSharedWait(t, srv.URL(), 5*time.Second)
	b, _, _ := openSharedWait(t, srv.URL(), 5*time.Second)
	ctx := context.Background()
	tk := shared.TokenKey([]byte("secret"), "dop_v1_token")
	ra, rb := shared.Rechecks{Store: a, Every: time.Second}, shared.Rechecks{Store: b, Every: time.Second}
	if rb.Fresh(ctx, tk) {
		t.Fatal("fresh before any acceptance")
	}
	ra.Accepted(ctx, tk)
	if !rb.Fresh(ctx, tk) {
		t.Fatal("replica b does not see replica a's acceptance")
	}
	rb.Revoked(ctx, tk)
	if ra.Fresh(ctx, tk) {
		t.Fatal("replica a still fresh after replica b saw the token revoked")
	}
	ra.Accepted(ctx, tk)
	deadline := time.Now().Add(5 * time.Second)
	for rb.Fresh(ctx, tk) {
		if time.Now().After(deadline) {
			t.Fatal("mark with Every=1s still fresh after 5 s")
		}
		time.Sleep(50 * time.Millisecond) // polling the mark's expiry
	}
}

func TestIdempotencyAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, _, _ := openSharedWait(t, srv.URL(), 5*time.Second)
	b, _, _ := openSharedWait(t, srv.URL(), 5*time.Second)
	ctx := context.Background()
	ia, ib := shared.Idempotency{Store: a}, shared.Idempotency{Store: b}
	tk := shared.TokenKey([]byte("secret"), "tok")

	out, err := ia.Begin(ctx, tk, "key-1", "fp-1")
	if err != nil || out.Verdict != shared.Proceed {
		t.Fatalf("first Begin: %+v, %v; want Proceed", out, err)
	}
	if out, _ := ib.Begin(ctx, tk, "key-1", "fp-1"); out.Verdict != shared.InProgress {
		t.Fatalf("same mutation at replica b while a runs it: %v, want InProgress", out.Verdict)
	}
	if err := ia.Finish(ctx, tk, "key-1", "fp-1", []byte(`{"id":"v1"}`)); err != nil {
		t.Fatal(err)
	}
	out, _ = ib.Begin(ctx, tk, "key-1", "fp-1")
	if out.Verdict != shared.Replay || string(out.Answer) != `{"id":"v1"}` {
		t.Fatalf("replica b after a finished: %+v, want Replay of the first answer", out)
	}
	if out, _ := ib.Begin(ctx, tk, "key-1", "fp-2"); out.Verdict != shared.Mismatch {
		t.Fatalf("same key, other input: %v, want Mismatch", out.Verdict)
	}
	other := shared.TokenKey([]byte("secret"), "another token")
	if out, _ := ib.Begin(ctx, other, "key-1", "fp-1"); out.Verdict != shared.Proceed {
		t.Fatalf("same key under another token: %v, want Proceed (keys are per token)", out.Verdict)
	}
	if _, err := ia.Begin(ctx, tk, "key-2", "fp"); err != nil {
		t.Fatal(err)
	}
	if err := ia.Abandon(ctx, tk, "key-2"); err != nil {
		t.Fatal(err)
	}
	if out, _ := ib.Begin(ctx, tk, "key-2", "fp"); out.Verdict != shared.Proceed {
		t.Fatalf("after Abandon: %v, want Proceed", out.Verdict)
	}
}

func TestIdempotencyConcurrentIdenticalMutationsProceedOnce(t *testing.T) {
	srv := redistest.Start(t)
	replicas := []shared.Idempotency{}
	var regs []*prometheus.Registry
	for range 3 {
		s, reg, _ := openSharedWait(t, srv.URL(), 5*time.Second)
		replicas = append(replicas, shared.Idempotency{Store: s})
		regs = append(regs, reg)
	}
	var proceeded atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			out, err := replicas[i%3].Begin(context.Background(), "tk", "create-volume-7", "fp")
			if err != nil {
				t.Error(err)
			}
			if out.Verdict == shared.Proceed {
				proceeded.Add(1)
			}
		})
	}
	wg.Wait()
	for _, reg := range regs {
		if n := counterSum(t, reg, "oceangraph_shared_tier_errors_total"); n != 0 {
			t.Fatalf("%v Redis errors during the test: an outage, not what this test is about", n)
		}
	}
	if proceeded.Load() != 1 {
		t.Fatalf("%d of 30 identical concurrent mutations over 3 replicas proceeded, want 1", proceeded.Load())
	}
}

func TestTokenKeyHidesTheTokenAndDependsOnTheSecret(t *testing.T) {
	a := shared.TokenKey([]byte("secret-1"), "dop_v1_abc")
	if strings.Contains(a, "dop_v1_abc") || a == shared.TokenKey([]byte("secret-2"), "dop_v1_abc") ||
		a == shared.TokenKey([]byte("secret-1"), "dop_v1_abd") || a != shared.TokenKey([]byte("secret-1"), "dop_v1_abc") {
		t.Fatalf("TokenKey is not a keyed, deterministic hash: %q", a)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return counterSum(t, reg, name)
}

// counterSum adds up every series of a metric family.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	return 0
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestAWaitShorterThanASlowRedisCallFallsBackALongerOneWaits(t *testing.T) {
	srv := redistest.Start(t)
	short, shortReg, _ := openSharedWait(t, srv.URL(), 20*time.Millisecond)
	long, _, _ := openSharedWait(t, srv.URL(), 5*time.Second)
	ctx := context.Background()
	admin := srv.Client()
	if err := admin.Set(ctx, "oceangraph:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// A deliberately slow Redis: every client's next command waits out the pause.
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "400", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if v, err := short.Get(ctx, "k"); !errors.Is(err, shared.ErrNotFound) {
		t.Fatalf("Get with a 20ms wait on a paused Redis = %q, %v; want the in-process miss", v, err)
	}
	if waited := time.Since(start); waited > 300*time.Millisecond {
		t.Fatalf("the 20ms wait held the caller %v", waited)
	}
	if short.Up() || counterSum(t, shortReg, "oceangraph_shared_tier_errors_total") < 1 {
		t.Fatal("the timed-out call was not counted as the shared tier failing")
	}
	if v, err := long.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get with a 5s wait on a Redis paused for 400ms = %q, %v; want Redis's value v", v, err)
	}
	if !long.Up() {
		t.Fatal("the 5s wait counted a slow answer as an outage")
	}
}

func TestRemoteIsRedisAloneAndNoneWithoutIt(t *testing.T) {
	if r := openSharedQuiet(t, "").Remote(); r != nil {
		t.Fatalf("Remote() without Redis = %v, want nil (the cache's memory is the one in-process copy)", r)
	}
	srv := redistest.Start(t)
	s := openSharedQuiet(t, srv.URL())
	ctx := context.Background()
	if err := s.Remote().Set(ctx, "shared", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Remote().Get(ctx, "shared"); err != nil || string(v) != "1" {
		t.Fatalf("Remote().Get = %q, %v; want 1 from Redis", v, err)
	}
	srv.Stop()
	if err := s.Remote().Set(ctx, "during", []byte("2"), 0); err == nil && s.Up() {
		t.Fatal("a write with Redis stopped neither failed nor took the tier down")
	}
	for range 3 { // down: writes dropped, reads miss, nothing kept in-process
		_ = s.Remote().Set(ctx, "during", []byte("2"), 0)
	}
	if v, err := s.Get(ctx, "during"); !errors.Is(err, shared.ErrNotFound) {
		t.Fatalf("with Redis down, Remote().Set left %q in-process (err %v); want nothing kept", v, err)
	}
	if _, err := s.Remote().Get(ctx, "shared"); err == nil {
		t.Fatal("with Redis down, Remote().Get found a value")
	}
}

func openSharedQuiet(t *testing.T, url string) *shared.Shared {
	t.Helper()
	s, err := shared.Open(context.Background(), shared.Options{RedisURL: url, Wait: time.Second, RetryEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestLocalTalliesAreBoundedAndKeepTheActive(t *testing.T) {
	l := shared.NewLocal(0)
	ctx := context.Background()
	now := time.Now()
	if _, err := l.Count(ctx, "budget:active", now, 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	for i := range 100_000 { // a fresh token a request: each leaves a tally
		_, _ = l.Count(ctx, fmt.Sprint("budget:cold-", i), now, 1, time.Minute)
		if i%1000 == 0 {
			_, _ = l.Count(ctx, "budget:active", now, 0, time.Minute)
		}
	}
	if n := shared.TallyCount(l); n > 20_000 {
		t.Fatalf("%d tallies kept after 100,000 fresh tokens, want at most 20,000", n)
	}
	if got, _ := l.Count(ctx, "budget:active", now, 0, time.Minute); got.InWindow != 3 {
		t.Fatalf("a token in use lost its tally among fresh ones: %+v, want 3 in the window", got)
	}
}
