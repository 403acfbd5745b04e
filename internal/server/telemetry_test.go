package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/oceangraph/oceangraph/graph"
	"github.com/oceangraph/oceangraph/internal/httpguard"
	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// secretToken is the caller's DigitalOcean token in these tests: it must
// never reach a log line or a metric.
const secretToken = "dop_v1_0123456789abcdef_secret"

// stack is the running server over a sandbox, as the telemetry tests see it:
// requests in and out as httptest recorders, logs and spans captured.
type stack struct {
	*testServer
	t       *testing.T
	sandbox *sandbox.Sandbox
}

func newStack(t *testing.T, origins string) *stack {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Seed: 7})
	s := startServer(t, serverOptions{upstream: sb, env: map[string]string{"INTROSPECTION": "true", "CORS_ALLOWED_ORIGINS": origins}})
	return &stack{testServer: s, t: t, sandbox: sb}
}

// serve sends r to the server over a connection of its own, as written (a
// header value an http.Client would refuse included), records the answer, and
// returns once the request's access-log line is written.
func (s *stack) serve(r *http.Request) *httptest.ResponseRecorder {
	s.t.Helper()
	u, _ := url.Parse(s.url)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	r.Host, r.Close = u.Host, true
	// Written alongside the read: the server may answer (413) before the body is sent.
	go r.Write(conn)
	resp, err := http.ReadResponse(bufio.NewReader(conn), r)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	w := httptest.NewRecorder()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	s.waitLogged(resp.Header.Get("X-Request-Id"))
	return w
}

