package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults are the sandbox's fault knobs, set at construction (Options) and
// changed at run time with SetFaults or PUT /_sandbox/faults. Over HTTP the
// durations are Go duration strings ("20ms").
type Faults struct {
	// Latency is how long every DigitalOcean response takes from its arrival,
	// plus up to Jitter more (a read's page is built during that wait).
	Latency time.Duration `json:"latency"`
	Jitter  time.Duration `json:"jitter"`
	// ErrorRates maps a status to the fraction of requests answered with it;
	// 429s carry Retry-After.
	ErrorRates map[int]float64 `json:"error_rates,omitempty"`
	// RateLimitPerMinute, when > 0, refuses requests beyond it per token per
	// rolling minute with 429 too_many_requests and Retry-After.
	RateLimitPerMinute int `json:"rate_limit_per_minute"`
	// PDFSize pads every PDF to at least this many bytes, streamed in chunks.
	PDFSize int64 `json:"pdf_size"`
	// Hang holds every DigitalOcean request unanswered until the client gives
	// up or Hang is switched off.
	Hang bool `json:"hang"`
	// HangAfterWrite applies each write (POST, DELETE) and then holds its
	// answer until the client gives up: a timeout after the write happened.
	HangAfterWrite bool `json:"hang_after_write"`
	// TruncateRate is the fraction of responses whose body stops halfway
	// (the connection is closed under a longer Content-Length).
	TruncateRate float64 `json:"truncate_rate"`
	// GarbageRate is the fraction of responses answered 200 with an HTML page
	// instead of the promised body.
	GarbageRate float64 `json:"garbage_rate"`
}

// faultsJSON is Faults on the wire, with durations as strings.
type faultsJSON struct {
	Latency            string          `json:"latency"`
	Jitter             string          `json:"jitter"`
	ErrorRates         map[int]float64 `json:"error_rates,omitempty"`
	RateLimitPerMinute int             `json:"rate_limit_per_minute"`
	PDFSize            int64           `json:"pdf_size"`
	Hang               bool            `json:"hang"`
	HangAfterWrite     bool            `json:"hang_after_write"`
	TruncateRate       float64         `json:"truncate_rate"`
	GarbageRate        float64         `json:"garbage_rate"`
}

// MarshalJSON writes durations as strings ("20ms").
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Latency: f.Latency.String(), Jitter: f.Jitter.String(), ErrorRates: f.ErrorRates,
		RateLimitPerMinute: f.RateLimitPerMinute, PDFSize: f.PDFSize, Hang: f.Hang, HangAfterWrite: f.HangAfterWrite,
		TruncateRate: f.TruncateRate, GarbageRate: f.GarbageRate,
	})
}

// UnmarshalJSON reads durations as strings ("20ms"); a missing knob is
// zero, an unknown one an error (a typo must not silently disable a fault).
func (f *Faults) UnmarshalJSON(b []byte) error {
	var w faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	out := Faults{ErrorRates: w.ErrorRates, RateLimitPerMinute: w.RateLimitPerMinute, PDFSize: w.PDFSize,
		Hang: w.Hang, HangAfterWrite: w.HangAfterWrite, TruncateRate: w.TruncateRate, GarbageRate: w.GarbageRate}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{{"latency", w.Latency, &out.Latency}, {"jitter", w.Jitter, &out.Jitter}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		*d.out = v
	}
	*f = out
	return nil
}

// validate rejects knobs that cannot mean anything.
func (f Faults) validate() error {
	if f.Latency < 0 || f.Jitter < 0 || f.PDFSize < 0 || f.RateLimitPerMinute < 0 {
		return fmt.Errorf("latency, jitter, pdf_size and rate_limit_per_minute must not be negative")
	}
	sum := 0.0
	for status, rate := range f.ErrorRates {
		if status < 400 || status > 599 {
			return fmt.Errorf("error_rates: status %d is not an error status", status)
		}
		if rate < 0 || rate > 1 {
			return fmt.Errorf("error_rates: rate %v for %d is not in [0, 1]", rate, status)
		}
		sum += rate
	}
	if sum > 1 {
		return fmt.Errorf("error_rates: rates add up to %v, more than 1", sum)
	}
	for name, rate := range map[string]float64{"truncate_rate": f.TruncateRate, "garbage_rate": f.GarbageRate} {
		if rate < 0 || rate > 1 {
			return fmt.Errorf("%s: %v is not in [0, 1]", name, rate)
		}
	}
	return nil
}

// faultState holds the current knobs and the seeded dice, so a test that
// sends the same requests in the same order sees the same faults.
type faultState struct {
	mu      sync.Mutex
	f       Faults
	rng     *rand.Rand
	release chan struct{} // closed when the knobs change, freeing hung requests
}

func newFaultState(o Options) *faultState {
	f := Faults{
		Latency: o.Latency, Jitter: o.Jitter, ErrorRates: maps.Clone(o.ErrorRates),
		RateLimitPerMinute: o.RateLimitPerMinute, PDFSize: o.PDFSize, Hang: o.Hang, HangAfterWrite: o.HangAfterWrite,
		TruncateRate: o.TruncateRate, GarbageRate: o.GarbageRate,
	}
	return &faultState{f: f, rng: rand.New(rand.NewPCG(uint64(o.Seed), 0x5eed)), release: make(chan struct{})}
}

// get returns a copy of the knobs; its ErrorRates map is never written again.
func (fs *faultState) get() Faults {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.f
}

// Faults returns the current fault knobs.
func (s *Sandbox) Faults() Faults {
	f := s.faults.get()
	f.ErrorRates = maps.Clone(f.ErrorRates)
	return f
}

