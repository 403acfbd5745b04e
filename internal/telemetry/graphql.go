package telemetry

// Telemetry of GraphQL operations: a span per operation, and a RequestRecord
// that the access log and metrics read once the request is done (operation
// name and type, error codes, upstream calls made and estimated). The HTTP
// middleware puts the record in the request's context, so everything below it
// (resolvers, loaders, the upstream transport) reaches the same one.

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// CodeUnknown stands in the record and metrics for an error that carries no extensions.code.
const CodeUnknown = "UNKNOWN"

// RequestRecord is what one HTTP request did, for its log line and metrics.
// It is safe for concurrent use: resolvers and loaders run concurrently.
type RequestRecord struct {
	// ID is the request id (the caller's X-Request-Id, or one generated).
	ID string

	upstreamCalls atomic.Int64

	mu      sync.Mutex
	op      OperationSummary
	matched string // the matched route's name, "" before (see Telemetry.Route)
}

// OperationSummary describes the GraphQL operation of a request.
type OperationSummary struct {
	// Handled: a GraphQL response was produced (false for requests refused before
	// the GraphQL handler, or for other routes).
	Handled bool
	// Name is the operation's name as the document declares it; "" when
	// anonymous or when the document did not parse.
	Name string
	// Type is query, mutation or subscription; "" when the document did not parse.
	Type string
	// Codes are the distinct extensions.code values of the response's errors, sorted.
	Codes []string
	// HasData: the response carried data (a partial success when Codes is not empty).
	HasData bool
	// EstimatedCalls is the upstream-call estimate of the budget guard, -1 when it did not run.
	EstimatedCalls int
	// Complexity is the operation's cost, -1 when the cost limit did not run.
	Complexity int
}

// Outcome is ok (no error), partial (data with errors) or error (no data).
func (s OperationSummary) Outcome() string {
	switch {
	case len(s.Codes) == 0:
		return "ok"
	case s.HasData:
		return "partial"
	}
	return "error"
}

// NewRequestRecord starts the record of a request.
func NewRequestRecord(id string) *RequestRecord {
	return &RequestRecord{ID: id, op: OperationSummary{EstimatedCalls: -1, Complexity: -1}}
}

type recordKey struct{}

// WithRequestRecord returns ctx carrying rec.
func WithRequestRecord(ctx context.Context, rec *RequestRecord) context.Context {
	return context.WithValue(ctx, recordKey{}, rec)
}

// RequestRecordFrom returns the record in ctx, or nil outside an HTTP request.
func RequestRecordFrom(ctx context.Context) *RequestRecord {
	rec, _ := ctx.Value(recordKey{}).(*RequestRecord)
	return rec
}

// CountUpstreamCall adds one HTTP exchange with DigitalOcean (a retry counts again).
func (r *RequestRecord) CountUpstreamCall() { r.upstreamCalls.Add(1) }

// UpstreamCalls is the number of HTTP exchanges with DigitalOcean so far.
func (r *RequestRecord) UpstreamCalls() int { return int(r.upstreamCalls.Load()) }

func (r *RequestRecord) setRoute(route string) {
	r.mu.Lock()
	r.matched = route
	r.mu.Unlock()
}

func (r *RequestRecord) route() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.matched == "" {
		return unrouted
	}
	return r.matched
}

// Operation returns what the GraphQL layer recorded.
func (r *RequestRecord) Operation() OperationSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.op
	s.Codes = slices.Clone(s.Codes)
	return s
}

// graphqlExtension is a gqlgen extension that traces every operation (a span
// from the start of parsing to the end of the response, with the operation's
// name, type, error codes and upstream calls) and fills the request's RequestRecord.
type graphqlExtension struct {
	tracer   trace.Tracer // nil: tracing is off
	estimate func(context.Context) (int, bool)
}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = graphqlExtension{}

// NewGraphQL is the extension for graph.Config.Extensions; it traces through tp
// (nil: no tracing, the record is still kept). estimate, when set, reads the
// upstream-call estimate the GraphQL layer made for the operation.
func NewGraphQL(tp trace.TracerProvider, estimate func(context.Context) (int, bool)) graphql.HandlerExtension {
	t := graphqlExtension{estimate: estimate}
	// With tracing off a span would only cost each operation its name, a
	// context layer that every resolver's lookups then walk, and the no-op calls.
	if _, off := tp.(noop.TracerProvider); tp != nil && !off {
		t.tracer = tp.Tracer("github.com/oceangraph/oceangraph/graph")
	}
	return t
}

func (graphqlExtension) ExtensionName() string { return "Telemetry" }

func (graphqlExtension) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse wraps every response, refusals before execution included
// (gqlgen runs response interceptors for those too), so that the span covers
// the resolvers: they run inside next.
func (t graphqlExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	var opCtx *graphql.OperationContext
	if graphql.HasOperationContext(ctx) {
		opCtx = graphql.GetOperationContext(ctx)
	}
	name, opType := "", ""
	start := time.Now()
	if opCtx != nil {
		if opCtx.Operation != nil {
			name, opType = opCtx.Operation.Name, string(opCtx.Operation.Operation)
		}
		if !opCtx.Stats.OperationStart.IsZero() {
			start = opCtx.Stats.OperationStart
		}
	}
	var span trace.Span = noop.Span{}
	if t.tracer != nil {
		spanName := "GraphQL operation"
		if opType != "" {
			spanName = opType
			if name != "" {
				spanName += " " + name
			}
		}
		ctx, span = t.tracer.Start(ctx, spanName, trace.WithTimestamp(start))
		defer span.End()
	}
	// Attributes cost allocations even on a span that records nothing.
	recording := span.IsRecording()
	if recording && opType != "" {
		span.SetAttributes(attribute.String("graphql.operation.type", opType))
	}
	if recording && name != "" {
		span.SetAttributes(attribute.String("graphql.operation.name", name))
	}

	resp := next(ctx)

	summary := OperationSummary{Handled: true, Name: name, Type: opType, EstimatedCalls: -1, Complexity: -1}
	if resp != nil {
		summary.Codes = errorCodes(resp)
		summary.HasData = len(resp.Data) > 0 && string(resp.Data) != "null"
	}
	if t.estimate != nil {
		if n, ok := t.estimate(ctx); ok {
			summary.EstimatedCalls = n
			if recording {
				span.SetAttributes(attribute.Int("oceangraph.upstream.estimated_calls", n))
			}
		}
	}
	// A body refused before parsing (not JSON, variables not an object) has no
	// operation context, and GetComplexityStats panics without one.
	if opCtx != nil {
		if c := extension.GetComplexityStats(ctx); c != nil {
			summary.Complexity = c.Complexity
		}
	}
	if rec := RequestRecordFrom(ctx); rec != nil {
		rec.mu.Lock()
		rec.op = summary
		rec.mu.Unlock()
		if recording {
			span.SetAttributes(attribute.Int("oceangraph.upstream.calls", rec.UpstreamCalls()))
		}
	}
	if recording && len(summary.Codes) > 0 {
		span.SetAttributes(attribute.StringSlice("graphql.error.codes", summary.Codes))
		span.SetStatus(codes.Error, summary.Outcome())
	}
	return resp
}

// errorCodes are the distinct codes of resp's errors, sorted.
func errorCodes(resp *graphql.Response) []string {
	var out []string
	for _, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		if code == "" {
			code = CodeUnknown
		}
		if !slices.Contains(out, code) {
			out = append(out, code)
		}
	}
	slices.Sort(out)
	return out
}
