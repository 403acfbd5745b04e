package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// depthLimit refuses an operation whose fields nest deeper than max, and one
// that expands through its fragments to more than maxExpandedFields (it runs
// before the cost and budget guards, which then walk a bounded document).
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	w := &fieldWalk{}
	depth := operationDepth(w, opCtx.Operation.SelectionSet)
	if w.exceeded() {
		return limitError(codeComplexityLimitExceeded,
			fmt.Sprintf("operation expands to more than %d fields through its fragments", maxExpandedFields),
			map[string]any{"limit": maxExpandedFields})
	}
	if depth > d.max {
		return limitError(codeDepthLimitExceeded,
			fmt.Sprintf("operation has depth %d, which exceeds the limit of %d", depth, d.max),
			map[string]any{"depth": depth, "limit": d.max})
	}
	return nil
}

// operationDepth is how deeply the fields of set nest (fragments add none).
func operationDepth(w *fieldWalk, set ast.SelectionSet) int {
	deepest := 0
	w.each(set, func(f *ast.Field, _ string) {
		if isIntrospection(f) {
			// Introspection nests ofType many levels deep by design;
			// gqlparser's MaxIntrospectionDepth rule bounds it.
			return
		}
		deepest = max(deepest, 1+operationDepth(w, f.SelectionSet))
	})
	return deepest
}

func isIntrospection(f *ast.Field) bool { return f.Name == "__schema" || f.Name == "__type" }
