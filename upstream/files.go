package upstream

import (
	"context"
	"io"
	"mime"
	"net/url"
	"strings"
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
	// Filename comes from Content-Disposition (filename* preferred), reduced
	// to a base name; empty when absent.
	Filename  string
	RateLimit RateLimit
}

// Endpoint is the label of the format's download (a format other than PDF is the CSV).
func (f FileFormat) Endpoint() string {
	if f == FormatPDF {
		return EndpointInvoicePDF
	}
	return EndpointInvoiceCSV
}

// GetInvoiceFile opens the CSV or PDF of an invoice as a stream. uuid may be PreviewUUID.
func (c *Client) GetInvoiceFile(ctx context.Context, uuid string, format FileFormat) (*File, error) {
	if format != FormatPDF {
		format = FormatCSV
	}
	return c.getStream(ctx, format.Endpoint(), invoicesPath+"/"+url.PathEscape(uuid)+"/"+string(format), format)
}

// fileContentType checks a file response's Content-Type. A missing or generic
// type (or text/plain for a CSV) is taken as the format's own; anything else,
// such as a proxy's text/html page, is not the file.
func fileContentType(header string, format FileFormat) (string, bool) {
	mt, _, err := mime.ParseMediaType(header)
	switch {
	case header == "" || mt == "application/octet-stream" || (format == FormatCSV && mt == "text/plain"):
		return format.ContentType(), true
	case err == nil && mt == format.ContentType():
		return header, true
	}
	return "", false
}

// filenameFrom reads the file name of a Content-Disposition header:
// filename* (RFC 5987, decoded by package mime) or a quoted or bare filename,
// such as `attachment; filename="DigitalOcean Invoice 2020 Jul (6173678-418071234).csv"`.
// Directories are stripped so that the name is safe to pass on.
func filenameFrom(disposition string) string {
	if disposition == "" {
		return ""
	}
	name := ""
	if _, params, err := mime.ParseMediaType(disposition); err == nil {
		name = params["filename"]
	} else if _, rest, found := strings.Cut(disposition, "filename="); found {
		// Not RFC-conformant (say, an unquoted name with spaces): take it as written.
		name, _, _ = strings.Cut(rest, ";")
		name = strings.Trim(strings.TrimSpace(name), `"`)
	}
	name = name[strings.LastIndexAny(name, `/\`)+1:]
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
}
