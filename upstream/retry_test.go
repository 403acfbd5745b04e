package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// failThen answers the first n requests with status (and headers), then the fixture.
func failThen(t *testing.T, n int, status int, header http.Header, fixtureName string) http.HandlerFunc {
	var served atomic.Int32
	body := fixture(t, fixtureName)
	return func(w http.ResponseWriter, r *http.Request) {
		if int(served.Add(1)) <= n {
			for k, v := range header {
				w.Header()[k] = v
			}
			serveJSON(status, []byte(`{"id":"example_error","message":"some error message"}`))(w, r)
			return
		}
		serveJSON(http.StatusOK, body)(w, r)
	}
}

// attemptCounter is a Config.Observe that counts attempts.
type attemptCounter struct {
	mu    sync.Mutex
	calls []Call
}

func (a *attemptCounter) observe(_ context.Context, c Call) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, c)
}

func (a *attemptCounter) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

func TestTransientStatusesAreRetriedUntilTheBudgetIsSpent(t *testing.T) {
	for _, status := range []int{429, 502, 503, 504} {
		for _, tc := range []struct {
			maxRetries, wantAttempts int
		}{{0, 4}, {1, 2}, {-1, 1}} {
			t.Run(fmt.Sprintf("%d MaxRetries=%d", status, tc.maxRetries), func(t *testing.T) {
				do := newFakeDO(t)
				do.mux.Handle("GET /v2/volumes", failThen(t, 1000, status, nil, "volumes_all.json"))
				var obs attemptCounter
				c := newTestClient(t, do.URL, Config{MaxRetries: tc.maxRetries, Observe: obs.observe})

				_, err := c.ListVolumes(context.Background(), VolumeListOptions{})
				e := asError(t, err)
				if e.Status != status || e.Kind != KindHTTP || e.ID != "example_error" {
					t.Errorf("error = %+v, want the last answer: status %d with its body", e, status)
				}
				if n := len(do.seen()); n != tc.wantAttempts {
					t.Errorf("server saw %d attempts, want %d", n, tc.wantAttempts)
				}
				if obs.count() != tc.wantAttempts || e.Attempts != tc.wantAttempts {
					t.Errorf("Observe saw %d attempts and Error.Attempts = %d, want %d", obs.count(), e.Attempts, tc.wantAttempts)
				}
			})
		}
	}
}

func TestRetrySucceedsAfterTransientFailures(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/volumes", failThen(t, 2, http.StatusServiceUnavailable, nil, "volumes_all.json"))
	var obs attemptCounter
	c := newTestClient(t, do.URL, Config{Observe: obs.observe})

	page, err := c.ListVolumes(context.Background(), VolumeListOptions{Name: "example"})
	if err != nil {
		t.Fatalf("ListVolumes after two 503s: %v", err)
	}
	if len(page.Volumes) != 2 {
		t.Errorf("got %d volumes, want 2", len(page.Volumes))
	}
	for i, r := range do.seen() {
		if r.URL.RawQuery != "name=example" || r.Header.Get("User-Agent") != UserAgent {
			t.Errorf("attempt %d: query %q, User-Agent %q: a retry must send the same request", i+1, r.URL.RawQuery, r.Header.Get("User-Agent"))
		}
	}
	var statuses []int
	for i, call := range obs.calls {
		statuses = append(statuses, call.Status)
		if call.Attempt != i+1 || call.Endpoint != EndpointVolumes || call.URL != "/v2/volumes?name=example" || call.RateLimit != specRateLimit {
			t.Errorf("observed call %d = %+v", i+1, call)
		}
	}
	assertEqual(t, "observed statuses", statuses, []int{503, 503, 200})
}

func TestPermanentFailuresAreNotRetried(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 500} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.Handle("GET /v2/volumes/{id}", failThen(t, 1000, status, nil, "volume.json"))
			c := newTestClient(t, do.URL, Config{MaxRetries: 5})
			_, err := c.GetVolume(context.Background(), "x")
			if e := asError(t, err); e.Status != status {
				t.Errorf("status = %d, want %d", e.Status, status)
			}
			if n := len(do.seen()); n != 1 {
				t.Errorf("server saw %d attempts, want 1", n)
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/balance", failThen(t, 1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, "balance.json"))
	c := newTestClient(t, do.URL, Config{})

	if _, err := c.GetBalance(context.Background()); err != nil {
		t.Fatalf("GetBalance after a 429 with Retry-After: 1: %v", err)
	}
	gaps := do.gaps()
	if len(gaps) != 1 || gaps[0] < time.Second {
		t.Errorf("gaps between attempts = %v, want one of at least 1s", gaps)
	}
}

