package upstream

import (
	"context"
	"io"
	"net/url"
)

// FileFormat names a rendering of an invoice that DigitalOcean serves.
type FileFormat string

// The two invoice renderings.
const (
	FormatCSV FileFormat = "csv"
	FormatPDF FileFormat = "pdf"
)

// ContentType is the media type DigitalOcean serves the format with.
func (f FileFormat) ContentType() string {
	if f == FormatPDF {
		return "application/pdf"
	}
	return "text/csv"
}

// File is an invoice rendering being streamed from DigitalOcean. The caller
// must close Body; nothing has been read from it yet.
type File struct {
	Body        io.ReadCloser
	ContentType string
	// ContentLength is -1 when DigitalOcean did not say.
	ContentLength int64
	// Filename comes from Content-Disposition; empty when absent.
	Filename  string
	RateLimit RateLimit
}

// GetInvoiceFile opens the CSV or PDF of an invoice as a stream. uuid may be PreviewUUID.
func (c *Client) GetInvoiceFile(ctx context.Context, uuid string, format FileFormat) (*File, error) {
	endpoint := EndpointInvoiceCSV
	if format == FormatPDF {
		endpoint = EndpointInvoicePDF
	}
	return c.getStream(ctx, endpoint, "/v2/customers/my/invoices/"+url.PathEscape(uuid)+"/"+string(format))
}
