package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oceangraph/oceangraph/graph/generated"
)

// dashboardQuery is the canonical dashboard: 12 invoices with the preview, each
// invoice's summary amount and first 5 items, 50 volumes and 10 billing events.
const dashboardQuery = `query Dashboard {
  invoices(first: 12) {
    totalCount
    preview { uuid amount period updatedAt }
    nodes {
      uuid invoiceId period amount
      summary { amount }
      items(first: 5) { totalCount nodes { description amount } }
    }
  }
  volumes(first: 50) { totalCount nodes { id name sizeGigabytes region { slug } } }
  billingHistory(first: 10) { nodes { type description amount date invoiceUuid } }
}`

// dashboardCalls is the number of distinct upstream resources the dashboard
// needs: the invoices page (with the preview), 12 summaries, 12 item pages,
// the volumes page and the billing-history page.
const dashboardCalls = 1 + 12 + 12 + 1 + 1

func executableSchema() *generated.Config {
	return &generated.Config{Resolvers: &Resolver{}}
}

// operation parses and validates query against the real schema.
func operation(t *testing.T, query string) *ast.OperationDefinition {
	t.Helper()
	es := generated.NewExecutableSchema(*executableSchema())
	doc, errs := gqlparser.LoadQuery(es.Schema(), query)
	if errs != nil {
		t.Fatalf("query does not validate: %v\n%s", errs, query)
	}
	return doc.Operations[0]
}

func TestEstimateUpstreamCalls(t *testing.T) {
	reps := []any{
		map[string]any{"__typename": "Volume", "id": "v1"},
		map[string]any{"__typename": "Invoice", "uuid": "a"},
		map[string]any{"__typename": "Invoice", "uuid": "b"},
	}
	for _, tc := range []struct {
		name  string
		query string
		vars  map[string]any
		want  int
	}{
		{"the dashboard: one call per distinct resource", dashboardQuery, nil, dashboardCalls},
		{"totalCount only", `{ invoices { totalCount } }`, nil, 1},
		{"an invoice page answers its own fields", `{ invoices(first: 12) { nodes { uuid invoiceId period amount updatedAt isPreview } } }`, nil, 1},
		{"preview only", `{ invoices { preview { uuid amount } } }`, nil, 1},
		{"nothing but __typename", `{ invoices { __typename } }`, nil, 0},
		{"the default page is 20", `{ invoices { nodes { summary { amount } } } }`, nil, 1 + 20},
		{"page size from a variable", `query($n: Int) { invoices(first: $n) { edges { node { summary { amount } } } } }`, map[string]any{"n": 30}, 1 + 30},
		{"after a cursor a window may straddle two pages", `{ volumes(first: 10, after: "x") { nodes { id } } }`, nil, 2},
		{"last without before learns the total first", `{ volumes(last: 10) { nodes { id } } }`, nil, 3},
		{"last with before", `{ volumes(last: 10, before: "x") { pageInfo { hasPreviousPage } } }`, nil, 2},
		{"first: 0 only counts", `{ volumes(first: 0) { nodes { id } } }`, nil, 1},
		{"invoice by uuid: amount and period are its summary", `{ invoice(uuid: "x") { amount period summary { amount } } }`, nil, 1},
		{"invoice by uuid: items without the summary", `{ invoice(uuid: "x") { items { totalCount } } }`, nil, 1},
		{"file links cost nothing", `{ invoice(uuid: "x") { uuid isPreview files { csv { url contentType } pdf { url } } } }`, nil, 0},
		{"a file is downloaded once however many of its fields", `{ invoice(uuid: "x") { files { csv { filename byteSize base64 } pdf { url } } } }`, nil, 1},
		{"both files", `{ invoice(uuid: "x") { files { csv { filename } pdf { byteSize } } } }`, nil, 2},
		{"billing entries' invoices by reference", `{ billingHistory(first: 10) { nodes { invoice { amount } } } }`, nil, 1 + 10},
		{"billing entries' invoice uuid only", `{ billingHistory(first: 10) { nodes { invoice { uuid } } } }`, nil, 1},
		{"single resources", `{ balance { accountBalance } volume(id: "v") { name } invoicePreview { amount } }`, nil, 3},
		{"fragments are followed", `{ invoices(first: 3) { ...page } } fragment page on InvoiceConnection { nodes { ...inv } } fragment inv on Invoice { summary { amount } }`, nil, 1 + 3},
		{"entities: one per volume, an invoice's fields per invoice",
			`query($r: [_Any!]!) { _entities(representations: $r) { ... on Volume { name } ... on Invoice { summary { amount } } } }`,
			map[string]any{"r": reps}, 1 + 2},
		{"entities selecting only keys of invoices", `query($r: [_Any!]!) { _entities(representations: $r) { ... on Invoice { uuid } } }`, map[string]any{"r": reps}, 1},
		{"the federation SDL costs nothing", `{ _service { sdl } }`, nil, 0},
		{"introspection costs nothing", `{ __schema { queryType { name } } __type(name: "Invoice") { name } }`, nil, 0},
		{"huge nesting saturates instead of overflowing", `{ invoices(first: 200) { nodes { items(first: 200) { nodes { amount } } } } }`, nil, 1 + 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EstimateUpstreamCalls(operation(t, tc.query), tc.vars); got != tc.want {
				t.Errorf("estimate = %d, want %d\n%s", got, tc.want, tc.query)
			}
		})
	}
}

// guardedHarness is the real handler over the sandbox with the guards installed.
func guardedHarness(t *testing.T, limits GuardLimits, introspection bool) *harness {
	return newSandboxHarness(t, func(c *Config) {
		c.Extensions = append(c.Extensions, Guards(limits)...)
		c.Introspection = introspection
	})
}

