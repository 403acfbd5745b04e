package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/logbuffer"

	"go.uber.org/goleak"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// The fault suite: DigitalOcean misbehaving in every way the issue names.
// Each fault must end in its documented error code, within the upstream
// deadline, with no panic and no goroutine left behind.

// faultDeadline is the upstream timeout (UPSTREAM_TIMEOUT) of these tests.
const faultDeadline = 400 * time.Millisecond

// faultGrace is how long after the deadline an answer may still come on a
// busy CI machine; without a deadline a hung call would never answer at all.
const faultGrace = 5 * time.Second

// checkLeaks fails the test if it leaves a goroutine running. Registered
// first, it runs after every other cleanup (servers closed, pools drained).
func checkLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// newFaultHarness is the handler with a client as the server builds it: a
// deadline per upstream call and retries, with short waits so tests stay fast.
func newFaultHarness(t *testing.T, baseURL string, sb *sandbox.Sandbox) *harness {
	t.Helper()
	client, err := upstream.New(upstream.Config{
		BaseURL:      baseURL,
		Timeout:      faultDeadline,
		MaxRetries:   2,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 20 * time.Millisecond,
		Observe:      ObserveUpstream,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	h := newHarnessAt(t, baseURL, func(c *Config) { c.Client = client })
	h.sandbox = sb
	return h
}

// sandboxWith serves a sandbox with the given fault knobs on loopback.
func sandboxWith(t *testing.T, f sandbox.Faults, wrap ...func(http.Handler) http.Handler) (*sandbox.Sandbox, string) {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Seed: 1})
	if err := sb.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = sb
	for _, w := range wrap {
		h = w(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		// Free requests still held by Hang before Close waits for them.
		sb.SetFaults(sandbox.Faults{})
		srv.Close()
	})
	return sb, srv.URL
}

// refusedURL is a loopback address on which nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// onPath answers the requests whose path starts with prefix with h, and the
// rest with the sandbox.
func onPath(prefix string, h http.HandlerFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, prefix) {
				h(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// rawBody answers 200 with a fixed body and content type.
func rawBody(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, body)
	}
}

const faultVolumesQuery = `{ volumes(first: 5) { totalCount nodes { id name } } }`

// fieldError returns the one error of resp at path, failing the test otherwise.
func fieldError(t *testing.T, resp gqlResponse, path string) gqlError {
	t.Helper()
	if len(resp.Errors) != 1 {
		t.Fatalf("want exactly one error at %s, got %d: %+v", path, len(resp.Errors), resp.Errors)
	}
	e := resp.Errors[0]
	if got := pathString(e.Path); got != path {
		t.Errorf("error path: got %v, want %s", e.Path, path)
	}
	return e
}

// pathString renders an error path as "invoice.files.pdf.byteSize".
func pathString(path []any) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = fmt.Sprint(p)
	}
	return strings.Join(parts, ".")
}

// assertNoPanic fails if the handler recovered a panic or logged an internal error.
func assertNoPanic(t *testing.T, h *harness, resp gqlResponse) {
	t.Helper()
	for _, e := range resp.Errors {
		if e.Extensions["code"] == codeInternal {
			t.Errorf("an internal error reached the client: %+v", e)
		}
	}
	if logs := h.logs.String(); strings.Contains(logs, "panic") || strings.Contains(logs, "internal error") {
		t.Errorf("the handler logged a panic or internal error:\n%s", logs)
	}
}

