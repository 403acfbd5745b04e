package graph

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"

	"github.com/oceangraph/oceangraph/graph/generated"
	"github.com/oceangraph/oceangraph/internal/queries"
)

func TestComplexityScalesWithPageSize(t *testing.T) {
	es := entitiesCost{generated.NewExecutableSchema(*executableSchema())}
	cost := func(q string) int {
		return complexity.Calculate(context.Background(), es, operation(t, q), nil)
	}
	one, ten := cost(`{ volumes(first: 1) { nodes { id name } } }`), cost(`{ volumes(first: 10) { nodes { id name } } }`)
	if ten-1 != 10*(one-1) {
		t.Errorf("cost of 10 volumes = %d, of 1 = %d: want the selection counted once per item", ten, one)
	}
	if def, twenty := cost(`{ volumes { nodes { id } } }`), cost(`{ volumes(first: 20) { nodes { id } } }`); def != twenty {
		t.Errorf("cost without first = %d, with first: 20 = %d; want the default page of 20", def, twenty)
	}
	if d := cost(queries.Dashboard); d > DefaultMaxComplexity/10 {
		t.Errorf("the dashboard costs %d, want it far under the default limit %d", d, DefaultMaxComplexity)
	}

	h := guardedHarness(t, GuardLimits{MaxUpstreamCalls: 1 << 20}, true)
	h.upstreamCalls()
	e := h.refusal(h.post(`{ invoices(first: 200) { nodes { items(first: 200) { nodes { amount description product } } } } }`, nil), codeComplexityLimitExceeded)
	if e.Extensions["limit"] != float64(DefaultMaxComplexity) {
		t.Errorf("extensions = %v, want the limit %d", e.Extensions, DefaultMaxComplexity)
	}
}

// BenchmarkGuardsOnTheDashboard is what the depth, cost and upstream-budget
// checks add to each request of the dashboard (parsing is cached by gqlgen).
func BenchmarkGuardsOnTheDashboard(b *testing.B) {
	es := generated.NewExecutableSchema(*executableSchema())
	doc, errs := gqlparser.LoadQuery(es.Schema(), queries.Dashboard)
	if errs != nil {
		b.Fatal(errs)
	}
	cost := newComplexityLimit(DefaultMaxComplexity)
	if err := cost.Validate(es); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		opCtx := &graphql.OperationContext{Doc: doc, Operation: doc.Operations[0]}
		for _, g := range []graphql.OperationContextMutator{depthLimit{max: DefaultMaxDepth}, cost, upstreamBudget{max: DefaultMaxUpstreamCalls}} {
			if err := g.MutateOperationContext(ctx, opCtx); err != nil {
				b.Fatal(err)
			}
		}
	}
}
