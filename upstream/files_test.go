package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestGetInvoiceFileCSVFromSpecExample(t *testing.T) {
	csv := fixture(t, "invoice.csv")
	do := newFakeDO(t)
	do.mux.HandleFunc("GET /v2/customers/my/invoices/{uuid}/csv", func(w http.ResponseWriter, r *http.Request) {
		writeRateLimit(w)
		w.Header().Set("Content-Type", "text/csv")
		w.Header().Set("Content-Disposition", `attachment; filename="DigitalOcean Invoice 2020 Jul (6173678-418071234).csv"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(csv)))
		w.Write(csv)
	})
	c := newTestClient(t, do.URL, Config{})

	f, err := c.GetInvoiceFile(context.Background(), "22737513-0ea7-4206-8ceb-98a575af7681", FormatCSV)
	if err != nil {
		t.Fatalf("GetInvoiceFile(csv): %v", err)
	}
	defer f.Body.Close()
	body, err := io.ReadAll(f.Body)
	if err != nil {
		t.Fatalf("reading the CSV: %v", err)
	}
	if !bytes.Equal(body, csv) {
		t.Errorf("body = %q, want the spec's example CSV", body)
	}
	got := File{ContentType: f.ContentType, ContentLength: f.ContentLength, Filename: f.Filename, RateLimit: f.RateLimit}
	assertEqual(t, "file", got, File{
		ContentType:   "text/csv",
		ContentLength: int64(len(csv)),
		Filename:      "DigitalOcean Invoice 2020 Jul (6173678-418071234).csv",
		RateLimit:     specRateLimit,
	})
	if p := do.seen()[0].URL.Path; p != "/v2/customers/my/invoices/22737513-0ea7-4206-8ceb-98a575af7681/csv" {
		t.Errorf("path = %q", p)
	}
}

func TestGetInvoiceFilePDFIsStreamed(t *testing.T) {
	// The server sends the first part and waits: the call must return with
	// the body still open, not read it whole.
	release := make(chan struct{})
	do := newFakeDO(t)
	do.mux.HandleFunc("GET /v2/customers/my/invoices/{uuid}/pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Disposition", `attachment; filename*=UTF-8''Invoice%20M%C3%A4rz%20%282020%29.pdf`)
		w.Write([]byte("%PDF-1.4\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
			w.Write([]byte("%%EOF\n"))
		case <-r.Context().Done():
		}
	})
	c := newTestClient(t, do.URL, Config{Timeout: time.Minute})

	f, err := c.GetInvoiceFile(context.Background(), PreviewUUID, FormatPDF)
	if err != nil {
		close(release)
		t.Fatalf("GetInvoiceFile(pdf): %v", err)
	}
	defer f.Body.Close()
	if f.ContentType != "application/pdf" || f.ContentLength != -1 || f.Filename != "Invoice März (2020).pdf" {
		t.Errorf("file = type %q length %d name %q, want application/pdf, -1 (chunked), Invoice März (2020).pdf", f.ContentType, f.ContentLength, f.Filename)
	}
	head := make([]byte, len("%PDF-1.4\n"))
	if _, err := io.ReadFull(f.Body, head); err != nil || string(head) != "%PDF-1.4\n" {
		t.Fatalf("first bytes = %q, %v", head, err)
	}
	close(release)
	rest, err := io.ReadAll(f.Body)
	if err != nil || string(rest) != "%%EOF\n" {
		t.Errorf("rest = %q, %v; want the part sent after the call returned", rest, err)
	}
}

func TestGetInvoiceFileRefusesAnotherContentType(t *testing.T) {
	do := newFakeDO(t)
	do.mux.HandleFunc("GET /v2/customers/my/invoices/{uuid}/pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>sign in</html>"))
	})
	c := newTestClient(t, do.URL, Config{})
	f, err := c.GetInvoiceFile(context.Background(), "u", FormatPDF)
	if f != nil {
		f.Body.Close()
		t.Errorf("got a file from a text/html answer")
	}
	if e := asError(t, err); e.Kind != KindDecode || e.Status != 200 {
		t.Errorf("error = %+v, want KindDecode with status 200", e)
	}
}

func TestFileContentType(t *testing.T) {
	cases := []struct {
		header string
		format FileFormat
		want   string
		ok     bool
	}{
		{"application/pdf", FormatPDF, "application/pdf", true},
		{"", FormatPDF, "application/pdf", true},
		{"application/octet-stream", FormatPDF, "application/pdf", true},
		{"text/csv; charset=utf-8", FormatCSV, "text/csv; charset=utf-8", true},
		{"text/plain; charset=utf-8", FormatCSV, "text/csv", true},
		{"text/plain", FormatPDF, "", false},
		{"application/json", FormatCSV, "", false},
		{"text/html", FormatCSV, "", false},
	}
	for _, tc := range cases {
		got, ok := fileContentType(tc.header, tc.format)
		if got != tc.want || ok != tc.ok {
			t.Errorf("fileContentType(%q, %s) = %q, %v; want %q, %v", tc.header, tc.format, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFilenameFromContentDisposition(t *testing.T) {
	cases := []struct{ name, header, want string }{
		{"spec example", `attachment; filename="DigitalOcean Invoice 2020 Jul (6173678-418071234).csv"`, "DigitalOcean Invoice 2020 Jul (6173678-418071234).csv"},
		{"filename*", `attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf`, "Rechnung März.pdf"},
		{"filename* wins", `attachment; filename="fallback.pdf"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf`, "Rechnung März.pdf"},
		{"bare token", `attachment; filename=invoice.pdf`, "invoice.pdf"},
		{"unquoted with spaces", `attachment; filename=DigitalOcean Invoice.csv; size=3`, "DigitalOcean Invoice.csv"},
		{"escaped quote", `attachment; filename="a \"b\".csv"`, `a "b".csv`},
		{"directories stripped", `attachment; filename="../../etc/passwd"`, "passwd"},
		{"windows directories stripped", `attachment; filename="C:\\tmp\\x.pdf"`, "x.pdf"},
		{"no filename", `attachment`, ""},
		{"absent", ``, ""},
	}
	for _, tc := range cases {
		if got := filenameFrom(tc.header); got != tc.want {
			t.Errorf("%s: filenameFrom(%q) = %q, want %q", tc.name, tc.header, got, tc.want)
		}
	}
}

func TestFileTimeoutBoundsSilenceNotTheWholeBody(t *testing.T) {
	// Config.Timeout is 400ms; the file trickles in over ~640ms in 40ms steps
	// (ten times less than the timeout, so a loaded machine does not fail it).
	// A slow but steady file must arrive whole.
	do := newFakeDO(t)
	do.mux.HandleFunc("GET /v2/customers/my/invoices/{uuid}/pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		for i := 0; i < 16; i++ {
			w.Write([]byte("chunk\n"))
			w.(http.Flusher).Flush()
			select {
			case <-time.After(40 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	c := newTestClient(t, do.URL, Config{Timeout: 400 * time.Millisecond})
	f, err := c.GetInvoiceFile(context.Background(), "u", FormatPDF)
	if err != nil {
		t.Fatalf("GetInvoiceFile: %v", err)
	}
	defer f.Body.Close()
	body, err := io.ReadAll(f.Body)
	if err != nil || len(body) != 16*len("chunk\n") {
		t.Errorf("read %d bytes, %v; want the whole 96-byte file although it took longer than Timeout", len(body), err)
	}
}

func TestFileThatStallsEndsWithADeadline(t *testing.T) {
	do := newFakeDO(t)
	do.mux.HandleFunc("GET /v2/customers/my/invoices/{uuid}/pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Write([]byte("%PDF-1.4\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c := newTestClient(t, do.URL, Config{Timeout: 100 * time.Millisecond})
	f, err := c.GetInvoiceFile(context.Background(), "u", FormatPDF)
	if err != nil {
		t.Fatalf("GetInvoiceFile: %v", err)
	}
	defer f.Body.Close()
	_, err = io.ReadAll(f.Body)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("reading a stalled file: %v, want an error that is context.DeadlineExceeded", err)
	}
}

func TestFileHeadersThatNeverComeEndWithADeadline(t *testing.T) {
	do := newFakeDO(t)
	do.mux.HandleFunc("GET /v2/customers/my/invoices/{uuid}/pdf", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	c := newTestClient(t, do.URL, Config{Timeout: 100 * time.Millisecond, MaxRetries: -1})
	f, err := c.GetInvoiceFile(context.Background(), "u", FormatPDF)
	if f != nil {
		f.Body.Close()
	}
	if e := asError(t, err); e.Kind != KindTransport || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v (kind %d), want a KindTransport deadline", err, e.Kind)
	}
}
