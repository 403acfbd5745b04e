package graph

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

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
// checks add to each request of the dashboard and of the peers' 7-call one
// with its three ids (parsing is cached by gqlgen).
func BenchmarkGuardsOnTheDashboard(b *testing.B) {
	es := generated.NewExecutableSchema(*executableSchema())
	cost := newComplexityLimit(DefaultMaxComplexity)
	if err := cost.Validate(es); err != nil {
		b.Fatal(err)
	}
	ids := map[string]any{"a": "fdabb512-6faf-443c-ba2e-665452332a9e", "b": "8b6d4c7e-2a1f-4a8e-9a55-3c2a7d6e1f00", "c": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}
	for _, c := range []struct {
		name, query string
		vars        map[string]any
	}{{"Dashboard", queries.Dashboard, nil}, {"PeersDashboard", queries.PeersDashboard, ids}} {
		b.Run(c.name, func(b *testing.B) {
			doc, errs := gqlparser.LoadQuery(es.Schema(), c.query)
			if errs != nil {
				b.Fatal(errs)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				opCtx := &graphql.OperationContext{Doc: doc, Operation: doc.Operations[0], Variables: c.vars}
				for _, g := range []graphql.OperationContextMutator{depthLimit{max: DefaultMaxDepth}, cost, upstreamBudget{max: DefaultMaxUpstreamCalls}} {
					if err := g.MutateOperationContext(ctx, opCtx); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// An operation without variables, or with only strings and IDs, is walked
// once: later requests of the same document get the remembered cost, and one
// over the limit is still refused with gqlgen's error; an operation with
// other variables (a page size) is walked every time.
func TestComplexityRememberedOnlyWithoutVariablesThatCount(t *testing.T) {
	es := generated.NewExecutableSchema(*executableSchema())
	limit := newComplexityLimit(1000)
	if err := limit.Validate(es); err != nil {
		t.Fatal(err)
	}
	run := func(q string, vars map[string]any) (int, *gqlerror.Error) {
		doc, errs := gqlparser.LoadQuery(es.Schema(), q)
		if errs != nil {
			t.Fatal(errs)
		}
		return runGuard(t, limit, doc, vars)
	}
	// One document, as gqlgen's query cache hands it to every request of the same text.
	doc, _ := gqlparser.LoadQuery(es.Schema(), `{ volumes(first: 20) { nodes { id name } } }`)
	first, err1 := runGuard(t, limit, doc, nil)
	if _, known := limit.known.get(doc.Operations[0]); !known || err1 != nil {
		t.Fatalf("a fixed operation's cost is not remembered (err %v)", err1)
	}
	if again, err := runGuard(t, limit, doc, nil); again != first || err != nil {
		t.Errorf("remembered cost %d (err %v), want %d as walked", again, err, first)
	}
	big, _ := gqlparser.LoadQuery(es.Schema(), `{ invoices(first: 200) { nodes { items(first: 200) { nodes { amount } } } } }`)
	for range 2 {
		if _, err := runGuard(t, limit, big, nil); err == nil || err.Extensions["code"] != codeComplexityLimitExceeded {
			t.Errorf("an operation over the limit, asked again: got %v, want %s", err, codeComplexityLimitExceeded)
		}
	}
	const q = `query($n: Int) { invoices(first: $n) { nodes { items(first: 100) { nodes { amount } } } } }`
	if _, err := run(q, map[string]any{"n": 1}); err != nil {
		t.Fatalf("one invoice: %v", err)
	}
	if _, err := run(q, map[string]any{"n": 100}); err == nil {
		t.Errorf("the same operation with a larger page from its variables passed: its cost was remembered")
	}
	ids, errs := gqlparser.LoadQuery(es.Schema(), `query($a: ID!, $b: String) { a: invoice(uuid: $a) { items(first: 5) { nodes { amount } } } volumes(first: 3, name: $b) { nodes { id } } }`)
	if errs != nil {
		t.Fatal(errs)
	}
	withIDs, _ := runGuard(t, limit, ids, map[string]any{"a": "x", "b": "y"})
	if known, ok := limit.known.get(ids.Operations[0]); !ok || known != withIDs {
		t.Errorf("an operation taking only ids: remembered %d, %v; want its cost %d remembered", known, ok, withIDs)
	}
	if other, err := runGuard(t, limit, ids, map[string]any{"a": "z", "b": nil}); other != withIDs || err != nil {
		t.Errorf("the same operation with other ids: cost %d (err %v), want %d", other, err, withIDs)
	}
}

// runGuard runs the cost guard on doc's operation and returns the cost it recorded.
func runGuard(t *testing.T, limit complexityLimit, doc *ast.QueryDocument, vars map[string]any) (int, *gqlerror.Error) {
	t.Helper()
	opCtx := &graphql.OperationContext{Doc: doc, Operation: doc.Operations[0], Variables: vars}
	err := limit.MutateOperationContext(context.Background(), opCtx)
	stats, _ := opCtx.Stats.GetExtension(limit.ExtensionName()).(*extension.ComplexityStats)
	if stats == nil {
		t.Fatal("no complexity recorded")
	}
	return stats.Complexity, err
}
