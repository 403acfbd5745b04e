package sandbox

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// pdfDoc is a one-page PDF 1.4 invoice, laid out before any byte is written
// so its length is known: the objects, an optional padding stream (written in
// chunks, never held in memory) and the cross-reference table.
type pdfDoc struct {
	head    []byte // header and objects 1 to 5
	padLen  int64  // length of object 6's stream; 0 for no object 6
	padHead []byte // object 6 up to its stream data
	tail    []byte // the end of object 6 (if any), xref, trailer
}

// padChunk is what the padding stream repeats; its bytes are never rendered.
var padChunk = bytes.Repeat([]byte("% oceangraph sandbox padding stream, not rendered.\n"), 640) // 32 KiB

const padEnd = "\nendstream\nendobj\n"

// newPDF lays out inv's PDF, padded to at least padTo bytes when padTo is larger.
func newPDF(a *Account, inv *Invoice, padTo int64) *pdfDoc {
	content := pdfContent(a, inv)
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
	}
	var head bytes.Buffer
	head.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n") // the binary comment marks the file as binary
	offsets := make([]int64, 0, 6)
	for i, body := range objects {
		offsets = append(offsets, int64(head.Len()))
		fmt.Fprintf(&head, "%d 0 obj\n%s\nendobj\n", i+1, body)
	}
	d := &pdfDoc{head: head.Bytes()}
	d.tail = xref(offsets, int64(head.Len()))
	if natural := d.size(); padTo > natural {
		// The stream length's digits change the lengths around it: settle it
		// in a few rounds, then lay out with the settled value.
		layout := func(padLen int64) {
			d.padLen = padLen
			d.padHead = fmt.Appendf(nil, "6 0 obj\n<< /Length %d >>\nstream\n", padLen)
			start := int64(len(d.head))
			end := start + int64(len(d.padHead)) + padLen + int64(len(padEnd))
			d.tail = append([]byte(padEnd), xref(append(offsets, start), end)...)
		}
		layout(padTo - natural)
		for range 4 {
			layout(max(d.padLen+padTo-d.size(), 0))
		}
	}
	return d
}

// xref renders the cross-reference table of objects at offsets and the trailer.
func xref(offsets []int64, at int64) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o) // each entry is exactly 20 bytes
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, at)
	return b.Bytes()
}

func (d *pdfDoc) size() int64 {
	return int64(len(d.head)+len(d.padHead)) + d.padLen + int64(len(d.tail))
}

// WriteTo streams the document, the padding in 32 KiB chunks.
func (d *pdfDoc) WriteTo(w io.Writer) (int64, error) {
	var n int64
	write := func(p []byte) error {
		m, err := w.Write(p)
		n += int64(m)
		return err
	}
	if err := write(d.head); err != nil {
		return n, err
	}
	if d.padHead != nil {
		if err := write(d.padHead); err != nil {
			return n, err
		}
		for left := d.padLen; left > 0; {
			chunk := padChunk[:min(left, int64(len(padChunk)))]
			if err := write(chunk); err != nil {
				return n, err
			}
			left -= int64(len(chunk))
		}
	}
	return n, write(d.tail)
}

// pdfContent draws the page: the invoice number and total first, then the
// summary and as many items as fit.
func pdfContent(a *Account, inv *Invoice) string {
	total, _ := parseCents(inv.Amount)
	period := inv.Start.Format("January 2006")
	if inv.IsPreview {
		period += " (month to date)"
	}
	var b strings.Builder
	line := func(size int, text string) {
		fmt.Fprintf(&b, "/F1 %d Tf (%s) Tj T*\n", size, pdfEscape(text))
	}
	b.WriteString("BT\n14 TL\n72 740 Td\n")
	line(22, "DigitalOcean")
	line(10, "")
	line(14, "Invoice number: "+inv.Number)
	line(12, "Billing period: "+period)
	line(12, "Total: "+total.dollars())
	line(10, "")
	line(10, fmt.Sprintf("%s, %s <%s>", a.UserName, a.UserCompany, a.UserEmail))
	line(10, fmt.Sprintf("%s, %s %s %s", a.Address.AddressLine1, a.Address.City, a.Address.PostalCode, a.Address.CountryISO2Code))
	line(10, "")
	sm := inv.Summary
	for _, c := range []struct{ name, amount string }{
		{sm.ProductCharges.Name, sm.ProductCharges.Amount}, {sm.Overages.Name, sm.Overages.Amount},
		{sm.Taxes.Name, sm.Taxes.Amount}, {sm.CreditsAndAdjustments.Name, sm.CreditsAndAdjustments.Amount},
	} {
		amount, _ := parseCents(c.amount)
		line(10, c.name+": "+amount.dollars())
	}
	line(10, "")
	const room = 34
	for i, it := range inv.Items {
		if i == room {
			line(9, fmt.Sprintf("... and %d more items (see the CSV)", len(inv.Items)-room))
			break
		}
		amount, _ := parseCents(it.Amount)
		line(9, fmt.Sprintf("%s - %s  %s", it.Product, it.Description, amount.dollars()))
	}
	b.WriteString("ET")
	return b.String()
}

// pdfEscaper escapes a PDF literal string; the sandbox's text is ASCII.
var pdfEscaper = strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)

func pdfEscape(s string) string { return pdfEscaper.Replace(s) }

// PDF streams the invoice's PDF to w, padded to at least padTo bytes.
func (inv *Invoice) PDF(w io.Writer, a *Account, padTo int64) (int64, error) {
	return newPDF(a, inv, padTo).WriteTo(w)
}

func (s *Sandbox) invoicePDF(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.invoice(w, r)
	if !ok {
		return
	}
	a := s.account(r)
	doc := newPDF(a, inv, s.faults.get().PDFSize)
	h := w.Header()
	h.Set("Content-Type", "application/pdf")
	h.Set("Content-Length", strconv.FormatInt(doc.size(), 10))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fileName(a, inv, "pdf")))
	w.WriteHeader(http.StatusOK)
	doc.WriteTo(w) // an error here is the client going away
}
