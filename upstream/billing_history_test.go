package upstream

import (
	"context"
	"net/http"
	"testing"
)

func TestListBillingHistoryDecodesSpecExample(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/billing_history", serveJSON(http.StatusOK, fixture(t, "billing_history.json")))
	c := newTestClient(t, do.URL, Config{})

	page, err := c.ListBillingHistory(context.Background(), ListOptions{Page: 1, PerPage: 2})
	if err != nil {
		t.Fatalf("ListBillingHistory: %v", err)
	}
	assertEqual(t, "billing history page", page, &BillingHistoryPage{
		BillingHistory: []BillingHistoryEntry{
			{Description: "Invoice for May 2018", Amount: "12.34", InvoiceID: "123", InvoiceUUID: "example-uuid", Date: "2018-06-01T08:44:38Z", Type: "Invoice"},
			{Description: "Payment (MC 2018)", Amount: "-12.34", Date: "2018-06-02T08:44:38Z", Type: "Payment"},
		},
		Links: &Links{Pages: &Pages{
			Next: "https://api.digitalocean.com/v2/customers/my/billing_history?page=2&per_page=2",
			Last: "https://api.digitalocean.com/v2/customers/my/billing_history?page=3&per_page=2",
		}},
		Meta: Meta{Total: ptr(5)},
	})
	if !page.Links.HasNext() {
		t.Error("HasNext() = false for a page with links.pages.next")
	}
	if got := do.seen()[0].URL.RawQuery; got != "page=1&per_page=2" {
		t.Errorf("query = %q, want page=1&per_page=2", got)
	}
}

func TestListBillingHistoryWithoutTotalOrEntries(t *testing.T) {
	// Both are optional for this endpoint only (REFERENCE Q2).
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/billing_history", serveJSON(http.StatusOK, []byte(`{"meta":{}}`)))
	c := newTestClient(t, do.URL, Config{})

	page, err := c.ListBillingHistory(context.Background(), ListOptions{})
	if err != nil {
		t.Fatalf("ListBillingHistory: %v", err)
	}
	assertEqual(t, "page", page, &BillingHistoryPage{})
	if page.Links.HasNext() {
		t.Error("HasNext() = true with no links")
	}
	if q := do.seen()[0].URL.RawQuery; q != "" {
		t.Errorf("zero ListOptions sent query %q, want none (DigitalOcean's defaults)", q)
	}
}
