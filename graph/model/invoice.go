package model

import "github.com/oceangraph/oceangraph/upstream"

// Invoice is an invoice as far as this request knows it. Its summary and items
// resolve lazily in graph/invoices.resolvers.go through the per-request
// loaders; amount, period, invoiceId and updatedAt are methods (gqlgen runs
// them in line, where a resolver costs a goroutine per invoice) that read the
// list's entry, else ask the loaders through LoadSummary and LoadPreview. An
// Invoice costs no upstream call until a field needs one.
type Invoice struct {
	// UUID is the invoice's UUID as clients see it (the word "preview" when the
	// preview was asked for by that word).
	UUID string
	// Ref addresses the invoice in DigitalOcean's paths: the UUID, or
	// upstream.PreviewUUID for the month-to-date preview.
	Ref string
	// IsPreview reports whether this is the month-to-date preview.
	IsPreview bool
	// Listed is the invoice's entry from the invoice list (or the list's
	// invoice_preview); nil when the invoice was reached by UUID alone.
	Listed *upstream.Invoice
	// KnownInvoiceID is the invoice number when a billing history entry gave it.
	KnownInvoiceID string
	// LoadSummary reads the invoice's summary through the request's loader
	// (set by graph when Listed is nil): amount, period and invoiceId.
	LoadSummary func() (*upstream.InvoiceSummary, error)
	// LoadPreview reads the list's invoice_preview through the request's loader
	// (set by graph when Listed is nil): the preview's updatedAt.
	LoadPreview func() (*upstream.Invoice, error)
}

// InvoiceID is the invoice number: the list's, a billing history entry's, or the summary's.
func (i *Invoice) InvoiceID() (*string, error) {
	if i.Listed == nil && i.KnownInvoiceID != "" {
		return &i.KnownInvoiceID, nil
	}
	return listedOrSummary(i, func(l *upstream.Invoice) *string { return &l.InvoiceID },
		func(s *upstream.InvoiceSummary) *string { return &s.InvoiceID }, present)
}

// Period is the billing period, from the list or the summary.
func (i *Invoice) Period() (*string, error) {
	return listedOrSummary(i, func(l *upstream.Invoice) *string { return &l.InvoicePeriod },
		func(s *upstream.InvoiceSummary) *string { return &s.BillingPeriod }, present)
}

// Amount is the invoice's total, from the list or the summary.
func (i *Invoice) Amount() (*Money, error) {
	return listedOrSummary(i, func(l *upstream.Invoice) *string { return &l.Amount },
		func(s *upstream.InvoiceSummary) *string { return &s.Amount }, moneyAt)
}

// listedOrSummary converts a field the list's entry carries when the invoice
// came from the list, and its summary carries otherwise. conv points into
// them (present, moneyAt) rather than copying: both outlive the answer.
func listedOrSummary[T any](i *Invoice, listed func(*upstream.Invoice) *string, summary func(*upstream.InvoiceSummary) *string, conv func(*string) *T) (*T, error) {
	if i.Listed != nil {
		return conv(listed(i.Listed)), nil
	}
	s, err := i.LoadSummary()
	if err != nil {
		return nil, err
	}
	return conv(summary(s)), nil
}

// UpdatedAt is the list's updated_at; only the preview has one, and only the
// invoice list carries it.
func (i *Invoice) UpdatedAt() (*DateTime, error) {
	if i.Listed != nil {
		return DateTimeFrom(i.Listed.UpdatedAt), nil
	}
	if !i.IsPreview {
		return nil, nil
	}
	p, err := i.LoadPreview()
	if err != nil || p == nil {
		return nil, err
	}
	return DateTimeFrom(p.UpdatedAt), nil
}

// Files returns the invoice's CSV and PDF renderings; no upstream call.
func (i *Invoice) Files() *InvoiceFiles {
	return &InvoiceFiles{
		CSV: &InvoiceFile{InvoiceRef: i.Ref, Format: upstream.FormatCSV},
		PDF: &InvoiceFile{InvoiceRef: i.Ref, Format: upstream.FormatPDF},
	}
}

// InvoiceFiles are the two renderings of an invoice.
type InvoiceFiles struct {
	CSV *InvoiceFile
	PDF *InvoiceFile
}

// InvoiceFile is one rendering of an invoice. Its url, filename, byteSize and
// base64 resolve in graph/files.resolvers.go.
type InvoiceFile struct {
	// InvoiceRef addresses the invoice in DigitalOcean's paths (a UUID or "preview").
	InvoiceRef string
	// Format is csv or pdf.
	Format upstream.FileFormat
}

// ContentType is the file's media type; no upstream call.
func (f *InvoiceFile) ContentType() string { return f.Format.ContentType() }

// IsEntity marks Invoice as an Apollo Federation entity (key: uuid).
func (Invoice) IsEntity() {}
