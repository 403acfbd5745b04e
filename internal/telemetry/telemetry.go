// Package telemetry is the server's access log (one structured line per
// request, one per GraphQL operation on /query), its Prometheus metrics on a
// registry of its own, and OpenTelemetry traces when an OTLP endpoint is set.
// What the GraphQL layer learns (operation, outcome, error codes) reaches the
// log line and the metrics through the request's RequestRecord.
package telemetry

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/oceangraph/oceangraph/upstream"
)

// maxOperationLabels bounds the distinct operation names the metrics keep:
// names are chosen by clients, and each one is a time series.
const maxOperationLabels = 100

// Telemetry is the server's logs, metrics and traces, shared by all requests.
type Telemetry struct {
	logger     *slog.Logger
	registry   *prometheus.Registry
	tp         trace.TracerProvider
	tracer     trace.Tracer
	operations *labelSet
	codes      *labelSet

	inFlight *prometheus.GaugeVec

	// Each vector's children, kept by their label values once made: a
	// request then costs no label hashing and vector lookup (WithLabelValues).
	graphqlRequests series[[2]string, prometheus.Counter]
	graphqlErrors   series[string, prometheus.Counter]
	httpRequests    series[httpKey, prometheus.Counter]
	upstreamCalls   series[upstreamKey, upstreamSeries]
}

type httpKey struct {
	route  string
	status int
}

type upstreamKey struct {
	endpoint string
	status   int // 0: no answer
}

// upstreamSeries are one endpoint and status's exchange counter and latency histogram.
type upstreamSeries struct {
	calls   prometheus.Counter
	latency prometheus.Observer
}

// series keeps the children of a metric vector by their labels, made on
// first use. The label values are bounded where they are chosen (routes,
// endpoints, statuses, labelSet), so the map is too.
type series[K comparable, M any] struct {
	mu   sync.RWMutex
	m    map[K]M
	make func(K) M
}

func newSeries[K comparable, M any](make func(K) M) series[K, M] {
	return series[K, M]{m: map[K]M{}, make: make}
}

func (s *series[K, M]) get(k K) M {
	s.mu.RLock()
	m, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		return m
	}
	m = s.make(k)
	s.mu.Lock()
	s.m[k] = m
	s.mu.Unlock()
	return m
}

// New registers the metrics on a fresh registry and traces through tp (nil: no tracing).
func New(logger *slog.Logger, tp trace.TracerProvider) *Telemetry {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	reg := prometheus.NewRegistry()
	f := metricFactory{reg}
	graphqlRequests := f.counter("oceangraph_graphql_requests_total",
		"GraphQL operations by operation name (anonymous, unparsed, or other beyond the first 100 names) and outcome (ok, partial, error).",
		"operation", "outcome")
	graphqlErrors := f.counter("oceangraph_graphql_errors_total",
		"GraphQL errors returned, by extensions.code.", "code")
	httpRequests := f.counter("oceangraph_http_requests_total",
		"HTTP requests by route and status.", "route", "status")
	upstreamCalls := f.counter("oceangraph_upstream_requests_total",
		"HTTP exchanges with DigitalOcean (retries included) by endpoint and status (error: no answer).",
		"endpoint", "status")
	upstreamLatency := f.histogram("oceangraph_upstream_request_duration_seconds",
		"Latency of one HTTP exchange with DigitalOcean, by endpoint.",
		[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "endpoint")
	o := &Telemetry{
		logger:     logger,
		registry:   reg,
		tp:         tp,
		tracer:     tp.Tracer("github.com/oceangraph/oceangraph"),
		operations: newLabelSet(maxOperationLabels),
		codes:      newLabelSet(50),
		inFlight: f.gauge("oceangraph_http_requests_in_flight",
			"HTTP requests being served, by route.", "route"),
		graphqlRequests: newSeries(func(k [2]string) prometheus.Counter { return graphqlRequests.WithLabelValues(k[0], k[1]) }),
		graphqlErrors:   newSeries(func(code string) prometheus.Counter { return graphqlErrors.WithLabelValues(code) }),
		httpRequests: newSeries(func(k httpKey) prometheus.Counter {
			return httpRequests.WithLabelValues(k.route, strconv.Itoa(k.status))
		}),
		upstreamCalls: newSeries(func(k upstreamKey) upstreamSeries {
			status := "error"
			if k.status != 0 {
				status = strconv.Itoa(k.status)
			}
			return upstreamSeries{upstreamCalls.WithLabelValues(k.endpoint, status), upstreamLatency.WithLabelValues(k.endpoint)}
		}),
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return o
}

// metricFactory registers metrics on one registry; a bad definition is a bug, so it panics.
type metricFactory struct{ reg prometheus.Registerer }

func (f metricFactory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f metricFactory) gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f metricFactory) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// Registerer is the server's metrics registry, for packages with metrics of their own (the shared tier, the cache).
func (o *Telemetry) Registerer() prometheus.Registerer { return o.registry }

// MetricsHandler serves /metrics from the server's own registry.
func (o *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{Registry: o.registry})
}

