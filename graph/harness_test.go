package graph

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oceangraph/oceangraph/graph/generated"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// callerToken is the caller's token in tests; the sandbox derives an account from it.
const callerToken = "dop_v1_graph_tests"

// harness is the real GraphQL handler in-process, its client pointed at an
// upstream (the sandbox, or a stub) served by httptest on loopback. It is this
// package's one test harness: options adjust the Config it starts from.
type harness struct {
	t       testing.TB
	handler http.Handler
	cfg     Config           // what NewHandler was given
	sandbox *sandbox.Sandbox // nil with a stub upstream
	logs    *bytes.Buffer    // Config.Logger's output, unless an option replaced it
}

// newSandboxHarness starts the sandbox and the handler in front of it.
func newSandboxHarness(t testing.TB, tweak ...func(*Config)) *harness {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Seed: 1})
	h := newHarness(t, sb, tweak...)
	h.sandbox = sb
	return h
}

// newHarness starts upstream on loopback and the handler in front of it.
func newHarness(t testing.TB, upstreamHandler http.Handler, tweak ...func(*Config)) *harness {
	t.Helper()
	srv := httptest.NewServer(upstreamHandler)
	t.Cleanup(srv.Close)
	return newHarnessAt(t, srv.URL, tweak...)
}

// newHarnessAt starts the handler with its client pointed at baseURL, as the
// server wires it (its guards at their defaults, the telemetry extension, file
// links), then with each tweak applied to the Config.
func newHarnessAt(t testing.TB, baseURL string, tweak ...func(*Config)) *harness {
	t.Helper()
	links, err := NewFileLinks(bytes.Repeat([]byte{7}, minFileLinkKeySize), 0)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	cfg := Config{
		Client:        mustClient(t, baseURL),
		Introspection: true,
		PublicURL:     "https://og.example",
		Links:         links,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
		Extensions:    []graphql.HandlerExtension{NewTelemetry(nil)},
	}
	for _, f := range tweak {
		f(&cfg)
	}
	return &harness{t: t, handler: NewHandler(cfg), cfg: cfg, logs: logs}
}

// gqlResponse is a GraphQL response with the raw data kept for typed decoding.
type gqlResponse struct {
	Data       json.RawMessage `json:"data"`
	Errors     []gqlError      `json:"errors"`
	Extensions map[string]any  `json:"extensions"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// post sends a query with the test token and returns the decoded response.
func (h *harness) post(query string, vars map[string]any) gqlResponse {
	h.t.Helper()
	return h.postAs("Bearer "+callerToken, query, vars)
}

// postAs sends a query with the given Authorization header ("" for none).
func (h *harness) postAs(authorization, query string, vars map[string]any) gqlResponse {
	h.t.Helper()
	return h.decoded(h.send(authorization, map[string]any{"query": query, "variables": vars}))
}

// send POSTs body as JSON to /query with the given Authorization header ("" for none)
// and returns the raw response body.
func (h *harness) send(authorization string, body map[string]any) []byte {
	raw, _ := json.Marshal(body)
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return rec.Body.Bytes()
}

// decoded reads a GraphQL response, failing the test if it is not one.
func (h *harness) decoded(raw []byte) gqlResponse {
	h.t.Helper()
	var resp gqlResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		h.t.Fatalf("response is not JSON (%v): %s", err, raw)
	}
	return resp
}

// mustData sends a query that must succeed and decodes its data into out.
func (h *harness) mustData(query string, vars map[string]any, out any) gqlResponse {
	h.t.Helper()
	resp := h.post(query, vars)
	if len(resp.Errors) > 0 {
		h.t.Fatalf("query failed: %+v\nquery: %s", resp.Errors, query)
	}
	if err := json.Unmarshal(resp.Data, out); err != nil {
		h.t.Fatalf("decode data: %v: %s", err, resp.Data)
	}
	return resp
}

// upstreamCalls returns the sandbox's request log sorted, then resets it.
func (h *harness) upstreamCalls() []string {
	h.t.Helper()
	calls := h.sandbox.Requests()
	h.sandbox.Reset()
	slices.Sort(calls)
	return calls
}

// expectCalls runs query and asserts the exact (sorted) upstream requests it caused.
func (h *harness) expectCalls(name, query string, want ...string) gqlResponse {
	h.t.Helper()
	h.sandbox.Reset()
	resp := h.post(query, nil)
	got := h.upstreamCalls()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		h.t.Errorf("%s: upstream requests\n got: %s\nwant: %s", name, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
	return resp
}

// assertCalls compares sorted upstream request lists.
func assertCalls(t *testing.T, name string, got, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s: upstream requests\n got: %s\nwant: %s", name, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

// decode unmarshals a response's data.
func decode(t *testing.T, resp gqlResponse, out any) {
	t.Helper()
	if err := json.Unmarshal(resp.Data, out); err != nil {
		t.Fatalf("decode data: %v: %s", err, resp.Data)
	}
}

// mustClient builds an upstream client for baseURL, observed by this package.
func mustClient(t testing.TB, baseURL string) *upstream.Client {
	t.Helper()
	c, err := upstream.New(upstream.Config{BaseURL: baseURL, MaxRetries: -1, Observe: ObserveUpstream})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func executableSchema() *generated.Config {
	return &generated.Config{Resolvers: &Resolver{}, Complexity: complexityRoot()}
}

// operation parses and validates query against the real schema.
func operation(t *testing.T, query string) *ast.OperationDefinition {
	t.Helper()
	es := generated.NewExecutableSchema(*executableSchema())
	doc, errs := gqlparser.LoadQuery(es.Schema(), query)
	if errs != nil {
		t.Fatalf("query does not validate: %v\n%s", errs, query)
	}
	return doc.Operations[0]
}

// guardedHarness is the sandbox harness with the guards' limits set.
func guardedHarness(t *testing.T, limits GuardLimits, introspection bool) *harness {
	return newSandboxHarness(t, func(c *Config) {
		c.Guards = limits
		c.Introspection = introspection
	})
}

// refusal asserts that resp is one error with code and no data, and that the
// sandbox saw no request.
func (h *harness) refusal(resp gqlResponse, code string) gqlError {
	h.t.Helper()
	if len(resp.Errors) != 1 {
		h.t.Fatalf("errors = %+v, want exactly one %s", resp.Errors, code)
	}
	e := resp.Errors[0]
	if got := e.Extensions["code"]; got != code {
		h.t.Errorf("code = %v (%s), want %s", got, e.Message, code)
	}
	if d := strings.TrimSpace(string(resp.Data)); d != "" && d != "null" {
		h.t.Errorf("data = %s, want none for a refused operation", d)
	}
	if calls := h.upstreamCalls(); len(calls) != 0 {
		h.t.Errorf("a refused operation made upstream calls: %v", calls)
	}
	return e
}