func TestFaultsYieldTheirCode(t *testing.T) {
	tests := []struct {
		name   string
		faults sandbox.Faults
		wrap   func(http.Handler) http.Handler
		// refused points the client at a port nothing listens on.
		refused bool
		want    string
		// upstreamStatus, when set, is the extensions.upstream.status expected.
		upstreamStatus int
		// retryAfter, when set, is the extensions.retryAfter expected.
		retryAfter int
		// calls, when set, is how many requests the sandbox must have seen.
		calls int
	}{
		{name: "connection refused", refused: true, want: codeUpstreamUnavailable},
		{name: "upstream hangs past the deadline", faults: sandbox.Faults{Hang: true}, want: codeUpstreamUnavailable},
		{name: "503 storm: retried, then given up", faults: sandbox.Faults{ErrorRates: map[int]float64{503: 1}},
			want: codeUpstreamUnavailable, upstreamStatus: 503, calls: 3},
		{name: "502 storm", faults: sandbox.Faults{ErrorRates: map[int]float64{502: 1}},
			want: codeUpstreamUnavailable, upstreamStatus: 502, calls: 3},
		{name: "500 storm: DigitalOcean's own error, not retried", faults: sandbox.Faults{ErrorRates: map[int]float64{500: 1}},
			want: codeUpstreamUnavailable, upstreamStatus: 500, calls: 1},
		{name: "429 with Retry-After longer than the client waits", faults: sandbox.Faults{ErrorRates: map[int]float64{429: 1}},
			want: codeRateLimited, upstreamStatus: 429, retryAfter: 1, calls: 1},
		{name: "malformed JSON", wrap: onPath("/v2/volumes", rawBody("application/json", `{"volumes": [{"id": "a", "name": }]}`)),
			want: codeUpstreamUnavailable},
		{name: "JSON cut short in a complete response", wrap: onPath("/v2/volumes", rawBody("application/json", `{"volumes": [{"id": "a", "na`)),
			want: codeUpstreamUnavailable},
		{name: "connection cut mid-body", faults: sandbox.Faults{TruncateRate: 1}, want: codeUpstreamUnavailable},
		{name: "wrong content type: a proxy's HTML page with 200", faults: sandbox.Faults{GarbageRate: 1}, want: codeUpstreamUnavailable},
		{name: "wrong content type: XML", wrap: onPath("/v2/volumes", rawBody("application/xml", `<volumes/>`)), want: codeUpstreamUnavailable},
		{name: "empty 200", wrap: onPath("/v2/volumes", rawBody("application/json", ``)), want: codeUpstreamUnavailable},
		{name: "JSON null", wrap: onPath("/v2/volumes", rawBody("application/json", `null`)), want: codeUpstreamUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			var h *harness
			if tt.refused {
				h = newFaultHarness(t, refusedURL(t), nil)
			} else {
				var wraps []func(http.Handler) http.Handler
				if tt.wrap != nil {
					wraps = append(wraps, tt.wrap)
				}
				sb, url := sandboxWith(t, tt.faults, wraps...)
				h = newFaultHarness(t, url, sb)
			}
			start := time.Now()
			resp := h.post(faultVolumesQuery, nil)
			took := time.Since(start)

			if took > faultDeadline+faultGrace {
				t.Errorf("answered after %v, want within the %v deadline (+%v grace)", took, faultDeadline, faultGrace)
			}
			if string(resp.Data) != `{"volumes":null}` {
				t.Errorf("data: got %s, want volumes null", resp.Data)
			}
			e := fieldError(t, resp, "volumes")
			if e.Extensions["code"] != tt.want {
				t.Errorf("code: got %v, want %s (error %+v)", e.Extensions["code"], tt.want, e)
			}
			if tt.upstreamStatus != 0 {
				up, _ := e.Extensions["upstream"].(map[string]any)
				if up == nil || up["status"] != float64(tt.upstreamStatus) || up["id"] == "" || up["requestId"] == "" {
					t.Errorf("extensions.upstream: got %v, want status %d with id and requestId", e.Extensions["upstream"], tt.upstreamStatus)
				}
			}
			if tt.retryAfter != 0 && e.Extensions["retryAfter"] != float64(tt.retryAfter) {
				t.Errorf("retryAfter: got %v, want %d", e.Extensions["retryAfter"], tt.retryAfter)
			}
			if tt.calls != 0 && h.sandbox != nil {
				if got := h.sandbox.Total(); got != tt.calls {
					t.Errorf("upstream requests: got %d, want %d (%q)", got, tt.calls, h.sandbox.Requests())
				}
			}
			assertNoPanic(t, h, resp)
		})
	}
}

// DigitalOcean's own per-token limit (rate-limit mode): the request past the
// limit is RATE_LIMITED with retryAfter from Retry-After, and says so before
// the deadline instead of waiting out the minute.
func TestRateLimitModeGivesRetryAfter(t *testing.T) {
	checkLeaks(t)
	sb, url := sandboxWith(t, sandbox.Faults{RateLimitPerMinute: 1})
	h := newFaultHarness(t, url, sb)
	if resp := h.post(faultVolumesQuery, nil); len(resp.Errors) > 0 {
		t.Fatalf("first request within the limit failed: %+v", resp.Errors)
	}
	start := time.Now()
	resp := h.post(faultVolumesQuery, nil)
	if took := time.Since(start); took > faultDeadline+faultGrace {
		t.Errorf("answered after %v, want within the deadline", took)
	}
	e := fieldError(t, resp, "volumes")
	if e.Extensions["code"] != codeRateLimited {
		t.Fatalf("code: got %v, want %s", e.Extensions["code"], codeRateLimited)
	}
	if ra, _ := e.Extensions["retryAfter"].(float64); ra < 1 || ra > 60 {
		t.Errorf("retryAfter: got %v, want 1 to 60 seconds (the rest of the minute)", e.Extensions["retryAfter"])
	}
	assertNoPanic(t, h, resp)
}

