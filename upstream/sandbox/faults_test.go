package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/upstream"
)

// testClock is a clock tests move by hand.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// serve answers one request in-process.
func serve(s *Sandbox, token, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// TestRateLimitMode counts requests per token per rolling minute and answers
// 429 too_many_requests with Retry-After once the limit is spent.
func TestRateLimitMode(t *testing.T) {
	clock := newTestClock(fixedNow)
	s := New(Options{Now: clock.Now, RateLimitPerMinute: 3})
	for i, wantRemaining := range []string{"2", "1", "0"} {
		rec := serve(s, testToken, "/v2/volumes?per_page=1")
		if rec.Code != 200 || rec.Header().Get("Ratelimit-Limit") != "3" || rec.Header().Get("Ratelimit-Remaining") != wantRemaining {
			t.Fatalf("request %d: %d limit %q remaining %q, want 200 3 %s", i+1, rec.Code, rec.Header().Get("Ratelimit-Limit"), rec.Header().Get("Ratelimit-Remaining"), wantRemaining)
		}
		if want := strconv.FormatInt(fixedNow.Unix()+60, 10); rec.Header().Get("Ratelimit-Reset") != want {
			t.Errorf("request %d: ratelimit-reset %q, want %s (when the oldest request leaves the minute)", i+1, rec.Header().Get("Ratelimit-Reset"), want)
		}
	}
	clock.Advance(20 * time.Second)
	rec := serve(s, testToken, "/v2/customers/my/balance")
	var e upstream.ErrorBody
	json.Unmarshal(rec.Body.Bytes(), &e)
	if rec.Code != 429 || e.ID != "too_many_requests" || e.Message != "API rate limit exceeded." || rec.Header().Get("Ratelimit-Remaining") != "0" {
		t.Fatalf("4th request: %d %s remaining %q, want 429 too_many_requests", rec.Code, rec.Body, rec.Header().Get("Ratelimit-Remaining"))
	}
	if ra := rec.Header().Get("Retry-After"); ra != "40" {
		t.Errorf("Retry-After %q, want 40 (the oldest request leaves the minute in 40 s)", ra)
	}
	if rec := serve(s, "another-token", "/v2/volumes"); rec.Code != 200 {
		t.Errorf("another token: %d, want 200 (limits are per token)", rec.Code)
	}
	clock.Advance(41 * time.Second)
	if rec := serve(s, testToken, "/v2/volumes"); rec.Code != 200 || rec.Header().Get("Ratelimit-Remaining") != "2" {
		t.Errorf("a minute later: %d remaining %q, want 200 and 2", rec.Code, rec.Header().Get("Ratelimit-Remaining"))
	}
}

// TestRateLimitHeadersWhenOff announce DigitalOcean's hourly 5000 and never
// reach 0, since nothing is enforced.
func TestRateLimitHeadersWhenOff(t *testing.T) {
	s := New(Options{Now: func() time.Time { return fixedNow }})
	rec := serve(s, testToken, "/v2/volumes")
	if rec.Header().Get("Ratelimit-Limit") != "5000" || rec.Header().Get("Ratelimit-Remaining") != "4999" {
		t.Errorf("limit %q remaining %q, want 5000 and 4999", rec.Header().Get("Ratelimit-Limit"), rec.Header().Get("Ratelimit-Remaining"))
	}
}

// TestErrorRates injects statuses at the configured rates, repeatably for a
// seed, with DigitalOcean's error bodies.
func TestErrorRates(t *testing.T) {
	statuses := func(seed int64) []int {
		s := New(Options{Now: func() time.Time { return fixedNow }, Seed: seed, ErrorRates: map[int]float64{503: 0.2, 429: 0.1}})
		var out []int
		for range 1000 {
			rec := serve(s, testToken, "/v2/customers/my/balance")
			out = append(out, rec.Code)
			if rec.Code == 429 && rec.Header().Get("Retry-After") == "" {
				t.Fatal("an injected 429 without Retry-After")
			}
			if rec.Code == 503 && !strings.Contains(rec.Body.String(), `"id":"service_unavailable"`) {
				t.Fatalf("an injected 503 with body %s", rec.Body)
			}
		}
		return out
	}
	got := statuses(42)
	counts := map[int]int{}
	for _, c := range got {
		counts[c]++
	}
	if counts[503] < 150 || counts[503] > 250 || counts[429] < 60 || counts[429] > 140 || counts[200] != 1000-counts[503]-counts[429] {
		t.Errorf("statuses over 1000 requests: %v, want about 200 503s and 100 429s", counts)
	}
	if !slices.Equal(got, statuses(42)) {
		t.Error("the same seed gave a different sequence of faults")
	}
	if slices.Equal(got, statuses(43)) {
		t.Error("another seed gave the same sequence of faults")
	}
	s := New(Options{Now: func() time.Time { return fixedNow }, ErrorRates: map[int]float64{500: 1}})
	if rec := serve(s, "", "/v2/volumes"); rec.Code != 401 {
		t.Errorf("without a token: %d, want 401 before any injected fault", rec.Code)
	}
	if rec := serve(s, testToken, "/v2/volumes"); rec.Code != 500 || !strings.Contains(rec.Body.String(), `"id":"server_error"`) || rec.Header().Get("Ratelimit-Limit") == "" {
		t.Errorf("rate 1: %d %s, want 500 server_error with rate-limit headers", rec.Code, rec.Body)
	}
}

// TestLatency holds each response at least Latency.
func TestLatency(t *testing.T) {
	_, srv := newTestServer(t, Options{Latency: 40 * time.Millisecond, Jitter: 10 * time.Millisecond})
	start := time.Now()
	resp, _ := get(t, srv, testToken, "/v2/customers/my/balance")
	if took := time.Since(start); resp.StatusCode != 200 || took < 40*time.Millisecond {
		t.Errorf("%d after %v, want 200 after at least 40ms", resp.StatusCode, took)
	}
}

// TestHang holds requests until the client gives up, or until the knob is
// switched off.
func TestHang(t *testing.T) {
	s, srv := newTestServer(t, Options{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v2/volumes", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if _, err := srv.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung request: %v, want the client's deadline", err)
	}

	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL+"/v2/volumes", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// Wait until the second request is held, then release it.
	for s.Total() < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := s.SetFaults(Faults{Hang: true, Latency: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		t.Fatalf("changing another knob released a hung request (status %d)", code)
	default:
	}
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 200 {
		t.Errorf("released request: %d, want 200", code)
	}
}

// TestTruncateAndGarbage: a body cut off under its Content-Length, and a 200
// that is an HTML page.
func TestTruncateAndGarbage(t *testing.T) {
	s, srv := newTestServer(t, Options{TruncateRate: 1})
	for _, path := range []string{"/v2/volumes", "/v2/customers/my/invoices/preview/pdf"} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) || int64(len(body)) >= resp.ContentLength {
			t.Errorf("GET %s: read %d of %d bytes, error %v: want a body cut short (unexpected EOF)", path, len(body), resp.ContentLength, err)
		}
	}
	s.SetFaults(Faults{GarbageRate: 1})
	resp, body := get(t, srv, testToken, "/v2/volumes")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html" || json.Valid(body) {
		t.Errorf("garbage: %d %q %q, want 200 text/html that is not JSON", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestFaultsOverHTTP sets and reads the knobs through /_sandbox/faults.
func TestFaultsOverHTTP(t *testing.T) {
	s, srv := newTestServer(t, Options{})
	resp, body := do(t, srv, "PUT", "", "/_sandbox/faults", strings.NewReader(
		`{"latency":"5ms","jitter":"1ms","error_rates":{"503":0.05,"429":0.01},"rate_limit_per_minute":250,"pdf_size":1048576}`))
	if resp.StatusCode != 200 {
		t.Fatalf("PUT /_sandbox/faults: %d %s", resp.StatusCode, body)
	}
	want := Faults{Latency: 5 * time.Millisecond, Jitter: time.Millisecond, ErrorRates: map[int]float64{503: 0.05, 429: 0.01}, RateLimitPerMinute: 250, PDFSize: 1 << 20}
	if got := s.Faults(); got.Latency != want.Latency || got.Jitter != want.Jitter || got.RateLimitPerMinute != 250 || got.PDFSize != 1<<20 ||
		len(got.ErrorRates) != 2 || got.ErrorRates[503] != 0.05 || got.ErrorRates[429] != 0.01 {
		t.Errorf("Faults() = %+v, want %+v", got, want)
	}
	_, body = get(t, srv, "", "/_sandbox/faults")
	var back Faults
	if err := json.Unmarshal(body, &back); err != nil || back.Latency != want.Latency || !strings.Contains(string(body), `"latency":"5ms"`) {
		t.Errorf("GET /_sandbox/faults: %s (%v), want the knobs with durations as strings", body, err)
	}
	for _, bad := range []string{`{"latency":"soon"}`, `{"error_rates":{"200":0.5}}`, `{"error_rates":{"503":0.7,"500":0.6}}`, `{"garbage_rate":2}`, `{"surprise":true}`, `not json`} {
		resp, body := do(t, srv, "PUT", "", "/_sandbox/faults", strings.NewReader(bad))
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"id":"bad_request"`) {
			t.Errorf("PUT %s: %d %s, want 400 bad_request", bad, resp.StatusCode, body)
		}
	}
	if got := s.Faults(); got.RateLimitPerMinute != 250 {
		t.Errorf("a refused PUT changed the knobs: %+v", got)
	}
	if s.Total() != 0 {
		t.Errorf("control requests were counted: total %d", s.Total())
	}
}

// TestFaultsChangeUnderLoad changes the knobs while requests run (for -race).
func TestFaultsChangeUnderLoad(t *testing.T) {
	s := New(Options{Now: func() time.Time { return fixedNow }})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				serve(s, "token-"+strconv.Itoa(i%2), "/v2/volumes?page="+strconv.Itoa(1+j%3))
			}
		}()
	}
	for i := range 20 {
		s.SetFaults(Faults{ErrorRates: map[int]float64{503: float64(i%2) / 2}, RateLimitPerMinute: i % 3 * 100})
		_ = s.Faults()
	}
	wg.Wait()
	if s.Total() != 400 || len(s.Requests()) != 400 {
		t.Errorf("total %d, %d logged: want 400", s.Total(), len(s.Requests()))
	}
}