func TestLongRetryAfterIsReportedNotWaited(t *testing.T) {
	// Waiting 30s inside a GraphQL request helps nobody: the error carries the wait.
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/balance", failThen(t, 1000, http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}}, "balance.json"))
	c := newTestClient(t, do.URL, Config{RetryWaitMax: 5 * time.Second})

	_, err := c.GetBalance(context.Background())
	e := asError(t, err)
	if e.Status != 429 || e.RetryAfter != 30*time.Second {
		t.Errorf("error = %+v, want 429 with RetryAfter 30s", e)
	}
	if n := len(do.seen()); n != 1 {
		t.Errorf("server saw %d attempts, want 1", n)
	}
}

func TestNoRetryPastTheDeadline(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/balance", failThen(t, 1000, http.StatusServiceUnavailable, http.Header{"Retry-After": {"4"}}, "balance.json"))

	for _, tc := range []struct {
		name string
		cfg  Config
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"caller's deadline", Config{RetryWaitMax: 10 * time.Second}, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 3*time.Second)
		}},
		{"Config.Timeout", Config{RetryWaitMax: 10 * time.Second, Timeout: 3 * time.Second}, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(do.seen())
			c := newTestClient(t, do.URL, tc.cfg)
			ctx, cancel := tc.ctx()
			defer cancel()

			_, err := c.GetBalance(ctx)
			e := asError(t, err)
			if e.Status != 503 || e.RetryAfter != 4*time.Second || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error = %v (%+v), want the 503 itself with RetryAfter 4s, not a deadline error", err, e)
			}
			if ctx.Err() != nil {
				t.Errorf("returned after the deadline (%v); a wait that cannot fit must not be started", ctx.Err())
			}
			if n := len(do.seen()) - before; n != 1 {
				t.Errorf("server saw %d attempts, want 1", n)
			}
		})
	}
}

func TestCancelDuringRetryWaitReturnsTheLastAnswer(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/balance", failThen(t, 1000, http.StatusServiceUnavailable, http.Header{"Retry-After": {"3"}}, "balance.json"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel shortly after the first attempt, while the client waits 3s.
	c := newTestClient(t, do.URL, Config{Observe: func(context.Context, Call) { time.AfterFunc(50*time.Millisecond, cancel) }})

	_, err := c.GetBalance(ctx)
	e := asError(t, err)
	if e.Status != 503 || !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v (%+v), want the 503 wrapping context.Canceled", err, e)
	}
	if n := len(do.seen()); n != 1 {
		t.Errorf("server saw %d attempts, want 1", n)
	}
}

func TestResetConnectionsAreRetried(t *testing.T) {
	do := newFakeDO(t)
	var served atomic.Int32
	do.mux.HandleFunc("GET /v2/customers/my/balance", func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) <= 2 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.(*net.TCPConn).SetLinger(0) // close with RST
			conn.Close()
			return
		}
		serveJSON(http.StatusOK, fixture(t, "balance.json"))(w, r)
	})
	var obs attemptCounter
	c := newTestClient(t, do.URL, Config{Observe: obs.observe})

	b, err := c.GetBalance(context.Background())
	if err != nil {
		t.Fatalf("GetBalance after two reset connections: %v", err)
	}
	if b.AccountBalance != "12.23" {
		t.Errorf("AccountBalance = %q, want 12.23", b.AccountBalance)
	}
	if n := len(do.seen()); n != 3 {
		t.Errorf("server saw %d attempts, want 3", n)
	}
	for i, call := range obs.calls[:2] {
		if call.Status != 0 || call.Err == nil {
			t.Errorf("observed attempt %d = %+v, want no status and the transport error", i+1, call)
		}
	}
}