// A storm on one endpoint takes down the fields that need it, never their siblings.
func TestStormOnOneEndpointSparesSiblings(t *testing.T) {
	checkLeaks(t)
	storm := onPath("/v2/volumes", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"id":"service_unavailable","message":"The service is temporarily unavailable.","request_id":"r-1"}`)
	})
	sb, url := sandboxWith(t, sandbox.Faults{}, storm)
	h := newFaultHarness(t, url, sb)
	resp := h.post(`{ volumes(first: 2) { nodes { id } } invoices(first: 2) { totalCount nodes { uuid } } }`, nil)
	e := fieldError(t, resp, "volumes")
	if e.Extensions["code"] != codeUpstreamUnavailable {
		t.Errorf("code: got %v, want %s", e.Extensions["code"], codeUpstreamUnavailable)
	}
	if !strings.Contains(string(resp.Data), `"volumes":null`) || !strings.Contains(string(resp.Data), `"uuid"`) {
		t.Errorf("data: want volumes null and the invoices intact, got %s", resp.Data)
	}
	assertNoPanic(t, h, resp)
}

// Many dashboards at once against an upstream failing a third of the time in
// every transient way: every response is well formed, every error is coded,
// nothing panics and nothing is left running.
func TestMixedStormUnderConcurrency(t *testing.T) {
	checkLeaks(t)
	sb, url := sandboxWith(t, sandbox.Faults{
		ErrorRates:   map[int]float64{500: 0.08, 502: 0.08, 503: 0.08, 504: 0.04, 429: 0.04},
		TruncateRate: 0.03,
		GarbageRate:  0.03,
	})
	h := newFaultHarness(t, url, sb)
	const clients = 12
	var wg sync.WaitGroup
	resps := make([]gqlResponse, clients)
	for i := range clients {
		wg.Go(func() { resps[i] = h.post(queries.Dashboard, nil) })
	}
	wg.Wait()
	codes := map[any]int{}
	for i, resp := range resps {
		if len(resp.Data) == 0 || string(resp.Data) == "null" {
			t.Errorf("client %d: no data at all; a failing field must not take the response down: %+v", i, resp.Errors)
		}
		for _, e := range resp.Errors {
			codes[e.Extensions["code"]]++
			switch e.Extensions["code"] {
			case codeUpstreamUnavailable, codeRateLimited:
			default:
				t.Errorf("client %d: error with code %v, want UPSTREAM_UNAVAILABLE or RATE_LIMITED: %+v", i, e.Extensions["code"], e)
			}
			if len(e.Path) == 0 {
				t.Errorf("client %d: error without a path: %+v", i, e)
			}
		}
		assertNoPanic(t, h, resp)
	}
	t.Logf("error codes over %d dashboards: %v", clients, codes)
}

// A PDF that breaks off mid-stream must not reach the browser as a complete
// file: the download route has sent 200 and the length, so it aborts the
// connection and the client sees an unexpected EOF.
func TestFaultPDFCutOffMidStream(t *testing.T) {
	checkLeaks(t)
	sb, url := sandboxWith(t, sandbox.Faults{PDFSize: 1 << 20, TruncateRate: 1})
	client, err := upstream.New(upstream.Config{BaseURL: url, Timeout: 10 * time.Second, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	links, err := NewFileLinks(bytes.Repeat([]byte{7}, minFileLinkKeySize), 0)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	srv := httptest.NewServer(downloadRoutes(client, links, "", slog.New(slog.NewTextHandler(logs, nil))))
	t.Cleanup(srv.Close)
	uuid := sb.Account(callerToken).Invoices[0].UUID

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/invoices/"+uuid+"/pdf", nil)
	req.Header.Set("Authorization", "Bearer "+callerToken)
	start := time.Now()
	resp, err := srv.Client().Do(req)
	if err != nil {
		// Cut before the headers: the connection closed, which is also no file.
		t.Logf("no response at all (%v): acceptable, nothing looked complete", err)
		return
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(resp.Body)
	if took := time.Since(start); took > 10*time.Second+faultGrace {
		t.Errorf("download took %v", took)
	}
	switch {
	case resp.StatusCode == http.StatusOK && readErr == nil:
		t.Fatalf("a cut-off PDF arrived as a complete 200 of %d bytes (Content-Length %q)", len(body), resp.Header.Get("Content-Length"))
	case resp.StatusCode == http.StatusOK && !errors.Is(readErr, io.ErrUnexpectedEOF):
		t.Errorf("reading the cut-off PDF: got %v, want an unexpected EOF", readErr)
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadGateway:
		t.Errorf("status: got %d, want 200 then an aborted body, or 502", resp.StatusCode)
	}
	srv.Close() // waits for the handler, which logs after the client saw the cut
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("the download handler logged a panic:\n%s", logs)
	}
}

// cutFile answers 200 with a PDF's type and full Content-Length, sends half
// the bytes and drops the connection, as a broken upstream does.
func cutFile(size int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(http.StatusOK)
		w.Write(bytes.Repeat([]byte("%"), size/2))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
}

// The same cut through GraphQL: byteSize needs the whole file, so the field
// fails with UPSTREAM_UNAVAILABLE and url (no upstream call) still answers.
func TestFileFieldsWithPDFCutOff(t *testing.T) {
	checkLeaks(t)
	uuid := sandbox.New(sandbox.Options{Seed: 1}).Account(callerToken).Invoices[0].UUID
	sb, url := sandboxWith(t, sandbox.Faults{}, onPath("/v2/customers/my/invoices/"+uuid+"/pdf", cutFile(256<<10)))
	h := newFaultHarness(t, url, sb)
	resp := h.post(`query($u: ID!) { invoice(uuid: $u) { files { pdf { url byteSize } } } }`, map[string]any{"u": uuid})
	e := fieldError(t, resp, "invoice.files.pdf.byteSize")
	if e.Extensions["code"] != codeUpstreamUnavailable {
		t.Errorf("code: got %v, want %s: %+v", e.Extensions["code"], codeUpstreamUnavailable, e)
	}
	if !strings.Contains(string(resp.Data), `"url":"https://og.example/files/`) {
		t.Errorf("url (no upstream call) should survive the failed download: %s", resp.Data)
	}
	assertNoPanic(t, h, resp)
}

