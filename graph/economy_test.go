package graph

import (
	"fmt"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/queries"
)

// The dashboard costs exactly one upstream call per distinct resource it
// needs: 3 lists + 12 summaries + 12 item pages = 27.
func TestDashboardCallsEqualDistinctResources(t *testing.T) {
	h := newSandboxHarness(t)
	acct := h.sandbox.Account(callerToken)
	want := []string{
		"GET /v2/customers/my/invoices?page=1&per_page=12",
		"GET /v2/volumes?page=1&per_page=50",
		"GET /v2/customers/my/billing_history?page=1&per_page=10",
	}
	for _, inv := range acct.Invoices[:12] {
		want = append(want,
			"GET /v2/customers/my/invoices/"+inv.UUID+"/summary",
			"GET /v2/customers/my/invoices/"+inv.UUID+"?page=1&per_page=5")
	}
	if len(want) != 27 {
		t.Fatalf("expected list has %d calls, want 27", len(want))
	}
	resp := h.expectCalls("dashboard", queries.Dashboard, want...)
	if len(resp.Errors) > 0 {
		t.Fatalf("dashboard errors: %+v", resp.Errors)
	}
	var data struct {
		Invoices struct {
			Nodes []struct {
				UUID, Amount string
				Summary      struct{ Amount string }
				Items        struct {
					TotalCount int
					Nodes      []struct{ Amount string }
				}
			}
		}
	}
	decode(t, resp, &data)
	for i, n := range data.Invoices.Nodes {
		inv := acct.Invoices[i]
		if n.UUID != inv.UUID || n.Amount != inv.Amount || n.Summary.Amount != inv.Summary.Amount {
			t.Errorf("invoice %d: got uuid %s amount %s summary %s, want %s %s %s", i, n.UUID, n.Amount, n.Summary.Amount, inv.UUID, inv.Amount, inv.Summary.Amount)
		}
		if n.Items.TotalCount != len(inv.Items) || len(n.Items.Nodes) != 5 || n.Items.Nodes[0].Amount != inv.Items[0].Amount {
			t.Errorf("invoice %d items: got total %d, %d nodes, want total %d, 5 nodes starting with %s", i, n.Items.TotalCount, len(n.Items.Nodes), len(inv.Items), inv.Items[0].Amount)
		}
	}
}

