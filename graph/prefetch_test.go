package graph

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// holdFirstInvoice holds the first listed invoice's uuid field, which gqlgen
// resolves before that invoice's summary and items fields, until the
// upstream has received every per-invoice request (or a deadline passes).
type holdFirstInvoice struct {
	path    string // the first invoice's uuid field
	arrived <-chan struct{}
	seen    func() int
	// seenAtDeadline is how many had arrived when the deadline passed (-1: it did not).
	seenAtDeadline atomic.Int64
}

func (*holdFirstInvoice) ExtensionName() string                   { return "holdFirstInvoice" }
func (*holdFirstInvoice) Validate(graphql.ExecutableSchema) error { return nil }

func (h *holdFirstInvoice) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	if graphql.GetFieldContext(ctx).Path().String() == h.path {
		select {
		case <-h.arrived:
		case <-time.After(10 * time.Second): // a failure, not a timing: the calls never came
			h.seenAtDeadline.Store(int64(h.seen()))
		}
	}
	return next(ctx)
}

// The listed invoices' summary and items calls start when the invoice list
// arrives, not when gqlgen reaches each invoice's fields: with the first
// invoice's fields held, all six per-invoice requests still reach the sandbox
// (before this change, the held invoice's two never came while it was held).
func TestListedInvoiceCallsStartWithTheList(t *testing.T) {
	const perInvoice = 6 // 3 invoices × (summary + items page)
	for _, c := range []struct{ query, held string }{
		{`{ invoices(first: 3) { nodes { uuid summary { amount } items(first: 2) { nodes { amount } } } } }`, "invoices.nodes[0].uuid"},
		{`{ invoices(first: 3) { edges { node { uuid summary { amount } items(first: 2) { nodes { amount } } } } } }`, "invoices.edges[0].node.uuid"},
	} {
		sb := sandbox.New(sandbox.Options{Seed: 1})
		arrived := make(chan struct{})
		var mu sync.Mutex
		seen := 0
		upstreamHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v2/customers/my/invoices/") {
				mu.Lock()
				if seen++; seen == perInvoice {
					close(arrived)
				}
				mu.Unlock()
			}
			sb.ServeHTTP(w, r)
		})
		hold := &holdFirstInvoice{path: c.held, arrived: arrived, seen: func() int { mu.Lock(); defer mu.Unlock(); return seen }}
		hold.seenAtDeadline.Store(-1)
		h := newHarness(t, upstreamHandler, func(c *Config) { c.Extensions = append(c.Extensions, hold) })
		h.sandbox = sb
		resp := h.post(c.query, nil)
		if len(resp.Errors) > 0 {
			t.Fatalf("errors: %+v", resp.Errors)
		}
		if n := hold.seenAtDeadline.Load(); n >= 0 {
			t.Fatalf("only %d of the %d per-invoice requests were made while the first invoice's fields waited", n, perInvoice)
		}
		if calls := h.upstreamCalls(); len(calls) != 1+perInvoice {
			t.Errorf("%d upstream calls, want %d: %q", len(calls), 1+perInvoice, calls)
		}
	}
}

// Starting the listed invoices' calls early makes no call twice and none that
// the fields would not make: windows that need the list's length, a count
// alone, skipped fields and naive mode (no loader cache) start nothing.
func TestListedInvoiceCallsAreTheFieldsCalls(t *testing.T) {
	h := newSandboxHarness(t)
	acct := h.sandbox.Account(callerToken)
	list := "GET /v2/customers/my/invoices?page=1&per_page=2"
	each := func(paths ...string) []string {
		want := []string{list}
		for _, inv := range acct.Invoices[:2] {
			for _, p := range paths {
				want = append(want, "GET /v2/customers/my/invoices/"+inv.UUID+p)
			}
		}
		return want
	}
	after0 := encodeCursor(kindInvoiceItems, 0)
	for _, c := range []struct {
		name, selection string
		want            []string
	}{
		{"summary and a first page", `summary { amount } items(first: 2) { nodes { amount } }`, each("/summary", "?page=1&per_page=2")},
		{"two windows, one after a cursor", fmt.Sprintf(`a: items(first: 2) { nodes { amount } } b: items(first: 3, after: %q) { nodes { amount } }`, after0),
			each("?page=1&per_page=2", "?page=1&per_page=4")},
		{"the same window twice, through edges", `items(first: 2) { nodes { amount } } edges: items(first: 2) { edges { node { amount } } }`, each("?page=1&per_page=2")},
		{"a count alone", `items(first: 2) { totalCount }`, each("?page=1&per_page=1")},
		{"a skipped summary", `summary @skip(if: true) { amount }`, []string{list}},
		{"edges of the list", ``, each("/summary")},
	} {
		query := `{ invoices(first: 2) { nodes { uuid ` + c.selection + ` } } }`
		if c.name == "edges of the list" {
			query = `{ invoices(first: 2) { edges { node { summary { amount } } } } }`
		}
		resp := h.expectCalls(c.name, query, c.want...)
		if len(resp.Errors) > 0 {
			t.Errorf("%s: errors %+v", c.name, resp.Errors)
		}
	}
	naive := newSandboxHarness(t, func(c *Config) { c.Naive = true })
	naive.post(queries.Dashboard, nil)
	if calls := naive.upstreamCalls(); len(calls) != 27 || len(slices.Compact(calls)) != 27 {
		t.Errorf("naive dashboard: %d upstream calls (%d distinct), want 27", len(calls), len(slices.Compact(calls)))
	}
}
