package upstream

import (
	"context"
	"net/url"
)

// PreviewUUID is the word DigitalOcean accepts in place of an invoice UUID to
// address the month-to-date preview.
const PreviewUUID = "preview"

// Invoice is an element of the invoice list, and the list's `invoice_preview`.
type Invoice struct {
	InvoiceUUID   string `json:"invoice_uuid,omitempty"`
	InvoiceID     string `json:"invoice_id,omitempty"`
	Amount        string `json:"amount,omitempty"`
	InvoicePeriod string `json:"invoice_period,omitempty"`
	// UpdatedAt is only included with the invoice preview.
	UpdatedAt string `json:"updated_at,omitempty"`
}

const invoicesPath = "/v2/customers/my/invoices"

// The invoice endpoints' labels in metrics and errors.
const (
	EndpointInvoices       = "GET " + invoicesPath
	EndpointInvoiceItems   = "GET " + invoicesPath + "/{uuid}"
	EndpointInvoiceSummary = "GET " + invoicesPath + "/{uuid}/summary"
	EndpointInvoiceCSV     = "GET " + invoicesPath + "/{uuid}/csv"
	EndpointInvoicePDF     = "GET " + invoicesPath + "/{uuid}/pdf"
)

// InvoicePage is one page of GET /v2/customers/my/invoices.
type InvoicePage struct {
	Invoices       []Invoice `json:"invoices"`
	InvoicePreview *Invoice  `json:"invoice_preview,omitempty"`
	Links          *Links    `json:"links,omitempty"`
	Meta           Meta      `json:"meta"`
}

// InvoiceItem is one line of an invoice. Every field is an optional string,
// numbers included (duration "744"); Category is not in the spec but is sent.
type InvoiceItem struct {
	Product          string `json:"product,omitempty"`
	ResourceUUID     string `json:"resource_uuid,omitempty"`
	ResourceID       string `json:"resource_id,omitempty"`
	GroupDescription string `json:"group_description,omitempty"`
	Description      string `json:"description,omitempty"`
	Amount           string `json:"amount,omitempty"`
	Duration         string `json:"duration,omitempty"`
	DurationUnit     string `json:"duration_unit,omitempty"`
	StartTime        string `json:"start_time,omitempty"`
	EndTime          string `json:"end_time,omitempty"`
	ProjectName      string `json:"project_name,omitempty"`
	Category         string `json:"category,omitempty"`
}

// InvoiceItemPage is one page of GET /v2/customers/my/invoices/{uuid}.
type InvoiceItemPage struct {
	InvoiceItems []InvoiceItem `json:"invoice_items"`
	Links        *Links        `json:"links,omitempty"`
	Meta         Meta          `json:"meta"`
}

// InvoiceSummary is GET /v2/customers/my/invoices/{uuid}/summary: the object
// itself, with no wrapper key and no links or meta.
type InvoiceSummary struct {
	InvoiceUUID           string               `json:"invoice_uuid,omitempty"`
	InvoiceID             string               `json:"invoice_id,omitempty"`
	BillingPeriod         string               `json:"billing_period,omitempty"`
	Amount                string               `json:"amount,omitempty"`
	UserName              string               `json:"user_name,omitempty"`
	UserBillingAddress    *BillingAddress      `json:"user_billing_address,omitempty"`
	UserCompany           string               `json:"user_company,omitempty"`
	UserEmail             string               `json:"user_email,omitempty"`
	ProductCharges        *ProductUsageCharges `json:"product_charges,omitempty"`
	Overages              *SimpleCharge        `json:"overages,omitempty"`
	Taxes                 *SimpleCharge        `json:"taxes,omitempty"`
	CreditsAndAdjustments *SimpleCharge        `json:"credits_and_adjustments,omitempty"`
}

// BillingAddress is the customer's address on an invoice summary. Its
// timestamps look like 2019-09-03T16:34:46.000+00:00.
type BillingAddress struct {
	AddressLine1    string `json:"address_line1,omitempty"`
	AddressLine2    string `json:"address_line2,omitempty"`
	City            string `json:"city,omitempty"`
	Region          string `json:"region,omitempty"`
	PostalCode      string `json:"postal_code,omitempty"`
	CountryISO2Code string `json:"country_iso2_code,omitempty"`
	CreatedAt       string `json:"created_at,omitempty"`
	UpdatedAt       string `json:"updated_at,omitempty"`
}

// ProductUsageCharges is the product usage block of a summary, grouped by product.
type ProductUsageCharges struct {
	Name   string              `json:"name,omitempty"`
	Amount string              `json:"amount,omitempty"`
	Items  []ProductChargeItem `json:"items,omitempty"`
}

// ProductChargeItem is one product's aggregate; Count is a string ("1").
type ProductChargeItem struct {
	Name   string `json:"name,omitempty"`
	Amount string `json:"amount,omitempty"`
	Count  string `json:"count,omitempty"`
}

// SimpleCharge is a named amount (overages, taxes, credits and adjustments).
type SimpleCharge struct {
	Name   string `json:"name,omitempty"`
	Amount string `json:"amount,omitempty"`
}

// ListInvoices fetches one page of issued invoices, with the month-to-date preview.
func (c *Client) ListInvoices(ctx context.Context, opt ListOptions) (*InvoicePage, error) {
	var page InvoicePage
	if err := c.getJSON(ctx, EndpointInvoices, invoicesPath, opt.values(), &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// ListInvoiceItems fetches one page of an invoice's items. uuid may be PreviewUUID.
func (c *Client) ListInvoiceItems(ctx context.Context, uuid string, opt ListOptions) (*InvoiceItemPage, error) {
	var page InvoiceItemPage
	if err := c.getJSON(ctx, EndpointInvoiceItems, invoicesPath+"/"+url.PathEscape(uuid), opt.values(), &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// GetInvoiceSummary fetches an invoice's summary. uuid may be PreviewUUID.
func (c *Client) GetInvoiceSummary(ctx context.Context, uuid string) (*InvoiceSummary, error) {
	var s InvoiceSummary
	if err := c.getJSON(ctx, EndpointInvoiceSummary, invoicesPath+"/"+url.PathEscape(uuid)+"/summary", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