// Each canonical query makes exactly these upstream requests.
func TestCanonicalQueriesUpstreamRequests(t *testing.T) {
	h := newSandboxHarness(t)
	acct := h.sandbox.Account(callerToken)
	u0, u1 := acct.Invoices[0].UUID, acct.Invoices[1].UUID
	v0, v1 := acct.Volumes[0].ID, acct.Volumes[1].ID
	items := func(uuid string, page, perPage int) string {
		return fmt.Sprintf("GET /v2/customers/my/invoices/%s?page=%d&per_page=%d", uuid, page, perPage)
	}
	summary := func(uuid string) string { return "GET /v2/customers/my/invoices/" + uuid + "/summary" }

	cases := []struct {
		name, query string
		want        []string
	}{
		{"invoices totalCount alone is one per_page=1 call",
			`{ invoices { totalCount } }`,
			[]string{"GET /v2/customers/my/invoices?page=1&per_page=1"}},
		{"invoices preview alone is one per_page=1 call",
			`{ invoices { preview { uuid amount } } }`,
			[]string{"GET /v2/customers/my/invoices?page=1&per_page=1"}},
		{"a page of invoices with totalCount is one call",
			`{ invoices(first: 12) { totalCount pageInfo { hasNextPage } nodes { uuid invoiceId period amount isPreview } } }`,
			[]string{"GET /v2/customers/my/invoices?page=1&per_page=12"}},
		{"listed invoices' files cost no call",
			`{ invoices(first: 2) { nodes { files { csv { contentType } pdf { contentType } } } } }`,
			[]string{"GET /v2/customers/my/invoices?page=1&per_page=2"}},
		{"only __typename costs nothing",
			`{ invoices { __typename } volumes { __typename } }`,
			nil},
		{"invoice items totalCount calls the items endpoint only",
			`{ invoice(uuid: "` + u0 + `") { items { totalCount } } }`,
			[]string{items(u0, 1, 1)}},
		{"invoice amount and period call the summary once",
			`{ invoice(uuid: "` + u0 + `") { amount period invoiceId } }`,
			[]string{summary(u0)}},
		{"invoice uuid alone is proven by the summary",
			`{ invoice(uuid: "` + u0 + `") { uuid isPreview } }`,
			[]string{summary(u0)}},
		{"invoice items and summary start together, once each",
			`{ invoice(uuid: "` + u0 + `") { amount summary { amount } items(first: 5) { nodes { amount } } } }`,
			[]string{summary(u0), items(u0, 1, 5)}},
		{"the preview by its word needs no proof",
			`{ invoice(uuid: "preview") { uuid isPreview files { pdf { contentType } } } }`,
			nil},
		{"invoicePreview reads the cheapest list page",
			`{ invoicePreview { uuid amount period updatedAt } }`,
			[]string{"GET /v2/customers/my/invoices?page=1&per_page=1"}},
		{"forward paging is one call per page",
			`{ volumes(first: 50, after: "` + encodeCursor(kindVolumes, 49) + `") { nodes { id } } }`,
			[]string{"GET /v2/volumes?page=2&per_page=50"}},
		{"an unaligned window is served by one slightly larger page",
			`{ volumes(first: 3, after: "` + encodeCursor(kindVolumes, 1) + `") { nodes { id } } }`,
			[]string{"GET /v2/volumes?page=1&per_page=5"}},
		{"a window straddling two pages fetches both",
			`{ volumes(first: 150, after: "` + encodeCursor(kindVolumes, 99) + `") { nodes { id } } }`,
			[]string{"GET /v2/volumes?page=1&per_page=150", "GET /v2/volumes?page=2&per_page=150"}},
		{"last without before learns the total first",
			`{ volumes(last: 2) { nodes { id } } }`,
			[]string{"GET /v2/volumes?page=1&per_page=1", fmt.Sprintf("GET /v2/volumes?page=%d&per_page=2", len(acct.Volumes)/2)}},
		{"last with before needs no total",
			`{ volumes(last: 10, before: "` + encodeCursor(kindVolumes, 20) + `") { nodes { id } } }`,
			[]string{"GET /v2/volumes?page=2&per_page=10"}},
		{"filters are passed through",
			`{ volumes(region: "nyc3", name: "pg-data", first: 5) { totalCount nodes { id } } }`,
			[]string{"GET /v2/volumes?name=pg-data&page=1&per_page=5&region=nyc3"}},
		{"aliases, fragments and duplicates share one call",
			`{ a: volumes(first: 3) { nodes { id } } b: volumes(first: 3) { totalCount nodes { name } } ...V }
			 fragment V on Query { volumes(first: 3) { edges { cursor node { id } } } }`,
			[]string{"GET /v2/volumes?page=1&per_page=3"}},
		{"the same invoice asked twice costs one summary",
			`{ x: invoice(uuid: "` + u0 + `") { amount } y: invoice(uuid: "` + u0 + `") { summary { amount } } }`,
			[]string{summary(u0)}},
		{"balance asked twice costs one call",
			`{ a: balance { accountBalance } b: balance { monthToDateUsage } }`,
			[]string{"GET /v2/customers/my/balance"}},
		{"a volume by id, twice",
			`{ a: volume(id: "` + v0 + `") { id } b: volume(id: "` + v0 + `") { name } }`,
			[]string{"GET /v2/volumes/" + v0}},
		{"entities batch and reuse the loaders",
			`{ _entities(representations: [
				{__typename: "Volume", id: "` + v0 + `"}, {__typename: "Volume", id: "` + v1 + `"}, {__typename: "Volume", id: "` + v0 + `"},
				{__typename: "Invoice", uuid: "` + u0 + `"}, {__typename: "Invoice", uuid: "` + u1 + `"}, {__typename: "Invoice", uuid: "` + u0 + `"}]) {
				... on Volume { id name } ... on Invoice { uuid amount summary { amount } } } }`,
			[]string{"GET /v2/volumes/" + v0, "GET /v2/volumes/" + v1, summary(u0), summary(u1)}},
		{"invoice entities read the selection: items alone prove existence",
			`{ _entities(representations: [{__typename: "Invoice", uuid: "` + u0 + `"}]) { ... on Invoice { items(first: 2) { totalCount } } } }`,
			[]string{items(u0, 1, 1)}},
		{"billing history's invoice costs nothing until its fields need a call",
			`{ billingHistory(first: 10) { nodes { invoice { uuid invoiceId files { pdf { contentType } } } } } }`,
			[]string{"GET /v2/customers/my/billing_history?page=1&per_page=10"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := h.expectCalls(c.name, c.query, c.want...)
			if len(resp.Errors) > 0 {
				t.Errorf("errors: %+v", resp.Errors)
			}
		})
	}
}

