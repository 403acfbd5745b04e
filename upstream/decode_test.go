package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"testing"
)

// TestTolerantDecoding feeds bodies that are legal by REFERENCE but unlike the
// spec's examples: missing fields, empty links, extra keys, nulls, a bare region.
func TestTolerantDecoding(t *testing.T) {
	cases := []struct {
		name    string
		pattern string
		body    string
		call    func(context.Context, *Client) (any, error)
		want    any
	}{
		{
			name:    "volume with a bare region, null lists and unknown keys",
			pattern: "GET /v2/volumes",
			body:    `{"volumes":[{"id":"v1","region":{"slug":"nyc3"},"droplet_ids":null,"tags":null,"user_id":7,"attached_to_droplet":null,"size_gigabytes":100}],"meta":{"total":1},"extra":{"a":[1]}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListVolumes(ctx, VolumeListOptions{})
			},
			want: &VolumePage{Volumes: []Volume{{ID: "v1", Region: &Region{Slug: "nyc3"}, SizeGigabytes: 100}}, Meta: Meta{Total: ptr(1)}},
		},
		{
			name:    "volume with every field missing, no links",
			pattern: "GET /v2/volumes",
			body:    `{"volumes":[{}],"meta":{"total":1}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListVolumes(ctx, VolumeListOptions{})
			},
			want: &VolumePage{Volumes: []Volume{{}}, Meta: Meta{Total: ptr(1)}},
		},
		{
			name:    "links with only backward pages",
			pattern: "GET /v2/customers/my/invoices",
			body:    `{"invoices":[],"links":{"pages":{"first":"https://api.digitalocean.com/v2/customers/my/invoices?page=1&per_page=2","prev":"https://api.digitalocean.com/v2/customers/my/invoices?page=34&per_page=2"}},"meta":{"total":70}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListInvoices(ctx, ListOptions{Page: 35, PerPage: 2})
			},
			want: &InvoicePage{Invoices: []Invoice{}, Links: &Links{Pages: &Pages{
				First: "https://api.digitalocean.com/v2/customers/my/invoices?page=1&per_page=2",
				Prev:  "https://api.digitalocean.com/v2/customers/my/invoices?page=34&per_page=2",
			}}, Meta: Meta{Total: ptr(70)}},
		},
		{
			name:    "invoice list without preview, items without uuid",
			pattern: "GET /v2/customers/my/invoices",
			body:    `{"invoices":[{"invoice_id":"1","amount":"0.00"}],"links":{"pages":{}},"meta":{"total":1}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListInvoices(ctx, ListOptions{})
			},
			want: &InvoicePage{Invoices: []Invoice{{InvoiceID: "1", Amount: "0.00"}}, Links: &Links{Pages: &Pages{}}, Meta: Meta{Total: ptr(1)}},
		},
		{
			name:    "summary with only some blocks",
			pattern: "GET /v2/customers/my/invoices/{uuid}/summary",
			body:    `{"invoice_uuid":"preview-uuid","amount":"-1.50","taxes":{"amount":"0.00","items":[]},"user_billing_address":{}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.GetInvoiceSummary(ctx, PreviewUUID)
			},
			want: &InvoiceSummary{InvoiceUUID: "preview-uuid", Amount: "-1.50", Taxes: &SimpleCharge{Amount: "0.00"}, UserBillingAddress: &BillingAddress{}},
		},
		{
			name:    "numbers where the spec says string keep their literal text",
			pattern: "GET /v2/customers/my/billing_history",
			body:    `{"billing_history":[{"amount":12.30,"invoice_id":123,"type":"Invoice"},{"amount":-0.5},{"amount":1e400}],"meta":{"total":3}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListBillingHistory(ctx, ListOptions{})
			},
			want: &BillingHistoryPage{BillingHistory: []BillingHistoryEntry{
				{Amount: "12.30", InvoiceID: "123", Type: "Invoice"}, {Amount: "-0.5"}, {Amount: "1e400"},
			}, Meta: Meta{Total: ptr(3)}},
		},
		{
			name:    "numeric count and duration, numeric-string total",
			pattern: "GET /v2/customers/my/invoices/{uuid}/summary",
			body:    `{"amount":27.13,"product_charges":{"amount":"12.34","items":[{"name":"Spaces Subscription","amount":10.00,"count":1}]}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.GetInvoiceSummary(ctx, "u")
			},
			want: &InvoiceSummary{Amount: "27.13", ProductCharges: &ProductUsageCharges{Amount: "12.34", Items: []ProductChargeItem{{Name: "Spaces Subscription", Amount: "10.00", Count: "1"}}}},
		},
		{
			name:    "integers sent as strings",
			pattern: "GET /v2/volumes",
			body:    `{"volumes":[{"id":"v1","size_gigabytes":"10","droplet_ids":["42"]}],"meta":{"total":"1"}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListVolumes(ctx, VolumeListOptions{})
			},
			want: &VolumePage{Volumes: []Volume{{ID: "v1", SizeGigabytes: 10, DropletIDs: []int{42}}}, Meta: Meta{Total: ptr(1)}},
		},
		{
			name:    "balance without content type",
			pattern: "GET /v2/customers/my/balance",
			body:    `{"account_balance":"0.00"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.GetBalance(ctx)
			},
			want: &Balance{AccountBalance: "0.00"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.HandleFunc(tc.pattern, func(w http.ResponseWriter, r *http.Request) {
				if tc.name != "balance without content type" {
					w.Header().Set("Content-Type", "application/json")
				}
				w.Write([]byte(tc.body))
			})
			c := newTestClient(t, do.URL, Config{})
			got, err := tc.call(context.Background(), c)
			if err != nil {
				t.Fatalf("decode of %s: %v", tc.body, err)
			}
			assertEqual(t, "decoded", got, tc.want)
		})
	}
}

func TestNumbersThatCannotBeCoercedStillFail(t *testing.T) {
	for _, body := range []string{
		`{"volumes":[{"size_gigabytes":10.5}],"meta":{"total":1}}`,
		`{"volumes":[{"size_gigabytes":"ten"}],"meta":{"total":1}}`,
		`{"volumes":[{"name":true}],"meta":{"total":1}}`,
		`{"volumes":{"id":"v1"},"meta":{"total":1}}`,
	} {
		var page VolumePage
		if err := DecodeJSON([]byte(body), &page); err == nil {
			t.Errorf("DecodeJSON(%s) = %+v, want an error", body, page)
		}
	}
}

// TestRegionsDecodedOnceReadAsEncodingJSON: a page whose volumes repeat their
// regions (decoded once, then shared) reads as encoding/json reads it, the
// second time too, and a repeated region key still merges as encoding/json does.
func TestRegionsDecodedOnceReadAsEncodingJSON(t *testing.T) {
	page, err := os.ReadFile("testdata/volumes_sandbox_page.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range [][]byte{page, page, []byte(`{"volumes":[{"region":{"slug":"nyc1"},"region":{"name":"New York 1"}}]}`)} {
		var got, want VolumePage
		if err := DecodeJSON(body, &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeJSON gave %+v, encoding/json %+v", got, want)
		}
	}
}

// BenchmarkDecodeVolumesPage decodes a sandbox page of 20 volumes.
func BenchmarkDecodeVolumesPage(b *testing.B) {
	page, err := os.ReadFile("testdata/volumes_sandbox_page.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		var p VolumePage
		if err := DecodeJSON(page, &p); err != nil {
			b.Fatal(err)
		}
	}
}