func TestRefusedConnectionIsRetriedThenReported(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	var obs attemptCounter
	c := newTestClient(t, "http://"+addr, Config{Observe: obs.observe})

	_, err = c.GetBalance(context.Background())
	e := asError(t, err)
	if e.Kind != KindTransport || e.Status != 0 || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error = %v (%+v), want KindTransport wrapping ECONNREFUSED", err, e)
	}
	if obs.count() != 1+DefaultMaxRetries {
		t.Errorf("observed %d attempts, want %d", obs.count(), 1+DefaultMaxRetries)
	}
}

func TestRetryWait(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	resp := func(status int, kv ...string) *http.Response {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return &http.Response{StatusCode: status, Header: h}
	}
	const waitMin, waitMax = 100 * time.Millisecond, 5 * time.Second
	cases := []struct {
		name     string
		resp     *http.Response
		attempt  int
		lo, hi   time.Duration
		wantStop bool
	}{
		{"first back-off", resp(503), 1, 50 * time.Millisecond, 100 * time.Millisecond, false},
		{"third back-off doubles twice", resp(503), 3, 200 * time.Millisecond, 400 * time.Millisecond, false},
		{"capped at the max", resp(502), 30, waitMax / 2, waitMax, false},
		{"connection reset", nil, 2, 100 * time.Millisecond, 200 * time.Millisecond, false},
		{"Retry-After seconds", resp(429, "Retry-After", "2"), 1, 2 * time.Second, 2*time.Second + waitMin, false},
		{"Retry-After date", resp(503, "Retry-After", now.Add(3*time.Second).Format(http.TimeFormat)), 1, 3 * time.Second, 3*time.Second + waitMin, false},
		{"Retry-After below the back-off", resp(503, "Retry-After", "0"), 3, 200 * time.Millisecond, 400 * time.Millisecond, false},
		{"ratelimit-reset on a 429", resp(429, "Ratelimit-Reset", strconv.FormatInt(now.Unix()+4, 10)), 1, 4 * time.Second, 4*time.Second + waitMin, false},
		{"ratelimit-reset in the past", resp(429, "Ratelimit-Reset", strconv.FormatInt(now.Unix()-60, 10)), 1, 50 * time.Millisecond, 100 * time.Millisecond, false},
		{"Retry-After beats ratelimit-reset", resp(429, "Retry-After", "1", "Ratelimit-Reset", strconv.FormatInt(now.Unix()+4, 10)), 1, time.Second, time.Second + waitMin, false},
		{"longer than the max", resp(429, "Retry-After", "6"), 1, 0, 0, true},
		{"reset an hour away", resp(429, "Ratelimit-Reset", strconv.FormatInt(now.Unix()+3600, 10)), 1, 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 { // jitter: every draw within bounds
				wait, ok := retryWait(tc.resp, tc.attempt, waitMin, waitMax, now)
				if ok == tc.wantStop {
					t.Fatalf("retryWait ok = %v, want %v", ok, !tc.wantStop)
				}
				if ok && (wait < tc.lo || wait > tc.hi) {
					t.Fatalf("retryWait = %v, want within [%v, %v]", wait, tc.lo, tc.hi)
				}
			}
		})
	}
}

func TestAFailedCallKeepsOtherPooledConnections(t *testing.T) {
	do := newFakeDO(t)
	both := make(chan struct{})
	var arrived atomic.Int32
	do.mux.HandleFunc("GET /v2/customers/my/balance", func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == 2 {
			close(both)
		}
		select { // hold the first two calls until both are in, so they use two connections
		case <-both:
		case <-r.Context().Done():
		}
		serveJSON(http.StatusOK, fixture(t, "balance.json"))(w, r)
	})
	do.mux.HandleFunc("GET /v2/volumes", hang)
	c := newTestClient(t, do.URL, Config{})

	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := c.GetBalance(context.Background()); err != nil {
				t.Errorf("GetBalance: %v", err)
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.ListVolumes(ctx, VolumeListOptions{}); err == nil {
		t.Fatal("ListVolumes on a hanging server succeeded")
	}
	if _, err := c.GetBalance(context.Background()); err != nil {
		t.Fatalf("GetBalance after the failure: %v", err)
	}
	if n := do.conns.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2: the failed call used one, the next call the other, still pooled", n)
	}
}
