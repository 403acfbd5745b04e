package graph

import (
	"fmt"
	"strings"
	"testing"
)

func TestDepthLimit(t *testing.T) {
	h := guardedHarness(t, GuardLimits{MaxDepth: 4}, true)
	h.upstreamCalls()
	e := h.refusal(h.post(`{ invoices { edges { node { summary { productCharges { items { name } } } } } } }`, nil), codeDepthLimitExceeded)
	if e.Extensions["depth"] != float64(7) || e.Extensions["limit"] != float64(4) {
		t.Errorf("extensions = %v, want depth 7 and limit 4", e.Extensions)
	}

	// Introspection nests far deeper than any limit; gqlparser bounds it instead.
	resp := h.post(introspectionQuery, nil)
	if len(resp.Errors) > 0 {
		t.Errorf("the Playground's introspection query was refused: %+v", resp.Errors)
	}
	resp = h.post(`{ _service { sdl } }`, nil)
	if len(resp.Errors) > 0 {
		t.Errorf("_service { sdl } was refused: %+v", resp.Errors)
	}
}

func TestFragmentBombIsRefused(t *testing.T) {
	// Each fragment spreads the next twice: 2^20 fields once expanded.
	var b strings.Builder
	b.WriteString("{ ...f0 }\n")
	for i := range 20 {
		fmt.Fprintf(&b, "fragment f%d on Query { ...f%d ...f%d }\n", i, i+1, i+1)
	}
	b.WriteString("fragment f20 on Query { __typename }\n")
	h := guardedHarness(t, GuardLimits{}, true)
	h.upstreamCalls()
	h.refusal(h.post(b.String(), nil), codeComplexityLimitExceeded)
}

// introspectionQuery is GraphiQL's, trimmed to the part that nests deepest.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name }
    types { ...FullType }
  }
}
fragment FullType on __Type {
  kind name
  fields(includeDeprecated: true) { name args { ...InputValue } type { ...TypeRef } }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`
