package model

import "github.com/oceangraph/oceangraph/upstream"

// Invoice is an invoice as far as this request knows it. What it does not
// carry (the summary, the items, and amount/period/invoiceId when it did not
// come from a list) resolves lazily in graph/invoices.resolvers.go through the
// per-request loaders, so an Invoice costs no upstream call until a field needs one.
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
