package upstream

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

func TestListInvoicesDecodesSpecExample(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/invoices", serveJSON(http.StatusOK, fixture(t, "invoices.json")))
	c := newTestClient(t, do.URL, Config{})

	page, err := c.ListInvoices(context.Background(), ListOptions{Page: 1, PerPage: 2})
	if err != nil {
		t.Fatalf("ListInvoices: %v", err)
	}
	assertEqual(t, "invoice page", page, &InvoicePage{
		Invoices: []Invoice{
			{InvoiceUUID: "22737513-0ea7-4206-8ceb-98a575af7681", InvoiceID: "12345678", Amount: "12.34", InvoicePeriod: "2019-12"},
			{InvoiceUUID: "fdabb512-6faf-443c-ba2e-665452332a9e", InvoiceID: "23456789", Amount: "23.45", InvoicePeriod: "2019-11"},
		},
		InvoicePreview: &Invoice{InvoiceUUID: "1afe95e6-0958-4eb0-8d9a-9c5060d3ef03", InvoiceID: "34567890", Amount: "34.56", InvoicePeriod: "2020-02", UpdatedAt: "2020-02-23T06:31:50Z"},
		Links: &Links{Pages: &Pages{
			Next: "https://api.digitalocean.com/v2/customers/my/invoices?page=2&per_page=2",
			Last: "https://api.digitalocean.com/v2/customers/my/invoices?page=35&per_page=2",
		}},
		Meta: Meta{Total: ptr(70)},
	})
	if got := do.seen()[0].URL.RawQuery; got != "page=1&per_page=2" {
		t.Errorf("query = %q, want page=1&per_page=2", got)
	}
}

func TestListInvoiceItemsDecodesSpecExample(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/invoices/{uuid}", serveJSON(http.StatusOK, fixture(t, "invoice_items.json")))
	c := newTestClient(t, do.URL, Config{})

	page, err := c.ListInvoiceItems(context.Background(), "22737513-0ea7-4206-8ceb-98a575af7681", ListOptions{Page: 1, PerPage: 2})
	if err != nil {
		t.Fatalf("ListInvoiceItems: %v", err)
	}
	assertEqual(t, "invoice item page", page, &InvoiceItemPage{
		InvoiceItems: []InvoiceItem{
			{Product: "Kubernetes Clusters", ResourceUUID: "711157cb-37c8-4817-b371-44fa3504a39c", GroupDescription: "my-doks-cluster", Description: "a56e086a317d8410c8b4cfd1f4dc9f82", Amount: "12.34", Duration: "744", DurationUnit: "Hours", StartTime: "2020-01-01T00:00:00Z", EndTime: "2020-02-01T00:00:00Z"},
			{Product: "Spaces Subscription", Description: "Spaces ($5/mo 250GB storage & 1TB bandwidth)", Amount: "34.45", Duration: "744", DurationUnit: "Hours", StartTime: "2020-01-01T00:00:00Z", EndTime: "2020-02-01T00:00:00Z"},
		},
		Links: &Links{Pages: &Pages{
			Next: "https://api.digitalocean.com/v2/customers/my/invoices/22737513-0ea7-4206-8ceb-98a575af7681?page=2&per_page=2",
			Last: "https://api.digitalocean.com/v2/customers/my/invoices/22737513-0ea7-4206-8ceb-98a575af7681?page=3&per_page=2",
		}},
		Meta: Meta{Total: ptr(6)},
	})
	r := do.seen()[0]
	if r.URL.Path != "/v2/customers/my/invoices/22737513-0ea7-4206-8ceb-98a575af7681" || r.URL.RawQuery != "page=1&per_page=2" {
		t.Errorf("request = %s, want the invoice's path with page=1&per_page=2", r.URL)
	}
}

func TestListInvoiceItemsReadsCategoryAndResourceID(t *testing.T) {
	// category is not in the spec but the API sends it (REFERENCE Q3).
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/invoices/{uuid}", serveJSON(http.StatusOK, []byte(
		`{"invoice_items":[{"product":"Droplets","resource_id":"2353624","project_name":"web","category":"iaas","group_description":""}],"meta":{"total":1}}`)))
	c := newTestClient(t, do.URL, Config{})

	page, err := c.ListInvoiceItems(context.Background(), PreviewUUID, ListOptions{})
	if err != nil {
		t.Fatalf("ListInvoiceItems(preview): %v", err)
	}
	assertEqual(t, "items", page.InvoiceItems, []InvoiceItem{{Product: "Droplets", ResourceID: "2353624", ProjectName: "web", Category: "iaas"}})
	if p := do.seen()[0].URL.Path; p != "/v2/customers/my/invoices/preview" {
		t.Errorf("path = %q, want /v2/customers/my/invoices/preview", p)
	}
}

func TestGetInvoiceSummaryDecodesSpecExample(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/invoices/{uuid}/summary", serveJSON(http.StatusOK, fixture(t, "invoice_summary.json")))
	c := newTestClient(t, do.URL, Config{})

	s, err := c.GetInvoiceSummary(context.Background(), "22737513-0ea7-4206-8ceb-98a575af7681")
	if err != nil {
		t.Fatalf("GetInvoiceSummary: %v", err)
	}
	assertEqual(t, "summary", s, &InvoiceSummary{
		InvoiceUUID:   "22737513-0ea7-4206-8ceb-98a575af7681",
		InvoiceID:     "123456789",
		BillingPeriod: "2020-01",
		Amount:        "27.13",
		UserName:      "Sammy Shark",
		UserBillingAddress: &BillingAddress{
			AddressLine1: "101 Shark Row", City: "Atlantis", Region: "OC", PostalCode: "12345", CountryISO2Code: "US",
			CreatedAt: "2019-09-03T16:34:46.000+00:00", UpdatedAt: "2019-09-03T16:34:46.000+00:00",
		},
		UserCompany: "DigitalOcean",
		UserEmail:   "sammy@digitalocean.com",
		ProductCharges: &ProductUsageCharges{Name: "Product usage charges", Amount: "12.34", Items: []ProductChargeItem{
			{Name: "Spaces Subscription", Amount: "10.00", Count: "1"},
			{Name: "Database Clusters", Amount: "2.34", Count: "1"},
		}},
		Overages:              &SimpleCharge{Name: "Overages", Amount: "3.45"},
		Taxes:                 &SimpleCharge{Name: "Taxes", Amount: "4.56"},
		CreditsAndAdjustments: &SimpleCharge{Name: "Credits & adjustments", Amount: "6.78"},
	})
}

func TestInvoiceCallsRefuseAnEmptyUUID(t *testing.T) {
	// An empty uuid would turn /invoices/{uuid} into the invoice list.
	do := newFakeDO(t)
	c := newTestClient(t, do.URL, Config{})
	_, err := c.ListInvoiceItems(context.Background(), "", ListOptions{})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindRequest {
		t.Fatalf("ListInvoiceItems(\"\") error = %v, want a KindRequest *Error", err)
	}
	for _, uuid := range []string{"", ".", ".."} {
		if _, err := c.GetInvoiceSummary(context.Background(), uuid); !errors.As(err, &e) || e.Kind != KindRequest {
			t.Errorf("GetInvoiceSummary(%q) error = %v, want a KindRequest *Error", uuid, err)
		}
	}
	if n := len(do.seen()); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}