// waitLogged polls the log until the access line of request id is there: a
// streamed response can reach the client before its line is written.
func (s *stack) waitLogged(id string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, msg := range []string{"request", "graphql"} {
			for _, l := range s.logLines(msg) {
				if l["request_id"] == id {
					return
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.t.Fatalf("no access-log line for request %s:\n%s", id, s.logs)
}

func (s *stack) query(query string, header map[string]string) *httptest.ResponseRecorder {
	body, _ := json.Marshal(map[string]any{"query": query})
	r := httptest.NewRequest(http.MethodPost, "http://og.test/query", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+secretToken)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return s.serve(r)
}

func (s *stack) metrics() string {
	w := s.serve(httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		s.t.Fatalf("/metrics answered %d", w.Code)
	}
	return w.Body.String()
}

// logLines decodes the JSON log lines with msg.
func (s *stack) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestMetricsShowTheUpstreamCallsJustMade(t *testing.T) {
	s := newStack(t, "")
	if w := s.query(queries.Dashboard, nil); w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"errors"`) {
		t.Fatalf("dashboard: %d %s", w.Code, w.Body)
	}
	m := s.metrics()
	for _, want := range []string{
		`oceangraph_upstream_requests_total{endpoint="GET /v2/customers/my/invoices/{uuid}/summary",status="200"} 12`,
		`oceangraph_upstream_requests_total{endpoint="GET /v2/customers/my/invoices/{uuid}",status="200"} 12`,
		`oceangraph_upstream_requests_total{endpoint="GET /v2/customers/my/invoices",status="200"} 1`,
		`oceangraph_upstream_requests_total{endpoint="GET /v2/volumes",status="200"} 1`,
		`oceangraph_upstream_requests_total{endpoint="GET /v2/customers/my/billing_history",status="200"} 1`,
		`oceangraph_upstream_request_duration_seconds_count{endpoint="GET /v2/customers/my/invoices/{uuid}/summary"} 12`,
		`oceangraph_graphql_requests_total{operation="Dashboard",outcome="ok"} 1`,
		`oceangraph_http_requests_total{route="/query",status="200"} 1`,
		`oceangraph_http_requests_in_flight{route="/metrics"} 1`, // this very scrape
		`go_goroutines`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m, secretToken) {
		t.Errorf("/metrics contains the caller's token")
	}
}

func TestMetricsCountErrorsByCodeAndBoundOperationNames(t *testing.T) {
	s := newStack(t, "")
	s.query(`query Big { invoices(first: 100) { nodes { summary { amount } } } }`, nil)
	s.query(`{ invoices {`, nil)
	m := s.metrics()
	for _, want := range []string{
		`oceangraph_graphql_requests_total{operation="Big",outcome="error"} 1`,
		`oceangraph_graphql_requests_total{operation="unparsed",outcome="error"} 1`,
		`oceangraph_graphql_errors_total{code="UPSTREAM_BUDGET_EXCEEDED"} 1`,
		`oceangraph_graphql_errors_total{code="GRAPHQL_PARSE_FAILED"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

}

func TestLogLinePerOperation(t *testing.T) {
	s := newStack(t, "")
	w := s.query(queries.Dashboard, map[string]string{"X-Request-Id": "req-abc.123"})
	if got := w.Header().Get("X-Request-Id"); got != "req-abc.123" {
		t.Errorf("X-Request-Id echoed = %q, want the caller's", got)
	}
	lines := s.logLines("graphql")
	if len(lines) != 1 {
		t.Fatalf("want one graphql log line, got %d:\n%s", len(lines), s.logs)
	}
	l := lines[0]
	want := map[string]any{
		"request_id": "req-abc.123", "operation": "Dashboard", "operation_type": "query", "outcome": "ok",
		"upstream_calls": float64(27), "upstream_estimate": float64(27), "status": float64(200), "path": "/query",
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("log %s = %v, want %v", k, l[k], v)
		}
	}
	if d, ok := l["duration_ms"].(float64); !ok || d <= 0 {
		t.Errorf("log duration_ms = %v, want a positive number", l["duration_ms"])
	}

	// A request id that could forge log lines or bloat them is replaced.
	for _, bad := range []string{"a\nb", strings.Repeat("x", 129), "<script>"} {
		w := s.query(`{ __typename }`, map[string]string{"X-Request-Id": bad})
		if got := w.Header().Get("X-Request-Id"); got == bad || got == "" {
			t.Errorf("request id %q echoed as %q, want a fresh one", bad, got)
		}
	}
	if got := s.query(`{ __typename }`, nil).Header().Get("X-Request-Id"); len(got) < 16 {
		t.Errorf("generated request id %q, want a random one", got)
	}
}

func TestErrorLinesCarryCodesAndNoToken(t *testing.T) {
	s := newStack(t, "")
	s.query(`query Mixed { invoice(uuid: "00000000-0000-4000-8000-000000000000") { amount } volumes(first: 1) { totalCount } }`, nil)
	l := s.logLines("graphql")
	if len(l) != 1 || l[0]["outcome"] != "partial" || !strings.Contains(strings.Join(anyStrings(l[0]["codes"]), ","), "NOT_FOUND") {
		t.Errorf("log lines %v, want one partial line with code NOT_FOUND", l)
	}

	// A signed file link: served, counted, and its opaque part kept out of the log.
	var resp struct {
		Data struct {
			Invoices struct {
				Nodes []struct {
					Files struct{ PDF struct{ URL string } } `json:"files"`
				}
			}
		}
	}
	w := s.query(`{ invoices(first: 1) { nodes { files { pdf { url } } } } }`, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || len(resp.Data.Invoices.Nodes) != 1 {
		t.Fatalf("file link query: %v %s", err, w.Body)
	}
	link, err := url.Parse(resp.Data.Invoices.Nodes[0].Files.PDF.URL)
	if err != nil || !strings.HasPrefix(link.Path, "/files/") {
		t.Fatalf("file link %q, want a /files/ URL", resp.Data.Invoices.Nodes[0].Files.PDF.URL)
	}
	dl := s.serve(httptest.NewRequest(http.MethodGet, link.RequestURI(), nil))
	if dl.Code != http.StatusOK {
		t.Fatalf("download answered %d: %s", dl.Code, dl.Body)
	}
	reqs := s.logLines("request")
	if len(reqs) == 0 || reqs[len(reqs)-1]["path"] != "/files/[redacted]" || reqs[len(reqs)-1]["upstream_calls"] != float64(1) {
		t.Errorf("download log lines = %v, want path /files/[redacted] and 1 upstream call", reqs)
	}

	all := s.logs.String()
	opaque := strings.TrimPrefix(link.Path, "/files/")
	for name, secret := range map[string]string{"token": secretToken, "file link": opaque, "Authorization header": "Bearer "} {
		if strings.Contains(all, secret) {
			t.Errorf("the log contains the %s", name)
		}
	}
}

func TestTracesFollowTheOperationIntoUpstreamCalls(t *testing.T) {
	s := newStack(t, "")
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	s.query(`query Two { invoice(uuid: "preview") { summary { amount } } volumes(first: 2) { nodes { id } } }`, map[string]string{"Traceparent": parent})

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, sp := range s.spans.Ended() {
		byName[sp.Name()] = sp
	}
	server, op := byName["POST /query"], byName["query Two"]
	summary, volumes := byName[upstream.EndpointInvoiceSummary], byName[upstream.EndpointVolumes]
	if server == nil || op == nil || summary == nil || volumes == nil {
		t.Fatalf("spans = %v, want the server span, the operation span and one per upstream call", keys(byName))
	}
	if got := server.SpanContext().TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id = %s, want the caller's traceparent's", got)
	}
	if op.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Errorf("operation span's parent is not the server span")
	}
	for _, up := range []sdktrace.ReadOnlySpan{summary, volumes} {
		if up.Parent().SpanID() != op.SpanContext().SpanID() {
			t.Errorf("%s: parent is not the operation span", up.Name())
		}
		status := false
		for _, a := range up.Attributes() {
			if a.Key == "http.response.status_code" && a.Value.AsInt64() == 200 {
				status = true
			}
		}
		if !status {
			t.Errorf("%s: no http.response.status_code 200 among %v", up.Name(), up.Attributes())
		}
	}
}

func TestGETRunsQueriesOnlyAndNeedsAPreflightHeader(t *testing.T) {
	s := newStack(t, "")
	get := func(query string, preflight bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/query?query="+url.QueryEscape(query), nil)
		if preflight {
			r.Header.Set("Apollo-Require-Preflight", "true")
		}
		return s.serve(r)
	}
	if w := get(`{ __typename }`, false); w.Code != http.StatusBadRequest {
		t.Errorf("GET without a preflight header answered %d, want 400", w.Code)
	}
	if w := get(`{ __typename }`, true); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"Query"`) {
		t.Errorf("GET query with a preflight header answered %d %s", w.Code, w.Body)
	}
	w := get(`mutation { __typename }`, true)
	if w.Code == http.StatusOK && !strings.Contains(w.Body.String(), `"errors"`) {
		t.Errorf("GET mutation answered %d %s, want it refused", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), `"data":{`) {
		t.Errorf("GET mutation produced data: %s", w.Body)
	}
}

func TestBodyLimitOnTheRealHandler(t *testing.T) {
	s := newStack(t, "")
	big := `{"query":"{ __typename }","variables":{"pad":"` + strings.Repeat("x", httpguard.DefaultMaxBodyBytes) + `"}}`
	r := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(big))
	r.Header.Set("Content-Type", "application/json")
	w := s.serve(r)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), graph.CodeRequestBodyTooLarge) {
		t.Errorf("a body over 1 MiB answered %d %.200s, want 413 %s", w.Code, w.Body, graph.CodeRequestBodyTooLarge)
	}
	if calls := s.sandbox.Requests(); len(calls) != 0 {
		t.Errorf("a refused body made upstream calls: %v", calls)
	}
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