// ObserveUpstream is an upstream.Config.Observe: it counts the exchange in
// the metrics and in the request's record, and records a client span (built
// after the fact from the exchange's duration) under the operation's span.
func (o *Telemetry) ObserveUpstream(ctx context.Context, c upstream.Call) {
	endpoint := c.Endpoint
	if endpoint == "" {
		endpoint = "unknown"
	}
	m := o.upstreamCalls.get(upstreamKey{endpoint, c.Status})
	m.calls.Inc()
	m.latency.Observe(c.Duration.Seconds())
	if rec := RequestRecordFrom(ctx); rec != nil {
		rec.CountUpstreamCall()
	}

	if _, off := o.tp.(noop.TracerProvider); off {
		return // tracing off: the client span would be a no-op built for nothing
	}
	end := time.Now()
	path, _, _ := strings.Cut(c.URL, "?")
	_, span := o.tracer.Start(ctx, endpoint,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(end.Add(-c.Duration)),
		trace.WithAttributes(
			attribute.String("http.request.method", http.MethodGet),
			attribute.String("url.path", path),
			attribute.String("oceangraph.upstream.endpoint", endpoint),
		))
	if c.Attempt > 1 {
		span.SetAttributes(attribute.Int("http.request.resend_count", c.Attempt-1))
	}
	if c.Status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", c.Status))
	}
	switch {
	case c.Err != nil:
		span.SetAttributes(attribute.String("error.type", fmt.Sprintf("%T", c.Err)))
		span.SetStatus(codes.Error, "no answer from DigitalOcean")
	case c.Status >= 400:
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(c.Status)))
		span.SetStatus(codes.Error, "")
	}
	span.End(trace.WithTimestamp(end))
}

// Middleware gives every request its id (the caller's X-Request-Id when it is
// sane, else a fresh one, echoed in the response), its record and a server
// span (otelhttp), and when it is done one log line and its metrics, all
// labelled with the route the mux matched (see Route).
func (o *Telemetry) Middleware(next http.Handler) http.Handler {
	var traced http.Handler = next
	// With tracing off every span is a no-op: otelhttp would only cost each
	// request its wrappers (about 2% of a small query's CPU).
	if _, off := o.tp.(noop.TracerProvider); !off {
		traced = o.traced(next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Request-Id", id)
		rec := NewRequestRecord(id)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			// Also when the handler panics: a download cut off mid-stream
			// aborts with http.ErrAbortHandler, and its line must still be written.
			p := recover()
			if p != nil && sw.status == 0 {
				sw.status = http.StatusInternalServerError
			}
			o.finish(r, rec.route(), sw.statusCode(), sw.written, p != nil, rec, time.Since(start))
			if p != nil {
				panic(p)
			}
		}()
		traced.ServeHTTP(sw, r.WithContext(WithRequestRecord(r.Context(), rec)))
	})
}

// traced is next under the server span of otelhttp, carrying the request id.
func (o *Telemetry) traced(next http.Handler) http.Handler {
	return otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("oceangraph.request_id", RequestRecordFrom(r.Context()).ID))
		next.ServeHTTP(w, r)
	}), "",
		otelhttp.WithTracerProvider(o.tp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		// otelhttp names the span again once the mux has set r.Pattern.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + routeName(r.Pattern) }),
	)
}

// unrouted labels a request no route matched.
const unrouted = "other"

// routeName names a mux pattern in spans, logs and metrics: the pattern
// without its method (and "/" for the root's "/{$}").
func routeName(pattern string) string {
	if pattern == "" {
		return unrouted
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	return strings.TrimSuffix(pattern, "{$}")
}

// Route instruments the handler of one mux pattern: the route's in-flight
// gauge (promhttp), and the route's name in the request's record.
func (o *Telemetry) Route(pattern string, next http.Handler) http.Handler {
	named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := RequestRecordFrom(r.Context()); rec != nil {
			rec.setRoute(routeName(r.Pattern))
		}
		next.ServeHTTP(w, r)
	})
	return promhttp.InstrumentHandlerInFlight(o.inFlight.WithLabelValues(routeName(pattern)), named)
}

