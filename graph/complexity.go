package graph

import (
	"context"
	"math"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oceangraph/oceangraph/graph/generated"
)

// The cost guard is gqlgen's own extension.ComplexityLimit over the generated
// complexity functions, in which a connection costs its selection once per
// item of the requested page and _entities once per representation.

// complexityRoot holds the page-size rule of every connection field. No rule
// may read a String or ID argument: costs are remembered per document when
// those are an operation's only variables (costFixedByDocument).
func complexityRoot() generated.ComplexityRoot {
	var c generated.ComplexityRoot
	c.Query.BillingHistory = func(child int, first *int, _ *string, last *int, _ *string) int {
		return connectionCost(child, first, last)
	}
	c.Query.Invoices = c.Query.BillingHistory
	c.Invoice.Items = c.Query.BillingHistory
	c.Volume.Actions = func(child int, first *int, _ *string, last *int, _ *string) int {
		return connectionCost(child, first, last)
	}
	c.Volume.Snapshots = c.Volume.Actions
	c.Query.Volumes = func(child int, _, _ *string, first *int, _ *string, last *int, _ *string) int {
		return connectionCost(child, first, last)
	}
	// Each base64 written (every alias) may be megabytes of answer, not a
	// field's bytes; its byte budget is charged apart (base64budget.go).
	c.InvoiceFile.Base64 = func(int) int { return base64Cost }
	return c
}

// base64Cost is what one written InvoiceFile.base64 costs against MAX_COMPLEXITY.
const base64Cost = 100

// connectionCost is a connection's selection once per item of its page.
func connectionCost(child int, first, last *int) int {
	return cappedAdd(1, cappedMul(requestedPageSize(first, last), child))
}

// complexityLimit is gqlgen's limit; a refusal also carries its figures in
// extensions (complexity, limit), as clients have been told. The cost of an
// operation whose variables (if any) are all strings and IDs is its
// document's alone (costFixedByDocument): it is walked once and remembered
// (the walk was ~20 allocations and 1% of a volumes page's CPU, 1.2% of the
// 7-call dashboard's with its three ids).
type complexityLimit struct {
	*extension.ComplexityLimit
	known *operationCosts
}

func newComplexityLimit(max int) complexityLimit {
	return complexityLimit{extension.FixedComplexityLimit(max), &operationCosts{}}
}

// operationCosts are the costs of operations fixed by their document. gqlgen's
// query cache hands every request of the same text the same document, so the
// operation itself is the key; the map keeps its documents alive, so it is
// emptied when it reaches maxKnownCosts (the query cache's size).
type operationCosts struct {
	mu    sync.Mutex
	costs map[*ast.OperationDefinition]int
}

const maxKnownCosts = 1000

func (k *operationCosts) get(op *ast.OperationDefinition) (int, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n, ok := k.costs[op]
	return n, ok
}

func (k *operationCosts) put(op *ast.OperationDefinition, n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.costs == nil || len(k.costs) >= maxKnownCosts {
		k.costs = map[*ast.OperationDefinition]int{}
	}
	k.costs[op] = n
}

// Validate hands gqlgen's limit the schema with the cost of _entities.
func (c complexityLimit) Validate(es graphql.ExecutableSchema) error {
	return c.ComplexityLimit.Validate(entitiesCost{es})
}

func (c complexityLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	op := opCtx.Operation
	fixed := op != nil && costFixedByDocument(op)
	if fixed {
		// A refusal takes gqlgen's own path below, so that its error stays gqlgen's.
		if n, ok := c.known.get(op); ok && n <= c.Func(ctx, opCtx) {
			opCtx.Stats.SetExtension(c.ExtensionName(), &extension.ComplexityStats{Complexity: n, ComplexityLimit: c.Func(ctx, opCtx)})
			return nil
		}
	}
	err := c.ComplexityLimit.MutateOperationContext(ctx, opCtx)
	stats, ok := opCtx.Stats.GetExtension(c.ExtensionName()).(*extension.ComplexityStats)
	if err != nil && ok {
		err.Extensions["complexity"] = stats.Complexity
		err.Extensions["limit"] = stats.ComplexityLimit
	}
	if fixed && ok {
		c.known.put(op, stats.Complexity)
	}
	return err
}

// costFixedByDocument reports whether op's cost cannot change with its
// variables' values: it takes none but strings and IDs. Those can only be
// given to String and ID arguments (validation sees to that), which no cost
// function reads (complexityRoot reads page sizes, not cursors or ids), nor
// can they be @skip or @include conditions, which are Booleans (gqlgen's walk
// ignores those today, but it may not always).
func costFixedByDocument(op *ast.OperationDefinition) bool {
	for _, v := range op.VariableDefinitions {
		if t := v.Type; t.Elem != nil || (t.NamedType != "String" && t.NamedType != "ID") {
			return false
		}
	}
	return true
}

// entitiesCost counts _entities' selection once per representation: gqlgen
// generates that field's complexity function unexported, out of the reach of
// complexityRoot.
type entitiesCost struct{ graphql.ExecutableSchema }

func (e entitiesCost) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	if typeName == "Query" && field == "_entities" {
		reps, _ := args["representations"].([]any)
		return cappedAdd(1, cappedMul(max(len(reps), 1), child)), true
	}
	return e.ExecutableSchema.Complexity(ctx, typeName, field, child, args)
}

// cappedAdd is a+b, at most math.MaxInt32 (a query may ask for absurd sizes).
func cappedAdd(a, b int) int { return min(a+b, math.MaxInt32) }

// cappedMul is a*b (both not negative), at most math.MaxInt32.
func cappedMul(a, b int) int {
	if a != 0 && b > math.MaxInt32/a {
		return math.MaxInt32
	}
	return min(a*b, math.MaxInt32)
}
