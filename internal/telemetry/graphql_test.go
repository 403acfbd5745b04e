package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/oceangraph/oceangraph/graph"
	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/internal/telemetry"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

const callerToken = "dop_v1_telemetry_tests"

type gqlResponse struct {
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// telemetryRig is the real handler over the sandbox with the guards and the
// Telemetry extension, a span recorder, and an upstream observer that counts
// calls in the request's record as the server's does.
type telemetryRig struct {
	t       *testing.T
	handler http.Handler
	spans   *tracetest.SpanRecorder
	logs    *bytes.Buffer
}

func newTelemetryRig(t *testing.T) *telemetryRig {
	t.Helper()
	srv := httptest.NewServer(sandbox.New(sandbox.Options{Seed: 1}))
	t.Cleanup(srv.Close)
	client, err := upstream.New(upstream.Config{BaseURL: srv.URL, MaxRetries: -1, Observe: func(ctx context.Context, c upstream.Call) {
		graph.ObserveUpstream(ctx, c)
		if rec := telemetry.RequestRecordFrom(ctx); rec != nil {
			rec.CountUpstreamCall()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	logs := &bytes.Buffer{}
	h := graph.NewHandler(graph.Config{Client: client, Introspection: true, PublicURL: "https://og.example", Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Extensions: []graphql.HandlerExtension{graph.NewTelemetry(tp)}})
	return &telemetryRig{t: t, handler: h, spans: spans, logs: logs}
}

// do sends query and returns the request's record once the response is written.
func (r *telemetryRig) do(query string) *telemetry.RequestRecord {
	r.t.Helper()
	rec := telemetry.NewRequestRecord("req-1")
	body, _ := json.Marshal(map[string]any{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+callerToken)
	w := httptest.NewRecorder()
	r.handler.ServeHTTP(w, req.WithContext(telemetry.WithRequestRecord(req.Context(), rec)))
	return rec
}

func TestTelemetryRecordsTheDashboard(t *testing.T) {
	rig := newTelemetryRig(t)
	rec := rig.do(queries.Dashboard)
	op := rec.Operation()
	if !op.Handled || op.Name != "Dashboard" || op.Type != "query" || op.Outcome() != "ok" {
		t.Errorf("operation = %+v (outcome %s), want the query Dashboard, ok", op, op.Outcome())
	}
	if rec.UpstreamCalls() != queries.DashboardCalls || op.EstimatedCalls != queries.DashboardCalls {
		t.Errorf("upstream calls = %d, estimated %d; want both %d", rec.UpstreamCalls(), op.EstimatedCalls, queries.DashboardCalls)
	}
	if op.Complexity <= 0 {
		t.Errorf("complexity = %d, want the cost limit's figure", op.Complexity)
	}

	ended := rig.spans.Ended()
	i := slices.IndexFunc(ended, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "query Dashboard" })
	if i < 0 {
		t.Fatalf("no span named %q among %d", "query Dashboard", len(ended))
	}
	attrs := map[string]any{}
	for _, a := range ended[i].Attributes() {
		attrs[string(a.Key)] = a.Value.AsInterface()
	}
	if attrs["graphql.operation.name"] != "Dashboard" || attrs["oceangraph.upstream.calls"] != int64(queries.DashboardCalls) {
		t.Errorf("span attributes = %v, want the operation's name and %d upstream calls", attrs, queries.DashboardCalls)
	}
	if ended[i].Status().Code == codes.Error {
		t.Errorf("span status = %v, want not an error", ended[i].Status())
	}
}

func TestTelemetryRecordsRefusalsAndFailures(t *testing.T) {
	rig := newTelemetryRig(t)
	for _, tc := range []struct {
		name, query, wantType, wantOutcome string
		wantCodes                          []string
	}{
		{"over budget", `query Big { invoices(first: 100) { nodes { summary { amount } } } }`, "query", "error", []string{graph.CodeUpstreamBudgetExceeded}},
		{"unparsable", `{ invoices {`, "", "error", []string{"GRAPHQL_PARSE_FAILED"}},
		{"one field fails, its sibling answers", `query Mixed { invoice(uuid: "00000000-0000-4000-8000-000000000000") { amount } volumes(first: 1) { totalCount } }`, "query", "partial", []string{graph.CodeNotFound}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := rig.do(tc.query).Operation()
			if !op.Handled || op.Type != tc.wantType || op.Outcome() != tc.wantOutcome || !slices.Equal(op.Codes, tc.wantCodes) {
				t.Errorf("operation = %+v (outcome %s), want type %q, outcome %s, codes %v", op, op.Outcome(), tc.wantType, tc.wantOutcome, tc.wantCodes)
			}
		})
	}
	for _, s := range rig.spans.Ended() {
		if s.Name() == "query Big" && s.Status().Code != codes.Error {
			t.Errorf("span of a refused operation has status %v, want an error", s.Status())
		}
	}
}

// A request gqlgen refuses before parsing its document: the telemetry must
// not panic on it (a body refused this early has no operation context at
// all), and the client gets gqlgen's own error, coded BAD_REQUEST.
func TestRequestsRefusedBeforeParsing(t *testing.T) {
	rig := newTelemetryRig(t)
	const notDecoded = "json request body could not be decoded"
	for _, tc := range []struct {
		name, body string
		wantStatus int
		wantMsg    string
	}{
		{"not JSON", `not json`, http.StatusBadRequest, notDecoded},
		{"variables a string", `{"query":"{ balance { accountBalance } }","variables":"x"}`, http.StatusBadRequest, notDecoded},
		{"variables an array", `{"query":"{ balance { accountBalance } }","variables":[1]}`, http.StatusBadRequest, notDecoded},
		{"a JSON array, not an object", `[{"query":"{ balance { accountBalance } }"}]`, http.StatusBadRequest, notDecoded},
		// gqlgen answers its APQ refusals with 200; the README (and issue 9) says 400.
		{"persistedQuery not an object", `{"extensions":{"persistedQuery":""}}`, http.StatusBadRequest, "invalid APQ extension data"},
		{"persistedQuery of another version", `{"extensions":{"persistedQuery":{"version":2,"sha256Hash":"00"}}}`, http.StatusBadRequest, "unsupported APQ version"},
		{"persistedQuery hash not the query's", `{"query":"{ balance { accountBalance } }","extensions":{"persistedQuery":{"version":1,"sha256Hash":"00"}}}`, http.StatusBadRequest, "provided APQ hash does not match query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig.logs.Reset()
			rec := telemetry.NewRequestRecord("req-1")
			req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+callerToken)
			w := httptest.NewRecorder()
			rig.handler.ServeHTTP(w, req.WithContext(telemetry.WithRequestRecord(req.Context(), rec)))
			var resp gqlResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("body is not JSON (%v): %s", err, w.Body)
			}
			if w.Code != tc.wantStatus || len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != graph.CodeBadRequest ||
				!strings.HasPrefix(resp.Errors[0].Message, tc.wantMsg) {
				t.Errorf("got HTTP %d %s, want %d with gqlgen's %q coded BAD_REQUEST", w.Code, w.Body, tc.wantStatus, tc.wantMsg)
			}
			if len(resp.Errors) == 1 && strings.Contains(resp.Errors[0].Message, "body:") {
				t.Errorf("message %q echoes the request body back", resp.Errors[0].Message)
			}
			if strings.Contains(rig.logs.String(), "panic") {
				t.Errorf("the server logged a panic: %s", rig.logs)
			}
			if op := rec.Operation(); !op.Handled || !slices.Equal(op.Codes, []string{graph.CodeBadRequest}) || op.Complexity != -1 || op.EstimatedCalls != -1 {
				t.Errorf("record = %+v, want handled, codes [BAD_REQUEST], no complexity or estimate", op)
			}
		})
	}
}
