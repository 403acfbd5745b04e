package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests of retry.go's rule for writes: a POST or DELETE is never sent
// again once it may have reached DigitalOcean. Each counts the requests the
// stub received, for every write endpoint, with the default retry budget.

func TestWritesAreNotRetriedAfterAnAnswer(t *testing.T) {
	for _, tc := range []struct {
		status  int
		header  http.Header
		outcome Outcome
	}{
		{500, nil, OutcomeUnknown},
		{502, nil, OutcomeUnknown},
		{503, http.Header{"Retry-After": {"0"}}, OutcomeUnknown},
		{504, nil, OutcomeUnknown},
		{429, http.Header{"Retry-After": {"0"}}, OutcomeNotApplied},
		{422, nil, OutcomeNotApplied},
	} {
		for _, ep := range everyWrite {
			t.Run(fmt.Sprintf("%d %s", tc.status, ep.name), func(t *testing.T) {
				do := newFakeDO(t)
				do.mux.Handle(ep.pattern, failThen(t, 1000, tc.status, tc.header, "volume.json"))
				var obs attemptCounter
				c := newTestClient(t, do.URL, Config{Observe: obs.observe})

				e := asError(t, ep.call(context.Background(), c))
				if n := len(do.seen()); n != 1 || e.Attempts != 1 || obs.count() != 1 {
					t.Errorf("stub saw %d requests, Attempts = %d, observed %d; want 1 each", n, e.Attempts, obs.count())
				}
				if e.Status != tc.status || e.Outcome != tc.outcome {
					t.Errorf("error = %v, outcome %v; want status %d, outcome %v", e, e.Outcome, tc.status, tc.outcome)
				}
			})
		}
	}
	t.Run("a GET on the same 503 is retried", func(t *testing.T) {
		do := newFakeDO(t)
		do.mux.Handle("GET /v2/volumes/{id}/actions", failThen(t, 1000, 503, nil, "volume_actions.json"))
		c := newTestClient(t, do.URL, Config{})
		e := asError(t, everyEndpoint[9].call(context.Background(), c))
		if n := len(do.seen()); n != 1+DefaultMaxRetries || e.Outcome != OutcomeNotApplied {
			t.Errorf("stub saw %d requests (outcome %v), want %d", n, e.Outcome, 1+DefaultMaxRetries)
		}
	})
}

func TestWriteTimingOutAfterSendingIsSentOnceWithAnUnknownOutcome(t *testing.T) {
	for _, ep := range everyWrite {
		t.Run(ep.name, func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.HandleFunc(ep.pattern, hang)
			c := newTestClient(t, do.URL, Config{Timeout: 100 * time.Millisecond})

			err := ep.call(context.Background(), c)
			e := asError(t, err)
			if e.Kind != KindTransport || !errors.Is(err, context.DeadlineExceeded) || e.Outcome != OutcomeUnknown {
				t.Errorf("error = %v (kind %v, outcome %v), want KindTransport, a deadline, OutcomeUnknown", err, e.Kind, e.Outcome)
			}
			if n := len(do.seen()); n != 1 || e.Attempts != 1 {
				t.Errorf("stub saw %d requests, Attempts = %d; want 1", n, e.Attempts)
			}
			if e.Outcome.String() != "UNKNOWN" {
				t.Errorf("Outcome.String() = %q, want UNKNOWN", e.Outcome)
			}
		})
	}
}

func TestWriteResetAfterSendingIsSentOnceWithAnUnknownOutcome(t *testing.T) {
	for _, ep := range everyWrite {
		t.Run(ep.name, func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.HandleFunc(ep.pattern, func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				conn.(*net.TCPConn).SetLinger(0) // close with RST, the request read
				conn.Close()
			})
			c := newTestClient(t, do.URL, Config{})

			e := asError(t, ep.call(context.Background(), c))
			if e.Kind != KindTransport || e.Outcome != OutcomeUnknown {
				t.Errorf("error = %v (kind %v, outcome %v), want KindTransport, OutcomeUnknown", e, e.Kind, e.Outcome)
			}
			if n := len(do.seen()); n != 1 || e.Attempts != 1 {
				t.Errorf("stub saw %d requests, Attempts = %d; want 1", n, e.Attempts)
			}
		})
	}
}

