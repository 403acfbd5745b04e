package graph

import (
	"testing"

	"github.com/oceangraph/oceangraph/graph/model"
)

// What the API returns is what the sandbox account holds, field by field.
func TestSandboxDataRoundTrip(t *testing.T) {
	h := newSandboxHarness(t)
	acct := h.sandbox.Account(callerToken)
	inv := acct.Invoices[3]

	var data struct {
		BillingHistory struct {
			TotalCount *int
			Nodes      []struct {
				Type, Description, Amount string
				Date                      *string
				InvoiceID, InvoiceUUID    *string
			}
		}
		Invoice struct {
			UUID, InvoiceID, Period, Amount string
			Items                           struct {
				TotalCount int
				Nodes      []struct {
					Product, Description, Amount string
					Category, ResourceUUID       *string
				}
			}
			Summary struct {
				InvoiceUUID, InvoiceID, BillingPeriod, Amount, UserName, UserEmail string
				ProductCharges                                                     struct {
					Amount string
					Items  []struct {
						Name, Amount string
						Count        int
					}
				}
			}
		}
		Preview struct {
			UUID, Amount string
			IsPreview    bool
		} `json:"invoicePreview"`
		Balance struct{ AccountBalance, MonthToDateUsage, MonthToDateBalance string }
	}
	h.mustData(`{
		billingHistory(first: 200) { totalCount nodes { type description amount date invoiceId invoiceUuid } }
		invoice(uuid: "`+inv.UUID+`") { uuid invoiceId period amount
			items(first: 200) { totalCount nodes { product description amount category resourceUuid } }
			summary { invoiceUuid invoiceId billingPeriod amount userName userEmail productCharges { amount items { name amount count } } } }
		invoicePreview { uuid amount isPreview }
		balance { accountBalance monthToDateUsage monthToDateBalance }
	}`, nil, &data)

	if data.BillingHistory.TotalCount == nil || *data.BillingHistory.TotalCount != len(acct.BillingHistory) || len(data.BillingHistory.Nodes) != min(200, len(acct.BillingHistory)) {
		t.Fatalf("billing history: total %v, %d nodes; want %d", data.BillingHistory.TotalCount, len(data.BillingHistory.Nodes), len(acct.BillingHistory))
	}
	for i, n := range data.BillingHistory.Nodes {
		e := acct.BillingHistory[i]
		wantDate := model.DateTimeFrom(e.Date).String()
		if n.Description != e.Description || n.Amount != e.Amount || n.Date == nil || *n.Date != wantDate ||
			deref(n.InvoiceUUID) != e.InvoiceUUID || deref(n.InvoiceID) != e.InvoiceID || n.Type == "UNKNOWN" {
			t.Errorf("billing entry %d: got %+v, want %+v", i, n, e)
		}
	}
	got := data.Invoice
	if got.UUID != inv.UUID || got.InvoiceID != inv.Number || got.Period != inv.Period || got.Amount != inv.Amount {
		t.Errorf("invoice: got %s %s %s %s, want %s %s %s %s", got.UUID, got.InvoiceID, got.Period, got.Amount, inv.UUID, inv.Number, inv.Period, inv.Amount)
	}
	if got.Items.TotalCount != len(inv.Items) || len(got.Items.Nodes) != len(inv.Items) {
		t.Fatalf("items: total %d, %d nodes; want %d", got.Items.TotalCount, len(got.Items.Nodes), len(inv.Items))
	}
	for i, n := range got.Items.Nodes {
		it := inv.Items[i]
		if n.Product != it.Product || n.Description != it.Description || n.Amount != it.Amount || deref(n.Category) != it.Category || deref(n.ResourceUUID) != it.ResourceUUID {
			t.Errorf("item %d: got %+v, want %+v", i, n, it)
		}
	}
	s, ws := got.Summary, inv.Summary
	if s.InvoiceUUID != ws.InvoiceUUID || s.InvoiceID != ws.InvoiceID || s.BillingPeriod != ws.BillingPeriod || s.Amount != ws.Amount ||
		s.UserName != ws.UserName || s.UserEmail != ws.UserEmail || s.ProductCharges.Amount != ws.ProductCharges.Amount ||
		len(s.ProductCharges.Items) != len(ws.ProductCharges.Items) {
		t.Errorf("summary: got %+v, want %+v", s, ws)
	}
	if data.Preview.Amount != acct.Preview.Amount || !data.Preview.IsPreview {
		t.Errorf("preview: got %+v, want amount %s", data.Preview, acct.Preview.Amount)
	}
	if b := data.Balance; b.AccountBalance != acct.Balance.AccountBalance || b.MonthToDateUsage != acct.Balance.MonthToDateUsage || b.MonthToDateBalance != acct.Balance.MonthToDateBalance {
		t.Errorf("balance: got %+v, want %+v", b, acct.Balance)
	}
}
