package graph

// The upstream budget: before anything runs, an operation that may make more
// calls to DigitalOcean than the budget is refused. The estimate follows the
// resolvers' own rules, read from where they live: a connection's calls from
// pageRequest.mostCalls (connection.go), an invoice's from summaryFields and
// lookupInvoice (invoice_lookup.go), a file's from the files' memo (files.go).

import (
	"context"
	"fmt"
	"math"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oceangraph/oceangraph/upstream"
)

// upstreamBudget refuses an operation whose estimate exceeds max.
type upstreamBudget struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = upstreamBudget{}

// budgetStatsKey names the guard in gqlgen's list and its figures in the stats.
const budgetStatsKey = "UpstreamBudget"

// budgetStats is the estimate of an operation, kept in its stats for the logs.
type budgetStats struct {
	Estimated, Budget int
}

func (upstreamBudget) ExtensionName() string                   { return budgetStatsKey }
func (upstreamBudget) Validate(graphql.ExecutableSchema) error { return nil }

func (b upstreamBudget) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	n := estimateUpstreamCalls(opCtx.Operation, opCtx.Variables)
	opCtx.Stats.SetExtension(budgetStatsKey, &budgetStats{Estimated: n, Budget: b.max})
	if n > b.max {
		return limitError(CodeUpstreamBudgetExceeded,
			fmt.Sprintf("operation may make %d calls to DigitalOcean, which exceeds the budget of %d per request; ask for smaller pages or fewer nested fields", n, b.max),
			map[string]any{"estimated": n, "budget": b.max})
	}
	return nil
}

// budgetStatsFrom returns the upstream estimate of the operation in ctx, or nil.
func budgetStatsFrom(ctx context.Context) *budgetStats {
	if !graphql.HasOperationContext(ctx) {
		return nil
	}
	s, _ := graphql.GetOperationContext(ctx).Stats.GetExtension(budgetStatsKey).(*budgetStats)
	return s
}

// invoiceOrigin is where an Invoice object came from, which decides what its
// fields cost (see model.Invoice, lookupInvoice and prefetchEntryInvoices).
type invoiceOrigin int

const (
	// fromList: an invoices page or the preview, which carry uuid, invoiceId,
	// period, amount and updatedAt.
	fromList invoiceOrigin = iota
	// fromEntry: a billing-history entry's invoice, which knows its uuid (and
	// often its number): period, amount and summary are the summary.
	fromEntry
	// fromLookup: invoice(uuid) or an Invoice representation, which proves the
	// invoice exists with the calls its selection needs, or with the summary
	// when it needs none.
	fromLookup
	// fromPreviewLookup: the same for the uuid "preview", which needs no proof
	// and whose updatedAt only the invoice list carries.
	fromPreviewLookup
)

// estimateUpstreamCalls is an upper bound of the DigitalOcean calls op makes,
// by the rules the resolvers follow:
//   - a connection costs what pageRequest.mostCalls says, and everything under
//     its nodes or edges is multiplied by the page size (first, last, or 20);
//   - an Invoice costs 1 (its summary) when summary is selected, or when it
//     did not come from a list and one of summaryFields is; an invoice looked
//     up by uuid that selects neither these nor items costs 1 (the summary
//     proves it exists), except the preview, whose updatedAt costs 1 (the
//     list's first page);
//   - each of an Invoice's csv and pdf costs 1 (one download) when filename,
//     byteSize or base64 is selected; url and contentType cost nothing;
//   - invoicePreview, volume(id), volumeAction and balance cost 1; _entities
//     1 per Volume representation and, per Invoice one, what a lookup of it costs;
//   - a Volume's actions and snapshots are connections; an action's volume
//     costs 1 per volume it hangs off (the loader shares it between the actions);
//   - a mutation costs its one write plus what its payload selects; a
//     subscription what one event costs: the poll plus the action's selection.
//
// Identical calls made once per request by the loaders (the same page or
// summary asked for twice) are counted each time, hence an upper bound; the
// canonical dashboard asks for nothing twice, and its estimate is exact.
func estimateUpstreamCalls(op *ast.OperationDefinition, vars map[string]any) int {
	if op == nil {
		return 0
	}
	e := estimator{vars: vars}
	var calls int
	switch op.Operation {
	case ast.Query:
		calls = e.query(op.SelectionSet)
	case ast.Mutation, ast.Subscription:
		calls = e.writeOrWatch(op.SelectionSet)
	}
	if e.walk.exceeded() {
		return math.MaxInt32
	}
	return calls
}

