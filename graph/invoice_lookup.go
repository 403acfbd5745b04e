package graph

// Looking an invoice up by UUID (Query.invoice and Invoice entities) answers
// null + NOT_FOUND for one that does not exist, without spending a call only
// to prove existence when the selection needs one anyway:
//
//   - the calls the selection needs start together (the summary for
//     invoiceId/period/amount/summary, the first items page of each `items`
//     selection), and a 404 from any of them means the invoice does not exist;
//   - when the selection needs no call (only uuid, isPreview, files,
//     updatedAt, __typename), the summary proves existence: it is one small
//     object, and a later `summary`/`amount` field of the request reuses it;
//   - "preview" always exists and needs no proof.
//
// The fields then read the same loader keys, so the proof costs no extra round
// and no extra call. amount, period, invoiceId and updatedAt run in line,
// before the object's resolvers start: the lookup starts what they read
// alongside its proof, so that they never wait a round of their own.

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"

	"github.com/oceangraph/oceangraph/graph/model"
	"github.com/oceangraph/oceangraph/upstream"
)

// summaryFields are the Invoice fields answered by the summary when the
// invoice did not come from a list.
var summaryFields = map[string]bool{"invoiceId": true, "period": true, "amount": true, "summary": true}

// lookupInvoice returns the invoice with this UUID (or "preview"), proving it
// exists with the calls its selection (fields, collected on the Invoice) needs.
func lookupInvoice(ctx context.Context, uuid string, fields []graphql.CollectedField) (*model.Invoice, error) {
	if err := checkID("uuid", uuid); err != nil {
		return nil, err
	}
	inv := withLoaders(ctx, &model.Invoice{UUID: uuid, Ref: uuid, IsPreview: uuid == upstream.PreviewUUID})
	calls := invoiceCalls(ctx, inv, fields)
	onlyProof := len(calls) == 0
	if onlyProof {
		if inv.IsPreview {
			return inv, nil
		}
		calls = append(calls, func(context.Context) error {
			_, err := inv.LoadSummary()
			return err
		})
	}
	for _, err := range concurrently(ctx, len(calls), func(i int) error { return calls[i](ctx) }) {
		var ue *upstream.Error
		if errors.As(err, &ue) && ue.Kind == upstream.KindHTTP && ue.Status == 404 {
			return nil, err
		}
		// Any other failure belongs to the field that needs the call, which
		// reports it at its own path; unless nothing else needs the call.
		if err != nil && onlyProof {
			return nil, err
		}
	}
	return inv, nil
}

// invoiceCalls are the calls inv's selection (fields, collected on the
// Invoice) needs, to start together: the summary for invoiceId (unless known),
// period, amount and summary; the list's first page for the preview's
// updatedAt (its failure is that field's, reported at its path); and the
// items pages of each `items` selection.
func invoiceCalls(ctx context.Context, inv *model.Invoice, fields []graphql.CollectedField) []func(context.Context) error {
	var calls []func(context.Context) error
	needSummary, needPreview := false, false
	for _, f := range fields {
		switch {
		case summaryFields[f.Name]:
			needSummary = needSummary || f.Name != "invoiceId" || inv.KnownInvoiceID == ""
		case f.Name == "updatedAt":
			needPreview = inv.IsPreview
		case f.Name == "items":
			args, ok := pageArgsFrom(f.ArgumentMap(graphql.GetOperationContext(ctx).Variables))
			if _, err := parsePageArgs(kindInvoiceItems, args); !ok || err != nil {
				continue // the items field reports its own bad arguments
			}
			if sel := selectedPartsIn(ctx, f.Selections); sel.items || sel.count {
				calls = append(calls, func(ctx context.Context) error {
					_, err := resolveWindow(ctx, kindInvoiceItems, args, sel, invoiceItemPages(inv.Ref))
					return err
				})
			}
		}
	}
	if needSummary {
		calls = append(calls, func(context.Context) error {
			_, err := inv.LoadSummary()
			return err
		})
	}
	if needPreview {
		calls = append(calls, func(context.Context) error {
			_, _ = inv.LoadPreview()
			return nil
		})
	}
	return calls
}

// withLoaders lets an invoice that did not come from a list read its summary
// and the list's preview through the request's loaders (model.Invoice's
// amount, period, invoiceId and updatedAt).
func withLoaders(ctx context.Context, inv *model.Invoice) *model.Invoice {
	inv.LoadSummary = func() (*upstream.InvoiceSummary, error) { return loadInvoiceSummary(ctx, inv.Ref) }
	inv.LoadPreview = func() (*upstream.Invoice, error) {
		// Every page of the list carries the preview: read the cheapest.
		p, err := loadInvoicePage(ctx, 1, 1)
		if err != nil {
			return nil, err
		}
		return p.InvoicePreview, nil
	}
	return inv
}

// prefetchEntryInvoices gives the billing history entries' invoices their
// loaders. When their selection reads the summary in line (amount, period,
// an unknown invoiceId), it makes each invoice's calls together first, as
// lookupInvoice does: a field in line runs before the invoice's resolvers
// start, and would otherwise hold their calls a round. Each field reports its
// own failure.
func prefetchEntryInvoices(ctx context.Context, entries []*model.BillingHistoryEntry) {
	fields := entryInvoiceFields(ctx)
	var calls []func(context.Context) error
	for _, e := range entries {
		if inv := e.Invoice; inv != nil {
			withLoaders(ctx, inv)
			if readsSummaryInLine(inv, fields) {
				calls = append(calls, invoiceCalls(ctx, inv, fields)...)
			}
		}
	}
	concurrently(ctx, len(calls), func(i int) error { return calls[i](ctx) })
}

// readsSummaryInLine reports whether one of fields (an invoice's) reads inv's summary in line.
func readsSummaryInLine(inv *model.Invoice, fields []graphql.CollectedField) bool {
	for _, f := range fields {
		if f.Name == "amount" || f.Name == "period" || (f.Name == "invoiceId" && inv.KnownInvoiceID == "") {
			return true
		}
	}
	return false
}

// entryInvoiceFields collects the fields the billingHistory field at ctx
// selects on its entries' invoices (nodes { invoice } and edges { node {
// invoice } }), after fragments and @skip/@include.
func entryInvoiceFields(ctx context.Context) []graphql.CollectedField {
	opCtx := graphql.GetOperationContext(ctx)
	var fields []graphql.CollectedField
	for _, set := range nodeSelections(opCtx, graphql.CollectFieldsCtx(ctx, nil), "BillingHistoryEdge") {
		for _, f := range graphql.CollectFields(opCtx, set, []string{"BillingHistoryEntry"}) {
			if f.Name == "invoice" {
				fields = append(fields, graphql.CollectFields(opCtx, f.Selections, []string{"Invoice"})...)
			}
		}
	}
	return fields
}