// The download route under the same faults: the file never starts, so the
// answer is a status and a coded JSON error, within the deadline.
func TestDownloadFaultsYieldTheirStatus(t *testing.T) {
	tests := []struct {
		name       string
		faults     sandbox.Faults
		refused    bool
		status     int
		code       string
		retryAfter string
	}{
		{name: "connection refused", refused: true, status: http.StatusBadGateway, code: codeUpstreamUnavailable},
		{name: "upstream hangs past the deadline", faults: sandbox.Faults{Hang: true}, status: http.StatusGatewayTimeout, code: codeUpstreamUnavailable},
		{name: "503 storm", faults: sandbox.Faults{ErrorRates: map[int]float64{503: 1}}, status: http.StatusBadGateway, code: codeUpstreamUnavailable},
		{name: "504 storm", faults: sandbox.Faults{ErrorRates: map[int]float64{504: 1}}, status: http.StatusGatewayTimeout, code: codeUpstreamUnavailable},
		{name: "429 with Retry-After", faults: sandbox.Faults{ErrorRates: map[int]float64{429: 1}}, status: http.StatusTooManyRequests, code: codeRateLimited, retryAfter: "1"},
		{name: "a proxy's HTML page instead of the PDF", faults: sandbox.Faults{GarbageRate: 1}, status: http.StatusBadGateway, code: codeUpstreamUnavailable},
	}
	uuid := sandbox.New(sandbox.Options{Seed: 1}).Account(callerToken).Invoices[0].UUID
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			base := refusedURL(t)
			if !tt.refused {
				_, base = sandboxWith(t, tt.faults)
			}
			client, err := upstream.New(upstream.Config{BaseURL: base, Timeout: faultDeadline, MaxRetries: 2,
				RetryWaitMin: time.Millisecond, RetryWaitMax: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(client.CloseIdleConnections)
			links, _ := NewFileLinks(bytes.Repeat([]byte{7}, minFileLinkKeySize), 0)
			logs := &logbuffer.Buffer{}
			srv := httptest.NewServer(downloadRoutes(client, links, "", slog.New(slog.NewTextHandler(logs, nil))))
			t.Cleanup(srv.Close)

			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/invoices/"+uuid+"/pdf", nil)
			req.Header.Set("Authorization", "Bearer "+callerToken)
			start := time.Now()
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if took := time.Since(start); took > faultDeadline+faultGrace {
				t.Errorf("answered after %v, want within the %v deadline", took, faultDeadline)
			}
			var body struct {
				Error struct {
					Code       string `json:"code"`
					RetryAfter *int   `json:"retryAfter"`
				} `json:"error"`
			}
			raw, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body is not the JSON error (%v): %s", err, raw)
			}
			if resp.StatusCode != tt.status || body.Error.Code != tt.code {
				t.Errorf("got %d %s, want %d %s: %s", resp.StatusCode, body.Error.Code, tt.status, tt.code, raw)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After: got %q, want %q", got, tt.retryAfter)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q: an error must not look like the file", ct)
			}
			srv.Close()
			if strings.Contains(logs.String(), "panic") {
				t.Errorf("the download handler logged a panic:\n%s", logs)
			}
		})
	}
}