// The lookup reads page arguments given as variables as the items field does.
func TestInvoiceLookupReadsVariables(t *testing.T) {
	h := newSandboxHarness(t)
	u := h.sandbox.Account(callerToken).Invoices[0].UUID
	h.sandbox.Reset()
	resp := h.post(`query($n: Int, $after: String) { invoice(uuid: "`+u+`") { items(first: $n, after: $after) { nodes { amount } } } }`,
		map[string]any{"n": 3, "after": encodeCursor(kindInvoiceItems, 2)})
	if len(resp.Errors) > 0 {
		t.Fatalf("errors: %+v", resp.Errors)
	}
	assertCalls(t, "items by variables", h.upstreamCalls(), []string{"GET /v2/customers/my/invoices/" + u + "?page=2&per_page=3"})
}

// Naive mode (for the benchmark's side-by-side figures) answers the same data
// with no de-duplication: an aliased duplicate costs a second call.
func TestNaiveModeAnswersTheSameWithoutDeduplication(t *testing.T) {
	const query = `{ a: volumes(first: 3) { nodes { id } } b: volumes(first: 3) { nodes { id } } }`
	smart := newSandboxHarness(t)
	naive := newSandboxHarness(t, func(c *Config) { c.Naive = true })
	var want, got struct {
		A, B struct{ Nodes []struct{ ID string } }
	}
	smart.mustData(query, nil, &want)
	naive.mustData(query, nil, &got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("naive data %v, want the same as with loaders: %v", got, want)
	}
	if n := len(smart.upstreamCalls()); n != 1 {
		t.Errorf("with loaders: %d upstream calls, want 1", n)
	}
	if n := len(naive.upstreamCalls()); n != 2 {
		t.Errorf("naive: %d upstream calls, want 2 (one per alias)", n)
	}
}

// An invoice's amount, period, invoiceId and updatedAt run in line, before the
// invoice's resolvers start theirs: what they read must already be on its way,
// so that the summary (or the preview's list page) and the items page are in
// flight together rather than one round after the other.
func TestInlineInvoiceFieldsShareTheRound(t *testing.T) {
	for _, c := range []struct{ name, query, first string }{
		{"a billing history entry's invoice",
			`{ billingHistory(first: 2) { nodes { invoice { amount items(first: 1) { nodes { amount } } } } } }`,
			"/v2/customers/my/billing_history"},
		{"a billing history entry's invoice, through edges",
			`{ billingHistory(first: 2) { edges { node { invoice { amount items(first: 1) { nodes { amount } } } } } } }`,
			"/v2/customers/my/billing_history"},
		{"the preview by uuid",
			`{ invoice(uuid: "preview") { updatedAt summary { amount } } }`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			stub := newStub().
				onFile(t, "/v2/customers/my/billing_history", "billing_history.json").
				onFile(t, "/v2/customers/my/invoices", "invoices.json").
				onFile(t, "/v2/customers/my/invoices/example-uuid/summary", "invoice_summary.json").
				onFile(t, "/v2/customers/my/invoices/example-uuid", "invoice_items.json").
				onFile(t, "/v2/customers/my/invoices/preview/summary", "invoice_summary.json")
			stub.hold, stub.arrived = make(chan struct{}), make(chan struct{}, 4)
			h := newHarness(t, stub)
			done := make(chan gqlResponse, 1)
			go func() { done <- h.post(c.query, nil) }()
			if c.first != "" {
				<-stub.arrived
				stub.hold <- struct{}{}
			}
			for i := range 2 {
				select {
				case <-stub.arrived:
				case <-time.After(5 * time.Second):
					close(stub.hold)
					t.Fatalf("call %d of the second round never started while the first was held: the calls ran one after the other (%v)", i+1, stub.calls())
				}
			}
			close(stub.hold)
			if resp := <-done; len(resp.Errors) > 0 {
				t.Fatalf("errors: %+v", resp.Errors)
			}
		})
	}
}
