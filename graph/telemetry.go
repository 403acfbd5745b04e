package graph

// The GraphQL layer's part in a request's telemetry (internal/telemetry): the
// operation's extension with this package's upstream-call estimate.

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/trace"

	"github.com/oceangraph/oceangraph/internal/telemetry"
)

// NewTelemetry is the telemetry extension for Config.Extensions, tracing
// through tp (nil: no tracing); the record gets the budget guard's estimate.
func NewTelemetry(tp trace.TracerProvider) graphql.HandlerExtension {
	return telemetry.NewGraphQL(tp, estimatedCalls)
}

// estimatedCalls is the budget guard's estimate for the operation in ctx.
func estimatedCalls(ctx context.Context) (int, bool) {
	if b := budgetStatsFrom(ctx); b != nil {
		return b.Estimated, true
	}
	return 0, false
}
