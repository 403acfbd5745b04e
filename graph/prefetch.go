package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oceangraph/oceangraph/graph/model"
)

// startListedInvoiceCalls starts, as soon as the invoice list's page is here,
// the summary and items calls that its nodes' selected fields will ask the
// loaders for: gqlgen would reach them only after the connection's fields
// and a goroutine per invoice, a millisecond or more later, and each of the
// request's slots chains the calls behind it. The loaders hold the calls, so
// the fields find them in flight or done and no call is made twice; nothing
// here waits for a call or reads its result (a transient failure is still
// dropped from the loader's cache by the field that reads it). Only windows
// placed without the list's length are started; others start at their field.
func startListedInvoiceCalls(ctx context.Context, nodes []*model.Invoice) {
	s := scopeFrom(ctx)
	if len(nodes) == 0 || s.authErr != nil || s.naive() {
		return // naive loaders cache nothing: a started call would be made again
	}
	opCtx := graphql.GetOperationContext(ctx)
	summary, items := false, []pageSpan(nil)
	for _, f := range listedInvoiceFields(opCtx, graphql.CollectFieldsCtx(ctx, nil)) {
		switch f.Name {
		case "summary":
			summary = true
		case "items":
			args, ok := pageArgsFrom(f.ArgumentMap(opCtx.Variables))
			r, err := parsePageArgs(kindInvoiceItems, args)
			if !ok || err != nil || r.needsTotal() || r.size == 0 || !selectedPartsIn(ctx, f.Selections).items {
				continue
			}
			if w := r.window(0); w.size() > 0 {
				items = append(items, spanFor(w, r.size))
			}
		}
	}
	if !summary && len(items) == 0 {
		return
	}
	for _, inv := range nodes {
		if summary {
			s.loaders.invoiceSummaries().Load(ctx, inv.Ref)
		}
		for _, span := range items {
			for page := span.first; page <= span.last; page++ {
				s.loaders.invoiceItemPages().Load(ctx, listKey{filter: inv.Ref, page: page, perPage: span.perPage})
			}
		}
	}
}

// listedInvoiceFields are the Invoice fields selected under a connection's
// nodes and edges { node }.
func listedInvoiceFields(opCtx *graphql.OperationContext, connection []graphql.CollectedField) []graphql.CollectedField {
	var fields []graphql.CollectedField
	for _, set := range nodeSelections(opCtx, connection, "InvoiceEdge") {
		fields = append(fields, graphql.CollectFields(opCtx, set, []string{"Invoice"})...)
	}
	return fields
}

// nodeSelections are the selection sets a connection's fields make on its
// nodes: under nodes, and under edges { node } (edgeType names the edge).
func nodeSelections(opCtx *graphql.OperationContext, connection []graphql.CollectedField, edgeType string) []ast.SelectionSet {
	var sets []ast.SelectionSet
	for _, f := range connection {
		switch f.Name {
		case "nodes":
			sets = append(sets, f.Selections)
		case "edges":
			for _, e := range graphql.CollectFields(opCtx, f.Selections, []string{edgeType}) {
				if e.Name == "node" {
					sets = append(sets, e.Selections)
				}
			}
		}
	}
	return sets
}
