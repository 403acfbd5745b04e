package graph

import (
	"strings"
	"testing"

	"github.com/oceangraph/oceangraph/internal/queries"
)

// estimateCases are queries with their estimated upstream calls. UUID,
// VOLUME and CURSOR stand for a real invoice uuid, volume id and volumes
// cursor of the sandbox account. exact: the sandbox sees exactly that many
// requests; otherwise the estimate is an upper bound.
var estimateCases = []struct {
	name  string
	query string
	vars  map[string]any
	want  int
	exact bool
}{
	{"the dashboard: one call per distinct resource", queries.Dashboard, nil, queries.DashboardCalls, true},
	{"totalCount only", `{ invoices { totalCount } }`, nil, 1, true},
	{"an invoice page answers its own fields", `{ invoices(first: 12) { nodes { uuid invoiceId period amount updatedAt isPreview } } }`, nil, 1, true},
	{"preview only", `{ invoices { preview { uuid amount } } }`, nil, 1, true},
	{"nothing but __typename", `{ invoices { __typename } }`, nil, 0, true},
	{"the default page is 20", `{ invoices { nodes { summary { amount } } } }`, nil, 1 + 20, true},
	{"page size from a variable", `query($n: Int) { invoices(first: $n) { edges { node { summary { amount } } } } }`, map[string]any{"n": 3}, 1 + 3, true},
	{"after a cursor a window may straddle two pages", `{ volumes(first: 10, after: "CURSOR") { nodes { id } } }`, nil, 2, false},
	{"last without before learns the total first", `{ volumes(last: 10) { nodes { id } } }`, nil, 3, false},
	{"last with before", `{ volumes(last: 3, before: "CURSOR") { pageInfo { hasPreviousPage } } }`, nil, 2, false},
	{"first: 0 only counts", `{ volumes(first: 0) { nodes { id } } }`, nil, 1, true},
	{"file links of listed invoices cost nothing", `{ invoices(first: 2) { nodes { files { csv { url contentType } pdf { url } } } } }`, nil, 1, true},
	{"invoice by uuid: amount and period are its summary", `{ invoice(uuid: "UUID") { amount period summary { amount } } }`, nil, 1, true},
	{"invoice by uuid: items without the summary", `{ invoice(uuid: "UUID") { items { totalCount } } }`, nil, 1, true},
	{"invoice by uuid: the summary proves it exists", `{ invoice(uuid: "UUID") { uuid isPreview files { csv { url } } } }`, nil, 1, true},
	{"the preview needs no proof", `{ invoice(uuid: "preview") { uuid isPreview files { pdf { url } } } }`, nil, 0, true},
	{"the preview's updatedAt is on the list", `{ invoice(uuid: "preview") { updatedAt } }`, nil, 1, true},
	{"a file is downloaded once however many of its fields", `{ invoice(uuid: "UUID") { files { csv { filename byteSize base64 } pdf { url } } } }`, nil, 1 + 1, true},
	{"both files", `{ invoice(uuid: "UUID") { files { csv { filename } pdf { byteSize } } } }`, nil, 1 + 2, true},
	{"billing entries' invoices by reference", `{ billingHistory(first: 10) { nodes { invoice { period } } } }`, nil, 1 + 10, false},
	{"billing entries' invoice uuid only", `{ billingHistory(first: 10) { nodes { invoice { uuid } } } }`, nil, 1, true},
	{"single resources", `{ balance { accountBalance } volume(id: "VOLUME") { name } invoicePreview { amount } }`, nil, 3, true},
	{"fragments are followed", `{ invoices(first: 3) { ...page } } fragment page on InvoiceConnection { nodes { ...inv } } fragment inv on Invoice { summary { amount } }`, nil, 1 + 3, true},
	{"entities: one per volume, an invoice's fields per invoice",
		`query($r: [_Any!]!) { _entities(representations: $r) { ... on Volume { name } ... on Invoice { summary { amount } } } }`,
		map[string]any{"r": []any{map[string]any{"__typename": "Volume", "id": "VOLUME"}, map[string]any{"__typename": "Invoice", "uuid": "UUID"}}}, 1 + 1, true},
	{"entities: invoices selecting only keys are proven, the preview is not",
		`query($r: [_Any!]!) { _entities(representations: $r) { ... on Invoice { uuid } } }`,
		map[string]any{"r": []any{map[string]any{"__typename": "Invoice", "uuid": "UUID"}, map[string]any{"__typename": "Invoice", "uuid": "preview"}}}, 1, true},
	{"the federation SDL costs nothing", `{ _service { sdl } }`, nil, 0, true},
	{"introspection costs nothing", `{ __schema { queryType { name } } __type(name: "Invoice") { name } }`, nil, 0, true},
	{"huge nesting saturates instead of overflowing", `{ invoices(first: 200) { nodes { items(first: 200) { nodes { amount } } } } }`, nil, 1 + 200, false},
}

