package sandbox

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCSV checks the CSV download against DigitalOcean's: the header, one row
// per item, dates and dollar amounts in its formats, and the headers.
func TestCSV(t *testing.T) {
	s, srv := newTestServer(t, Options{})
	a := s.Account(testToken)
	inv := a.Invoices[0]
	resp, body := get(t, srv, testToken, "/v2/customers/my/invoices/"+inv.UUID+"/csv")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv" {
		t.Fatalf("status %d, content type %q: want 200 text/csv", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	wantName := fmt.Sprintf("DigitalOcean Invoice %s (%s-%s).csv", inv.Start.Format("2006 Jan"), a.CustomerID, inv.Number)
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err != nil || params["filename"] != wantName ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment; ") {
		t.Errorf("Content-Disposition %q, want attachment with filename %q", resp.Header.Get("Content-Disposition"), wantName)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	if got := strings.Join(rows[0], ","); got != "product,group_description,description,hours,start,end,USD,project_name,category" {
		t.Errorf("header %q", got)
	}
	if len(rows)-1 != len(inv.Items) {
		t.Fatalf("%d rows, want one per item (%d)", len(rows)-1, len(inv.Items))
	}
	date := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000$`)
	money := regexp.MustCompile(`^-?\$\d+\.\d\d$`)
	var sum cents
	for i, row := range rows[1:] {
		it := inv.Items[i]
		if row[0] != it.Product || row[2] != it.Description || row[3] != it.Duration || row[8] != it.Category {
			t.Errorf("row %d %q does not match item %+v", i+1, row, it)
		}
		if !date.MatchString(row[4]) || !date.MatchString(row[5]) || !money.MatchString(row[6]) {
			t.Errorf("row %d: start %q end %q USD %q, want 2020-07-01 00:00:00 +0000 and $3.11 formats", i+1, row[4], row[5], row[6])
		}
		c, _ := parseCents(strings.Replace(row[6], "$", "", 1))
		sum += c
	}
	if sum.String() != inv.Amount {
		t.Errorf("CSV amounts add up to %s, invoice amount %s", sum, inv.Amount)
	}
}

// TestPDF checks the PDF download: headers, structure (every xref offset
// points at its object) and, with pdftotext installed, the visible text.
func TestPDF(t *testing.T) {
	s, srv := newTestServer(t, Options{})
	a := s.Account(testToken)
	for _, inv := range []*Invoice{a.Invoices[2], a.Preview} {
		path := "/v2/customers/my/invoices/" + inv.UUID + "/pdf"
		if inv.IsPreview {
			path = "/v2/customers/my/invoices/preview/pdf"
		}
		resp, body := get(t, srv, testToken, path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
			t.Fatalf("GET %s: %d %q length %q for %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Length"), len(body))
		}
		wantName := fmt.Sprintf("DigitalOcean Invoice %s (%s-%s).pdf", inv.Start.Format("2006 Jan"), a.CustomerID, inv.Number)
		if _, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); params["filename"] != wantName {
			t.Errorf("GET %s: Content-Disposition %q, want filename %q", path, resp.Header.Get("Content-Disposition"), wantName)
		}
		checkPDFStructure(t, body)
		total, _ := parseCents(inv.Amount)
		checkPDFText(t, body, "Invoice number: "+inv.Number, "Total: "+total.dollars())
	}
}

// TestPDFPadding pads to an exact size, still valid, and streams it: the
// bytes reach the client before the handler has written them all.
func TestPDFPadding(t *testing.T) {
	a := New(Options{Now: func() time.Time { return fixedNow }}).Account(testToken)
	inv := a.Invoices[0]
	natural := newPDF(a, inv, 0).size()
	for _, size := range []int64{0, natural, natural + 1, natural + 70, 99_999, 100_000, 1 << 20, 3<<20 + 17} {
		var buf bytes.Buffer
		n, err := inv.PDF(&buf, a, size)
		if err != nil || n != int64(buf.Len()) {
			t.Fatalf("pad to %d: wrote %d (%v), buffer has %d", size, n, err, buf.Len())
		}
		// Padding needs an object of its own (about 70 bytes), so just above
		// the natural size the file comes out a little larger than asked.
		got := int64(buf.Len())
		switch {
		case size <= natural && got != natural:
			t.Errorf("pad to %d: %d bytes, want the natural %d", size, got, natural)
		case size > natural+200 && got != size:
			t.Errorf("pad to %d: %d bytes, want exactly %d", size, got, size)
		case got < size || got > max(size, natural+200):
			t.Errorf("pad to %d: %d bytes, want at least that and at most %d", size, got, natural+200)
		}
		checkPDFStructure(t, buf.Bytes())
	}
	var buf bytes.Buffer
	inv.PDF(&buf, a, 1<<20)
	total, _ := parseCents(inv.Amount)
	checkPDFText(t, buf.Bytes(), "Invoice number: "+inv.Number, "Total: "+total.dollars())
}

// TestPDFIsStreamed serves a 50 MB PDF through a writer that records the
// largest single write: the padding goes out in chunks, never whole.
func TestPDFIsStreamed(t *testing.T) {
	s := New(Options{Now: func() time.Time { return fixedNow }, PDFSize: 50 << 20})
	rec := &chunkRecorder{header: http.Header{}}
	req, _ := http.NewRequest("GET", "/v2/customers/my/invoices/preview/pdf", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	s.ServeHTTP(rec, req)
	if rec.status != 200 || rec.total != 50<<20 || rec.header.Get("Content-Length") != strconv.Itoa(50<<20) {
		t.Fatalf("status %d, %d bytes, Content-Length %q: want 200 and 50 MiB", rec.status, rec.total, rec.header.Get("Content-Length"))
	}
	if rec.largest > 64<<10 {
		t.Errorf("largest write %d bytes: want the padding streamed in chunks of at most 64 KiB", rec.largest)
	}
}

// chunkRecorder is a ResponseWriter that keeps only sizes, so a 50 MB body
// costs the test no memory.
type chunkRecorder struct {
	header         http.Header
	status         int
	total, largest int
}

func (c *chunkRecorder) Header() http.Header { return c.header }
func (c *chunkRecorder) WriteHeader(s int)   { c.status = s }
func (c *chunkRecorder) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = 200
	}
	c.total += len(p)
	c.largest = max(c.largest, len(p))
	return len(p), nil
}

var (
	startxrefRE = regexp.MustCompile(`startxref\n(\d+)\n%%EOF\n$`)
	xrefHeadRE  = regexp.MustCompile(`^xref\n0 (\d+)\n`)
)

// checkPDFStructure is a pure-Go check that the file is a PDF whose
// cross-reference table is right: startxref points at the table and every
// in-use entry at "N 0 obj".
func checkPDFStructure(t *testing.T, pdf []byte) {
	t.Helper()
	if !bytes.HasPrefix(pdf, []byte("%PDF-1.4\n")) {
		t.Fatalf("does not start with %%PDF-1.4: %q", pdf[:min(len(pdf), 16)])
	}
	m := startxrefRE.FindSubmatch(pdf[max(0, len(pdf)-64):])
	if m == nil {
		t.Fatalf("no startxref/%%%%EOF at the end: %q", pdf[max(0, len(pdf)-64):])
	}
	at, _ := strconv.Atoi(string(m[1]))
	if at >= len(pdf) {
		t.Fatalf("startxref %d beyond the file (%d bytes)", at, len(pdf))
	}
	h := xrefHeadRE.FindSubmatch(pdf[at:])
	if h == nil {
		t.Fatalf("startxref %d does not point at an xref table: %q", at, pdf[at:min(len(pdf), at+20)])
	}
	n, _ := strconv.Atoi(string(h[1]))
	entries := pdf[at+len(h[0]):]
	if len(entries) < 20*n {
		t.Fatalf("xref promises %d entries of 20 bytes, %d bytes left", n, len(entries))
	}
	for i := range n {
		e := string(entries[20*i : 20*i+20])
		if i == 0 {
			if e != "0000000000 65535 f \n" {
				t.Errorf("xref entry 0 %q, want the free head", e)
			}
			continue
		}
		off, err := strconv.Atoi(e[:10])
		if err != nil || e[10:] != " 00000 n \n" {
			t.Fatalf("xref entry %d %q is malformed", i, e)
		}
		if want := fmt.Sprintf("%d 0 obj\n", i); !bytes.HasPrefix(pdf[off:], []byte(want)) {
			t.Errorf("xref entry %d: offset %d holds %q, want %q", i, off, pdf[off:min(len(pdf), off+12)], want)
		}
	}
	if !bytes.Contains(entries[20*n:], []byte(fmt.Sprintf("trailer\n<< /Size %d /Root 1 0 R >>", n))) {
		t.Errorf("trailer does not give /Size %d /Root 1 0 R", n)
	}
}

// checkPDFText runs pdftotext when installed (CI installs poppler-utils) and
// looks for each want in the text; otherwise that assertion is skipped.
func checkPDFText(t *testing.T, pdf []byte, wants ...string) {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Log("pdftotext not on PATH (apt-get install poppler-utils): text assertion skipped, structure checked")
		return
	}
	file := filepath.Join(t.TempDir(), "invoice.pdf")
	if err := os.WriteFile(file, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, file, "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("pdftotext: %v: %s", err, stderr.String())
	}
	for _, want := range wants {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("PDF text lacks %q:\n%s", want, out[:min(len(out), 600)])
		}
	}
}
