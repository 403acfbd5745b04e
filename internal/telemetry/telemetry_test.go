package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/upstream"
)

func TestTracingIsOffWithoutAnEndpoint(t *testing.T) {
	tp, shutdown, err := NewTracerProvider(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	_, span := tp.Tracer("t").Start(context.Background(), "x")
	if span.IsRecording() {
		t.Errorf("a span records with tracing off")
	}
	if got := tracesURL("http://collector:4318/"); got != "http://collector:4318/v1/traces" {
		t.Errorf("tracesURL = %s", got)
	}
}

func TestAnAbortedResponseIsStillLogged(t *testing.T) {
	logs := &bytes.Buffer{}
	o := New(slog.New(slog.NewJSONHandler(logs, nil)), nil)
	h := o.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("%PDF-1.7 cut off"))
		panic(http.ErrAbortHandler) // as a download does when DigitalOcean's stream breaks
	}))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want the handler's panic passed on to net/http", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/invoices/x/pdf", nil))
	}()
	var line map[string]any
	if err := json.Unmarshal([]byte(logs.String()), &line); err != nil {
		t.Fatalf("log %q: %v", logs, err)
	}
	if line["aborted"] != true || line["status"] != float64(200) || line["level"] != "ERROR" {
		t.Errorf("log line %v, want aborted, status 200 as sent, level ERROR", line)
	}
}

// BenchmarkMiddleware is the cost the observability middleware adds to every
// request (request id, record, span, metrics, one log line), around a handler
// that does nothing.
func BenchmarkMiddleware(b *testing.B) {
	o := New(slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
	h := o.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
	r := httptest.NewRequest(http.MethodPost, "/query", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}

// Operation names are chosen by clients: the metrics keep the first few and fold the rest.
func TestOperationLabelsAreBounded(t *testing.T) {
	l := newLabelSet(2)
	got := []string{l.label("A"), l.label("B"), l.label("C"), l.label("A"), l.label(strings.Repeat("x", 65))}
	if strings.Join(got, ",") != "A,B,other,A,other" {
		t.Errorf("labels = %v, want the first two names kept and the rest folded into other", got)
	}
}

// BenchmarkUpstreamMetrics is what three upstream exchanges cost the metrics.
func BenchmarkUpstreamMetrics(b *testing.B) {
	o := New(slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for range b.N {
		for _, e := range []string{upstream.EndpointVolumes, upstream.EndpointInvoices, upstream.EndpointVolume} {
			o.ObserveUpstream(ctx, upstream.Call{Endpoint: e, Status: 200, Duration: time.Millisecond})
		}
	}
}
