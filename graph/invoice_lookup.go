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
// The field resolvers then read the same loader keys, so the proof costs no
// extra round and no extra call.

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
	inv := &model.Invoice{UUID: uuid, Ref: uuid, IsPreview: uuid == upstream.PreviewUUID}
	var probes []func(context.Context) error
	needSummary := false
	for _, f := range fields {
		switch {
		case summaryFields[f.Name]:
			needSummary = true
		case f.Name == "items":
			args, ok := pageArgsFrom(f.ArgumentMap(graphql.GetOperationContext(ctx).Variables))
			if _, err := parsePageArgs(kindInvoiceItems, args); !ok || err != nil {
				continue // the items field reports its own bad arguments
			}
			if sel := selectedPartsIn(ctx, f.Selections); sel.items || sel.count {
				probes = append(probes, func(ctx context.Context) error {
					_, err := resolveWindow(ctx, kindInvoiceItems, args, sel, invoiceItemPages(inv.Ref))
					return err
				})
			}
		}
	}
	onlyProof := !needSummary && len(probes) == 0
	if onlyProof && inv.IsPreview {
		return inv, nil
	}
	if needSummary || onlyProof {
		probes = append(probes, func(ctx context.Context) error {
			_, err := loadInvoiceSummary(ctx, inv.Ref)
			return err
		})
	}
	for _, err := range concurrently(ctx, len(probes), func(i int) error { return probes[i](ctx) }) {
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