// SetFaults replaces every fault knob at once; requests held by Hang are
// released. It fails, changing nothing, on a knob that cannot mean anything.
func (s *Sandbox) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	f.ErrorRates = maps.Clone(f.ErrorRates)
	fs := s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.f = f
	close(fs.release)
	fs.release = make(chan struct{})
	return nil
}

// holdWhile blocks while on(knobs) holds, looking again at each change of
// the knobs; false when the client gave up first.
func (fs *faultState) holdWhile(ctx context.Context, on func(Faults) bool) bool {
	for {
		fs.mu.Lock()
		held, release := on(fs.f), fs.release
		fs.mu.Unlock()
		if !held {
			return true
		}
		select {
		case <-release:
		case <-ctx.Done():
			return false
		}
	}
}

// draw is what the fault dice decided for one request.
type draw struct {
	delay    time.Duration // Latency plus this request's jitter
	hang     bool
	status   int // an injected error status; 0 for none
	garbage  bool
	truncate bool
}

// roll draws the fault dice for one request under the current knobs.
func (fs *faultState) roll() draw {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.f
	d := draw{delay: f.Latency, hang: f.Hang}
	if f.Jitter > 0 {
		d.delay += time.Duration(fs.rng.Int64N(int64(f.Jitter) + 1))
	}
	if len(f.ErrorRates) > 0 {
		u, cum := fs.rng.Float64(), 0.0
		for _, st := range slices.Sorted(maps.Keys(f.ErrorRates)) {
			if cum += f.ErrorRates[st]; u < cum {
				d.status = st
				break
			}
		}
	}
	if f.GarbageRate > 0 {
		d.garbage = fs.rng.Float64() < f.GarbageRate
	}
	if f.TruncateRate > 0 {
		d.truncate = fs.rng.Float64() < f.TruncateRate
	}
	return d
}

// errorIDs are the error body ids the sandbox answers injected statuses with.
var errorIDs = map[int][2]string{
	400: {"bad_request", "The request was invalid."},
	401: {"unauthorized", "Unable to authenticate you."},
	403: {"forbidden", "You do not have access for the attempted action."},
	404: {"not_found", "The resource you requested could not be found."},
	429: {"too_many_requests", "API rate limit exceeded."},
	500: {"server_error", "Unexpected server-side error"},
	502: {"bad_gateway", "Bad gateway."},
	503: {"service_unavailable", "The service is temporarily unavailable."},
	504: {"gateway_timeout", "The upstream service timed out."},
}

// inject applies the fault knobs to one DigitalOcean request. It returns the
// writer to answer through (a cutting one when truncating) and false when the
// request has been answered, or abandoned by its client, already.
func (s *Sandbox) inject(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool) {
	d := s.faults.roll()
	switch {
	case d.delay > 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		// A read is answered at arrival + delay, its page built during the wait:
		// the latency a client sees is the knob's, not the knob's plus this
		// sandbox's own CPU (1-2 ms for a few concurrent pages on a loaded machine).
		w = &heldWriter{ResponseWriter: w, ctx: r.Context(), until: time.Now().Add(d.delay)}
	case d.delay > 0:
		// A write waits first, so that a caller giving up during the latency
		// changed nothing, as before.
		if !wait(r.Context(), d.delay) {
			return w, false
		}
	}
	if d.hang && !s.faults.holdWhile(r.Context(), func(f Faults) bool { return f.Hang }) {
		return w, false
	}
	switch {
	case d.status != 0:
		e, ok := errorIDs[d.status]
		if !ok {
			e = [2]string{strings.ReplaceAll(strings.ToLower(http.StatusText(d.status)), " ", "_"), http.StatusText(d.status)}
		}
		if d.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		s.writeError(w, r, d.status, e[0], e[1])
		return w, false
	case d.garbage:
		body := "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n"
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(body))
		return w, false
	case d.truncate:
		return &cutWriter{ResponseWriter: w}, true
	}
	return w, true
}

// wait sleeps d, or until ctx ends (false).
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// heldWriter holds a response until its time: the first header, byte or
// flush waits for until (or the client's end, after which writes fail on
// the closed connection as they would have).
type heldWriter struct {
	http.ResponseWriter
	ctx   context.Context
	until time.Time
	held  bool // the wait is over
}

func (h *heldWriter) hold() {
	if h.held {
		return
	}
	h.held = true
	if d := time.Until(h.until) - time.Millisecond; d > 0 && !wait(h.ctx, d) {
		return
	}
	sleepUntil(h.until)
}

func (h *heldWriter) WriteHeader(status int) {
	h.hold()
	h.ResponseWriter.WriteHeader(status)
}

func (h *heldWriter) Write(p []byte) (int, error) {
	h.hold()
	return h.ResponseWriter.Write(p)
}

// Flush passes a flush on (a streamed PDF flushes), after the wait.
func (h *heldWriter) Flush() {
	h.hold()
	http.NewResponseController(h.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (h *heldWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// cutWriter passes through the first half of a response body (by its
// Content-Length, else 512 bytes), then aborts the connection.
type cutWriter struct {
	http.ResponseWriter
	limit, written int64
	started        bool
}

func (c *cutWriter) WriteHeader(status int) {
	if !c.started {
		c.started = true
		c.limit = 512
		if n, err := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64); err == nil {
			c.limit = n / 2
		}
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if !c.started {
		c.WriteHeader(http.StatusOK)
	}
	if c.written+int64(len(p)) <= c.limit {
		n, err := c.ResponseWriter.Write(p)
		c.written += int64(n)
		return n, err
	}
	n, _ := c.ResponseWriter.Write(p[:c.limit-c.written])
	c.written += int64(n)
	if fl, ok := c.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
	// net/http closes the connection without logging for this panic value.
	panic(http.ErrAbortHandler)
}