// refusal asserts that resp is one error with code and no data, and that the
// sandbox saw no request.
func (h *harness) refusal(resp gqlResponse, code string) gqlError {
	h.t.Helper()
	if len(resp.Errors) != 1 {
		h.t.Fatalf("errors = %+v, want exactly one %s", resp.Errors, code)
	}
	e := resp.Errors[0]
	if got := e.Extensions["code"]; got != code {
		h.t.Errorf("code = %v (%s), want %s", got, e.Message, code)
	}
	if d := strings.TrimSpace(string(resp.Data)); d != "" && d != "null" {
		h.t.Errorf("data = %s, want none for a refused operation", d)
	}
	if calls := h.upstreamCalls(); len(calls) != 0 {
		h.t.Errorf("a refused operation made upstream calls: %v", calls)
	}
	return e
}

func TestUpstreamBudgetRefusesBeforeAnyCall(t *testing.T) {
	h := guardedHarness(t, GuardLimits{}, true)
	h.upstreamCalls()
	q := `{ invoices(first: 100) { nodes { summary { amount } } } }`
	e := h.refusal(h.post(q, nil), CodeUpstreamBudgetExceeded)
	if e.Extensions["estimated"] != float64(101) || e.Extensions["budget"] != float64(DefaultMaxUpstreamCalls) {
		t.Errorf("extensions = %v, want estimated 101 and budget %d", e.Extensions, DefaultMaxUpstreamCalls)
	}
	if !strings.Contains(e.Message, "101") || !strings.Contains(e.Message, "60") {
		t.Errorf("message %q does not name the estimate and the budget", e.Message)
	}
}

func TestUpstreamBudgetLetsTheDashboardThrough(t *testing.T) {
	h := guardedHarness(t, GuardLimits{}, true)
	h.upstreamCalls()
	resp := h.post(dashboardQuery, nil)
	if len(resp.Errors) > 0 {
		t.Fatalf("dashboard refused or failed: %+v", resp.Errors)
	}
	if got := len(h.upstreamCalls()); got != dashboardCalls {
		t.Errorf("dashboard made %d upstream calls, the estimate (the real count) is %d", got, dashboardCalls)
	}

	tight := guardedHarness(t, GuardLimits{MaxUpstreamCalls: dashboardCalls - 1}, true)
	tight.upstreamCalls()
	tight.refusal(tight.post(dashboardQuery, nil), CodeUpstreamBudgetExceeded)
}

func TestComplexityScalesWithPageSize(t *testing.T) {
	es := pageSizedCost{generated.NewExecutableSchema(*executableSchema())}
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
	if d := cost(dashboardQuery); d > DefaultMaxComplexity/10 {
		t.Errorf("the dashboard costs %d, want it far under the default limit %d", d, DefaultMaxComplexity)
	}

	h := guardedHarness(t, GuardLimits{MaxUpstreamCalls: 1 << 20}, true)
	h.upstreamCalls()
	e := h.refusal(h.post(`{ invoices(first: 200) { nodes { items(first: 200) { nodes { amount description product } } } } }`, nil), CodeComplexityLimitExceeded)
	if e.Extensions["limit"] != float64(DefaultMaxComplexity) {
		t.Errorf("extensions = %v, want the limit %d", e.Extensions, DefaultMaxComplexity)
	}
}

func TestDepthLimit(t *testing.T) {
	h := guardedHarness(t, GuardLimits{MaxDepth: 4}, true)
	h.upstreamCalls()
	e := h.refusal(h.post(`{ invoices { edges { node { summary { productCharges { items { name } } } } } } }`, nil), CodeDepthLimitExceeded)
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
	h.refusal(h.post(b.String(), nil), CodeComplexityLimitExceeded)
}

func TestServiceSDLWorksWithIntrospectionOff(t *testing.T) {
	h := guardedHarness(t, GuardLimits{}, false)
	var data struct {
		Service struct{ SDL string } `json:"_service"`
	}
	h.mustData(`{ _service { sdl } }`, nil, &data)
	if !strings.Contains(data.Service.SDL, "@key") || !strings.Contains(data.Service.SDL, "type Volume") {
		t.Errorf("_service.sdl does not look like this subgraph's SDL: %.200s", data.Service.SDL)
	}
	if resp := h.post(`{ __schema { types { name } } }`, nil); len(resp.Errors) == 0 {
		t.Errorf("__schema answered with introspection off: %s", resp.Data)
	}
}

func TestAutomaticPersistedQueries(t *testing.T) {
	h := guardedHarness(t, GuardLimits{}, true)
	const query = `{ __typename }`
	sum := sha256.Sum256([]byte(query))
	apq := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}

	resp := h.postExtensions("", apq)
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("an unknown hash got %+v, want PERSISTED_QUERY_NOT_FOUND", resp.Errors)
	}
	if resp := h.postExtensions(query, apq); len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), "Query") {
		t.Fatalf("registering the query got %s %+v", resp.Data, resp.Errors)
	}
	if resp := h.postExtensions("", apq); len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), "Query") {
		t.Fatalf("the hash alone, once registered, got %s %+v", resp.Data, resp.Errors)
	}
	wrong := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("0", 64)}}
	if resp := h.postExtensions(query, wrong); len(resp.Errors) != 1 {
		t.Errorf("a query with a hash that is not its own got %s, want an error", resp.Data)
	}
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

// postExtensions sends a query (omitted when empty) with request extensions.
func (h *harness) postExtensions(query string, extensions map[string]any) gqlResponse {
	h.t.Helper()
	body := map[string]any{"extensions": extensions}
	if query != "" {
		body["query"] = query
	}
	raw, _ := json.Marshal(body)
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+callerToken)
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	var resp gqlResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		h.t.Fatalf("response is not JSON (%v): %s", err, rec.Body)
	}
	return resp
}