// refusingFirst dials a closed port (a real ECONNREFUSED) for the first n
// dials, then the stub.
func refusingFirst(t *testing.T, n int32, stub string) *http.Client {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	var dials atomic.Int32
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		if dials.Add(1) <= n {
			return d.DialContext(ctx, network, closed)
		}
		return d.DialContext(ctx, network, stub)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestWriteIsRetriedOnlyWhenTheConnectionWasRefused(t *testing.T) {
	for _, ep := range everyWrite {
		t.Run(ep.name+" refused twice, then sent once", func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.Handle(ep.pattern, serveJSON(http.StatusAccepted, []byte(`{"volume":{"id":"v"},"action":{"id":1},"snapshot":{"id":"s"}}`)))
			var obs attemptCounter
			c := newTestClient(t, do.URL, Config{HTTPClient: refusingFirst(t, 2, do.Listener.Addr().String()), Observe: obs.observe})

			if err := ep.call(context.Background(), c); err != nil {
				t.Fatalf("after two refused connections: %v", err)
			}
			if n := len(do.seen()); n != 1 || obs.count() != 3 {
				t.Errorf("stub saw %d requests in %d attempts, want 1 in 3", n, obs.count())
			}
		})
		t.Run(ep.name+" refused every time", func(t *testing.T) {
			do := newFakeDO(t)
			var obs attemptCounter
			c := newTestClient(t, do.URL, Config{HTTPClient: refusingFirst(t, 100, do.Listener.Addr().String()), Observe: obs.observe})

			err := ep.call(context.Background(), c)
			e := asError(t, err)
			if !errors.Is(err, syscall.ECONNREFUSED) || e.Outcome != OutcomeNotApplied || obs.count() != 1+DefaultMaxRetries {
				t.Errorf("error = %v (outcome %v) after %d attempts, want ECONNREFUSED, OutcomeNotApplied, %d attempts",
					err, e.Outcome, obs.count(), 1+DefaultMaxRetries)
			}
		})
	}
}

// opaqueTransport fails without reporting any connection, as a custom
// RoundTripper may: the client cannot know whether the request left.
type opaqueTransport struct{ calls atomic.Int32 }

func (o *opaqueTransport) RoundTrip(*http.Request) (*http.Response, error) {
	o.calls.Add(1)
	return nil, syscall.ECONNRESET
}

func TestWriteThroughAnOpaqueTransportIsNotRetried(t *testing.T) {
	var tr opaqueTransport
	c := newTestClient(t, "http://127.0.0.1:1", Config{HTTPClient: &http.Client{Transport: &tr}})
	e := asError(t, everyWrite[0].call(context.Background(), c))
	if tr.calls.Load() != 1 || e.Outcome != OutcomeUnknown {
		t.Errorf("transport called %d times, outcome %v; want once, OutcomeUnknown", tr.calls.Load(), e.Outcome)
	}
}

func TestWriteWithAnEndedContextIsNotSent(t *testing.T) {
	for _, ep := range everyWrite {
		t.Run(ep.name, func(t *testing.T) {
			do := newFakeDO(t)
			c := newTestClient(t, do.URL, Config{})
			ctx, cancel := context.WithCancel(context.Background())
			cancel()

			err := ep.call(ctx, c)
			if e := asError(t, err); !errors.Is(err, context.Canceled) || e.Outcome != OutcomeNotApplied {
				t.Errorf("error = %v (outcome %v), want context.Canceled with OutcomeNotApplied", err, e.Outcome)
			}
			if n := len(do.seen()); n != 0 {
				t.Errorf("stub saw %d requests, want none", n)
			}
		})
	}
}