type estimator struct {
	vars map[string]any
	walk fieldWalk
}

func (e *estimator) query(set ast.SelectionSet) int {
	calls := 0
	e.walk.each(set, func(f *ast.Field, _ string) {
		switch f.Name {
		case "invoices":
			calls = cappedAdd(calls, e.connection(f, 1, "Invoice"))
		case "billingHistory":
			calls = cappedAdd(calls, e.connection(f, 1, "BillingHistoryEntry"))
		case "volumes":
			calls = cappedAdd(calls, e.connection(f, 1, "Volume"))
		case "invoicePreview":
			calls = cappedAdd(calls, cappedAdd(1, e.invoice(f.SelectionSet, 1, fromList)))
		case "invoice":
			origin := fromLookup
			if uuid, _ := f.ArgumentMap(e.vars)["uuid"].(string); uuid == upstream.PreviewUUID {
				origin = fromPreviewLookup
			}
			calls = cappedAdd(calls, e.invoice(f.SelectionSet, 1, origin))
		case "volume":
			calls = cappedAdd(calls, cappedAdd(1, e.object("Volume", f.SelectionSet, 1)))
		case "volumeAction":
			calls = cappedAdd(calls, cappedAdd(1, e.standaloneAction(f.SelectionSet)))
		case "balance":
			calls = cappedAdd(calls, 1)
		case "_entities":
			calls = cappedAdd(calls, e.entities(f))
		}
	})
	return calls
}

// connection estimates a connection field resolved for n parents.
func (e *estimator) connection(f *ast.Field, n int, nodeType string) int {
	args, _ := pageArgsFrom(f.ArgumentMap(e.vars))
	r := pageRequest{size: requestedPageSize(args.First, args.Last), backward: args.Last != nil, after: -1, before: -1}
	if args.After != nil {
		r.after = 0
	}
	if args.Before != nil {
		r.before = 0
	}
	var sel connectionSelection
	var nodes, previews []ast.SelectionSet
	e.walk.each(f.SelectionSet, func(c *ast.Field, _ string) {
		switch c.Name {
		case "nodes":
			sel.items = true
			nodes = append(nodes, c.SelectionSet)
		case "edges":
			sel.items = true
			e.walk.each(c.SelectionSet, func(ec *ast.Field, _ string) {
				if ec.Name == "node" {
					nodes = append(nodes, ec.SelectionSet)
				}
			})
		case "pageInfo":
			sel.items = true
		case "totalCount":
			sel.count = true
		case "preview":
			sel.count = true
			previews = append(previews, c.SelectionSet)
		}
	})
	calls := cappedMul(n, r.mostCalls(sel))
	for _, set := range nodes {
		calls = cappedAdd(calls, e.object(nodeType, set, cappedMul(n, r.size)))
	}
	for _, set := range previews {
		calls = cappedAdd(calls, e.invoice(set, n, fromList))
	}
	return calls
}

// object estimates a list node's selection for n objects.
func (e *estimator) object(typeName string, set ast.SelectionSet, n int) int {
	switch typeName {
	case "Invoice":
		return e.invoice(set, n, fromList)
	case "BillingHistoryEntry":
		calls := 0
		e.walk.each(set, func(f *ast.Field, _ string) {
			if f.Name == "invoice" {
				calls = cappedAdd(calls, e.invoice(f.SelectionSet, n, fromEntry))
			}
		})
		return calls
	case "Volume":
		calls := 0
		e.walk.each(set, func(f *ast.Field, _ string) {
			switch f.Name {
			case "actions":
				calls = cappedAdd(calls, e.connection(f, n, "VolumeAction"))
			case "snapshots":
				calls = cappedAdd(calls, e.connection(f, n, "VolumeSnapshot"))
			}
		})
		return calls
	case "VolumeAction":
		// In a Volume's actions the volume is the parent, already loaded;
		// standalone actions add the volume's load (standaloneAction).
		calls := 0
		e.walk.each(set, func(f *ast.Field, _ string) {
			if f.Name == "volume" {
				calls = cappedAdd(calls, e.object("Volume", f.SelectionSet, n))
			}
		})
		return calls
	}
	return 0 // InvoiceItem, VolumeSnapshot: every field comes with the page
}