// finish writes the request's log line and counts it in the metrics.
// aborted: the handler panicked (the response was cut off).
func (o *Telemetry) finish(r *http.Request, route string, status int, written int64, aborted bool, rec *RequestRecord, elapsed time.Duration) {
	o.httpRequests.get(httpKey{route, status}).Inc()
	attrs := append(make([]slog.Attr, 0, 14), // room for every attribute: one allocation
		slog.String("request_id", rec.ID),
		slog.String("method", r.Method),
		slog.String("path", redactPath(r.URL.Path)),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int64("bytes", written),
		slog.Int("upstream_calls", rec.UpstreamCalls()),
	)
	if aborted {
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	msg := "request"
	if op := rec.Operation(); op.Handled {
		msg = "graphql"
		name := operationLabel(op)
		o.graphqlRequests.get([2]string{o.operations.label(name), op.Outcome()}).Inc()
		for _, c := range op.Codes {
			o.graphqlErrors.get(o.codes.label(c)).Inc()
		}
		attrs = append(attrs,
			slog.String("operation", truncated(name, maxLoggedName)),
			slog.String("operation_type", op.Type),
			slog.String("outcome", op.Outcome()),
		)
		if len(op.Codes) > 0 {
			attrs = append(attrs, slog.Any("codes", op.Codes))
		}
		if op.EstimatedCalls >= 0 {
			attrs = append(attrs, slog.Int("upstream_estimate", op.EstimatedCalls))
		}
		if op.Complexity >= 0 {
			attrs = append(attrs, slog.Int("complexity", op.Complexity))
		}
	}
	level := slog.LevelInfo
	switch {
	case status >= 500 || aborted:
		level = slog.LevelError
	case route == "/healthz" || route == "/readyz" || route == "/metrics":
		level = slog.LevelDebug // probes and scrapes would drown the log
	}
	// The handler directly, not Logger.LogAttrs: that also records the
	// caller's program counter (runtime.Callers), which no handler here shows.
	ctx, h := r.Context(), o.logger.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	line := slog.NewRecord(time.Now(), level, msg, 0)
	line.AddAttrs(attrs...)
	h.Handle(ctx, line)
}

// operationLabel names an operation in logs and metrics: its declared name,
// "anonymous", or "unparsed" when the document did not get that far.
func operationLabel(op OperationSummary) string {
	switch {
	case op.Type == "":
		return "unparsed"
	case op.Name == "":
		return "anonymous"
	}
	return op.Name
}

// labelSet admits the first max distinct values of a client-chosen label and
// folds every later one into "other", so that the metrics' series stay bounded.
type labelSet struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

func newLabelSet(max int) *labelSet { return &labelSet{max: max, seen: map[string]bool{}} }

func (l *labelSet) label(v string) string {
	if len(v) > 64 {
		return "other"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[v] {
		return v
	}
	if len(l.seen) >= l.max {
		return "other"
	}
	l.seen[v] = true
	return v
}

// requestID returns the caller's id when it is short and plain (it is echoed
// and logged), else a fresh random one.
func requestID(incoming string) string {
	if n := len(incoming); n > 0 && n <= 128 && strings.Trim(incoming, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+=") == "" {
		return incoming
	}
	return strings.ToLower(rand.Text())
}

// redactPath is a path fit for the log: a signed file link is a bearer
// credential for its file (and may seal the caller's token), so only its route is kept.
func redactPath(path string) string {
	if strings.HasPrefix(path, "/files/") {
		return "/files/[redacted]"
	}
	return truncated(path, maxLoggedPath)
}

// Bounds on what a client chooses and the log repeats: a 500 KB path must not
// write 500 KB of log.
const (
	maxLoggedPath = 256
	maxLoggedName = 128
)

// truncated is s cut to at most n bytes (on a character boundary), saying how much was cut.
func truncated(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[" + strconv.Itoa(len(s)-cut) + " more bytes]"
}

// statusWriter remembers the status and size of a response. Unwrap lets
// http.ResponseController reach the connection's Flush and deadlines (the
// downloads stream).
type statusWriter struct {
	http.ResponseWriter
	status  int
	written int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

// Flush passes a flush on, for handlers that test for http.Flusher.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) statusCode() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// WithRequestIDs adds the request id to every log record made with a
// request's context (logger.ErrorContext(ctx, ...) in a resolver), so that
// such a line can be matched with the request's own line.
func WithRequestIDs(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if rec := RequestRecordFrom(ctx); rec != nil {
		r.AddAttrs(slog.String("request_id", rec.ID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// NewTracerProvider exports spans over OTLP/HTTP to endpoint (the base URL
// of OTEL_EXPORTER_OTLP_ENDPOINT; /v1/traces is appended as the
// specification says); with no endpoint, tracing is off. The other OTEL_*
// variables (headers, sampler, service name, resource attributes) are
// honoured by the SDK. The returned func flushes and stops the exporter.
func NewTracerProvider(ctx context.Context, endpoint string) (trace.TracerProvider, func(context.Context) error, error) {
	if endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(tracesURL(endpoint)))
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "oceangraph"), attribute.String("service.version", upstream.Version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return nil, nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// tracesURL is the OTLP/HTTP traces URL under a base endpoint.
func tracesURL(endpoint string) string {
	return strings.TrimRight(endpoint, "/") + "/v1/traces"
}