// knownGaps name resolver behaviours not yet as the contract says, by case: a
// mismatch skips the case with the note instead of failing, until fixed.
var knownGaps = map[string]string{}

func TestEstimateUpstreamCalls(t *testing.T) {
	for _, tc := range estimateCases {
		t.Run(tc.name, func(t *testing.T) {
			q := strings.NewReplacer("UUID", "00000000-0000-4000-8000-000000000001", "CURSOR", "Y3Vyc29y", "VOLUME", "vol-1").Replace(tc.query)
			if got := estimateUpstreamCalls(operation(t, q), tc.vars); got != tc.want {
				t.Errorf("estimate = %d, want %d\n%s", got, tc.want, q)
			}
		})
	}
}

// TestEstimateBoundsTheRealCalls runs every estimated query against the
// sandbox: the estimate is never below what the resolvers really do, and
// equal to it where the table says exact.
func TestEstimateBoundsTheRealCalls(t *testing.T) {
	h := guardedHarness(t, GuardLimits{MaxUpstreamCalls: 1 << 20, MaxComplexity: 1 << 30}, true)
	var ids struct {
		Invoices struct{ Nodes []struct{ UUID string } }
		Volumes  struct{ Nodes []struct{ ID string } }
	}
	h.mustData(`{ invoices(first: 1) { nodes { uuid } } volumes(first: 1) { nodes { id } } }`, nil, &ids)
	if len(ids.Invoices.Nodes) == 0 || len(ids.Volumes.Nodes) == 0 {
		t.Fatal("the sandbox account has no invoice or volume")
	}
	uuid, volume := ids.Invoices.Nodes[0].UUID, ids.Volumes.Nodes[0].ID
	fill := strings.NewReplacer("UUID", uuid, "CURSOR", encodeCursor(kindVolumes, 14), "VOLUME", volume)
	for _, tc := range estimateCases {
		t.Run(tc.name, func(t *testing.T) {
			q := fill.Replace(tc.query)
			vars := map[string]any{}
			for k, v := range tc.vars {
				if reps, ok := v.([]any); ok {
					var filled []any
					for _, r := range reps {
						m := map[string]any{}
						for rk, rv := range r.(map[string]any) {
							if s, ok := rv.(string); ok {
								rv = fill.Replace(s)
							}
							m[rk] = rv
						}
						filled = append(filled, m)
					}
					v = filled
				}
				vars[k] = v
			}
			h.upstreamCalls()
			resp := h.post(q, vars)
			if len(resp.Errors) > 0 {
				t.Fatalf("query failed: %+v", resp.Errors)
			}
			got := len(h.upstreamCalls())
			estimate := estimateUpstreamCalls(operation(t, q), vars)
			if got > estimate || (tc.exact && got != estimate) {
				if gap := knownGaps[tc.name]; gap != "" {
					t.Skipf("made %d calls, estimated %d: %s", got, estimate, gap)
				}
				t.Errorf("the resolvers made %d upstream calls, the estimate is %d (exact: %v)", got, estimate, tc.exact)
			}
		})
	}
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
	resp := h.post(queries.Dashboard, nil)
	if len(resp.Errors) > 0 {
		t.Fatalf("dashboard refused or failed: %+v", resp.Errors)
	}
	if got := len(h.upstreamCalls()); got != queries.DashboardCalls {
		t.Errorf("dashboard made %d upstream calls, the estimate (the real count) is %d", got, queries.DashboardCalls)
	}

	tight := guardedHarness(t, GuardLimits{MaxUpstreamCalls: queries.DashboardCalls - 1}, true)
	tight.upstreamCalls()
	tight.refusal(tight.post(queries.Dashboard, nil), CodeUpstreamBudgetExceeded)
}