// writeOrWatch estimates a mutation (each field one write, plus what its
// payload selects) or a subscription (one event: the poll and the action).
func (e *estimator) writeOrWatch(set ast.SelectionSet) int {
	calls := 0
	e.walk.each(set, func(f *ast.Field, _ string) {
		if f.Name == "__typename" {
			return
		}
		calls = cappedAdd(calls, 1)
		if f.Name == "volumeActionProgress" {
			calls = cappedAdd(calls, e.standaloneAction(f.SelectionSet))
			return
		}
		e.walk.each(f.SelectionSet, func(p *ast.Field, _ string) {
			switch p.Name {
			case "volume":
				calls = cappedAdd(calls, e.object("Volume", p.SelectionSet, 1))
			case "action":
				calls = cappedAdd(calls, e.standaloneAction(p.SelectionSet))
			}
		})
	})
	return calls
}

// standaloneAction estimates an action reached on its own (volumeAction, a
// mutation's payload, an event): its volume costs a load of its own.
func (e *estimator) standaloneAction(set ast.SelectionSet) int {
	calls := 0
	e.walk.each(set, func(f *ast.Field, _ string) {
		if f.Name == "volume" {
			calls = cappedAdd(calls, cappedAdd(1, e.object("Volume", f.SelectionSet, 1)))
		}
	})
	return calls
}

// invoice estimates an Invoice selection for n invoices.
func (e *estimator) invoice(set ast.SelectionSet, n int, origin invoiceOrigin) int {
	summary, items, updatedAt := false, false, false
	calls := 0
	downloads := map[string]bool{}
	e.walk.each(set, func(f *ast.Field, _ string) {
		switch {
		case f.Name == "summary":
			summary = true
		case summaryFields[f.Name]:
			summary = summary || origin != fromList
		case f.Name == "updatedAt":
			updatedAt = true
		case f.Name == "items":
			items = true
			calls = cappedAdd(calls, e.connection(f, n, "InvoiceItem"))
		case f.Name == "files":
			e.walk.each(f.SelectionSet, func(format *ast.Field, _ string) {
				e.walk.each(format.SelectionSet, func(ff *ast.Field, _ string) {
					if downloadedFields[ff.Name] {
						downloads[format.Name] = true
					}
				})
			})
		}
	})
	if summary || (origin == fromLookup && !items) {
		calls = cappedAdd(calls, n) // the summary, or the summary as the proof of existence
	}
	if updatedAt && origin == fromPreviewLookup {
		calls = cappedAdd(calls, n)
	}
	return cappedAdd(calls, cappedMul(n, len(downloads)))
}

// entities estimates _entities: one call per Volume representation, and per
// Invoice one what looking it up costs.
func (e *estimator) entities(f *ast.Field) int {
	reps, _ := f.ArgumentMap(e.vars)["representations"].([]any)
	volumes, invoices, previews := 0, 0, 0
	for _, r := range reps {
		m, _ := r.(map[string]any)
		switch m["__typename"] {
		case "Volume":
			volumes++
		case "Invoice":
			if m["uuid"] == upstream.PreviewUUID {
				previews++
			} else {
				invoices++
			}
		}
	}
	var invoiceFields ast.SelectionSet
	e.walk.each(f.SelectionSet, func(field *ast.Field, on string) {
		if on == "Invoice" {
			invoiceFields = append(invoiceFields, field)
		}
	})
	var volumeFields ast.SelectionSet
	e.walk.each(f.SelectionSet, func(field *ast.Field, on string) {
		if on == "Volume" {
			volumeFields = append(volumeFields, field)
		}
	})
	volumes = cappedAdd(volumes, e.object("Volume", volumeFields, volumes))
	if len(invoiceFields) == 0 {
		return volumes
	}
	return cappedAdd(volumes, cappedAdd(e.invoice(invoiceFields, invoices, fromLookup), e.invoice(invoiceFields, previews, fromPreviewLookup)))
}
