package graph

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// filesRig is the GraphQL handler and the download routes sharing one
// sandbox, one client and one link key, as server.go wires them.
type filesRig struct {
	*harness
	downloads http.Handler
}

func newFilesRig(t *testing.T, opts sandbox.Options) *filesRig {
	t.Helper()
	sb := sandbox.New(opts)
	links, _ := newTestFileLinks(t, fileTestKey)
	h := newHarness(t, sb, func(c *Config) { c.Links = links })
	h.sandbox = sb
	return &filesRig{harness: h, downloads: downloadRoutes(h.cfg.Client, links, "", h.cfg.Logger)}
}

// fileCalls counts the sandbox's requests for invoice files, by format, and resets the log.
func (rig *filesRig) fileCalls() map[string]int {
	n := map[string]int{}
	for _, c := range rig.upstreamCalls() {
		for _, f := range []string{"csv", "pdf"} {
			if strings.HasSuffix(c, "/"+f) {
				n[f]++
			}
		}
	}
	return n
}

type fileFields struct {
	URL         string
	ContentType string
	Filename    *string
	ByteSize    *int
	Base64      *string
}

func TestInvoiceFileFieldsDownloadOncePerRequest(t *testing.T) {
	rig := newFilesRig(t, sandbox.Options{Seed: 1})
	inv := rig.sandbox.Account(callerToken).Invoices[2]
	rig.sandbox.Reset()

	var data struct {
		A struct {
			Files struct {
				PDF struct {
					fileFields
					N2 *string
					S2 *int
					B2 *string
				}
				CSV fileFields
			}
		}
		B struct{ Files struct{ PDF fileFields } }
	}
	rig.mustData(`query($u: ID!) {
		a: invoice(uuid: $u) {
			files {
				pdf { filename byteSize base64 n2: filename s2: byteSize b2: base64 }
				csv { filename byteSize }
			}
		}
		b: invoice(uuid: $u) { files { pdf { ...sized } } }
	}
	fragment sized on InvoiceFile { base64 byteSize filename }`, map[string]any{"u": inv.UUID}, &data)

	if got := rig.fileCalls(); got["pdf"] != 1 || got["csv"] != 1 {
		t.Errorf("file downloads per format = %v, want exactly one pdf and one csv", got)
	}
	pdf := data.A.Files.PDF
	if pdf.Base64 == nil || pdf.ByteSize == nil || pdf.Filename == nil {
		t.Fatalf("pdf fields are null: %+v", pdf)
	}
	content, err := base64.StdEncoding.DecodeString(*pdf.Base64)
	if err != nil || !bytes.HasPrefix(content, []byte("%PDF-")) {
		t.Errorf("base64 decodes to %q... (%v), want a PDF", content[:min(len(content), 8)], err)
	}
	if len(content) != *pdf.ByteSize {
		t.Errorf("byteSize = %d, but base64 holds %d bytes", *pdf.ByteSize, len(content))
	}
	wantName := "DigitalOcean Invoice " + inv.Start.Format("2006 Jan")
	if !strings.HasPrefix(*pdf.Filename, wantName) || !strings.HasSuffix(*pdf.Filename, ".pdf") {
		t.Errorf("filename = %q, want DigitalOcean's %q...pdf", *pdf.Filename, wantName)
	}
	for name, same := range map[string]bool{
		"alias n2":           pdf.N2 != nil && *pdf.N2 == *pdf.Filename,
		"alias s2":           pdf.S2 != nil && *pdf.S2 == *pdf.ByteSize,
		"alias b2":           pdf.B2 != nil && *pdf.B2 == *pdf.Base64,
		"fragment base64":    data.B.Files.PDF.Base64 != nil && *data.B.Files.PDF.Base64 == *pdf.Base64,
		"fragment byteSize":  data.B.Files.PDF.ByteSize != nil && *data.B.Files.PDF.ByteSize == *pdf.ByteSize,
		"csv has a filename": data.A.Files.CSV.Filename != nil && strings.HasSuffix(*data.A.Files.CSV.Filename, ".csv"),
	} {
		if !same {
			t.Errorf("%s: differs from the first selection (%+v)", name, data)
		}
	}

	// A second request downloads again: the memo is per request.
	rig.mustData(`query($u: ID!) { invoice(uuid: $u) { files { pdf { byteSize } } } }`, map[string]any{"u": inv.UUID}, &struct{}{})
	if got := rig.fileCalls(); got["pdf"] != 1 {
		t.Errorf("second request: %d pdf downloads, want 1", got["pdf"])
	}
}

func TestInvoiceFileURLCostsNoDownloadAndOpensWithoutHeaders(t *testing.T) {
	rig := newFilesRig(t, sandbox.Options{Seed: 1})
	inv := rig.sandbox.Account(callerToken).Invoices[0]
	rig.sandbox.Reset()

	var data struct {
		Invoice struct{ Files struct{ CSV, PDF fileFields } }
	}
	rig.mustData(`query($u: ID!) { invoice(uuid: $u) { files { csv { url contentType } pdf { url contentType } } } }`,
		map[string]any{"u": inv.UUID}, &data)
	if got := rig.fileCalls(); len(got) != 0 {
		t.Errorf("url and contentType caused file downloads %v, want none", got)
	}
	files := data.Invoice.Files
	if files.CSV.ContentType != "text/csv" || files.PDF.ContentType != "application/pdf" {
		t.Errorf("contentType csv %q pdf %q, want text/csv and application/pdf", files.CSV.ContentType, files.PDF.ContentType)
	}
	wantSuffix := "/invoice-" + inv.UUID + ".pdf"
	if !strings.HasPrefix(files.PDF.URL, "https://og.example/files/") || !strings.HasSuffix(files.PDF.URL, wantSuffix) {
		t.Errorf("pdf url %q, want https://og.example/files/{opaque}%s", files.PDF.URL, wantSuffix)
	}
	if strings.Contains(files.PDF.URL, callerToken) || strings.Contains(files.PDF.URL, base64.RawURLEncoding.EncodeToString([]byte(callerToken))) {
		t.Errorf("url %q shows the caller's token", files.PDF.URL)
	}

	// A browser opens the link with no headers at all.
	u, _ := url.Parse(files.PDF.URL)
	rec := httptest.NewRecorder()
	rig.downloads.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u.Path, nil))
	if rec.Code != http.StatusOK || !bytes.HasPrefix(rec.Body.Bytes(), []byte("%PDF-")) {
		t.Errorf("opening the url: status %d, body %q...; want 200 and a PDF", rec.Code, rec.Body.Bytes()[:min(rec.Body.Len(), 16)])
	}
	if got := rig.fileCalls(); got["pdf"] != 1 {
		t.Errorf("opening the url made %d pdf downloads, want 1", got["pdf"])
	}
}

func TestInvoiceFileBase64RefusesLargeFiles(t *testing.T) {
	const size = DefaultMaxBase64FileBytes + 1<<20
	rig := newFilesRig(t, sandbox.Options{Seed: 1, PDFSize: size})
	inv := rig.sandbox.Account(callerToken).Invoices[0]
	rig.sandbox.Reset()

	resp := rig.post(`query($u: ID!) { invoice(uuid: $u) { files { pdf { filename byteSize base64 } } } }`, map[string]any{"u": inv.UUID})
	var data struct {
		Invoice struct{ Files struct{ PDF fileFields } }
	}
	decode(t, resp, &data)
	pdf := data.Invoice.Files.PDF
	if pdf.Base64 != nil {
		t.Errorf("base64 of a %d-byte file is %d characters, want null", size, len(*pdf.Base64))
	}
	if pdf.ByteSize == nil || *pdf.ByteSize < size || pdf.Filename == nil {
		t.Errorf("byteSize %v filename %v, want at least %d and a name: they do not depend on base64", pdf.ByteSize, pdf.Filename, size)
	}
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeBadUserInput ||
		!strings.Contains(resp.Errors[0].Message, "download it from url") {
		t.Fatalf("errors = %+v, want one BAD_USER_INPUT pointing at url", resp.Errors)
	}
	if path := resp.Errors[0].Path; len(path) != 4 || path[3] != "base64" {
		t.Errorf("error path %v, want [invoice files pdf base64]", path)
	}
	if got := rig.fileCalls(); got["pdf"] != 1 {
		t.Errorf("%d pdf downloads, want 1", got["pdf"])
	}
}

func TestOperationSelectsBase64(t *testing.T) {
	// Without an operation (a resolver called directly), the safe answer is yes.
	if !operationSelectsBase64(t.Context()) {
		t.Error("outside an operation: false, want true")
	}
}

func TestFileDownloadsShareOneCallAndForgetTransientFailures(t *testing.T) {
	const csv = "product,USD\nDroplets,$1.00\n"
	var calls, status atomic.Int32
	release := make(chan struct{})
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if s := status.Load(); s != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(int(s))
			io.WriteString(w, `{"id":"x","message":"no"}`)
			return
		}
		<-release
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, csv)
	}))
	t.Cleanup(stub.Close)
	client, _ := upstream.New(upstream.Config{BaseURL: stub.URL, MaxRetries: -1})
	ctx := withScope(t.Context(), newRequestScope(Config{Client: client, MaxConcurrency: 8}, "t", nil))
	d := scopeFrom(ctx).loaders.files
	get := func() (downloadedFile, error) { return d.get(ctx, fileTestInvoice, upstream.FormatCSV) }

	status.Store(503)
	if _, err := get(); err == nil {
		t.Fatal("upstream 503: no error")
	}
	if n := calls.Swap(0); n != 1 {
		t.Errorf("upstream 503: %d calls, want 1", n)
	}

	// The 503 was forgotten: the next fields try again, all ten sharing one call.
	status.Store(0)
	var wg sync.WaitGroup
	results := make(chan downloadedFile, 10)
	for range 10 {
		wg.Go(func() {
			f, err := get()
			if err != nil {
				t.Errorf("after a 503: %v, want the file", err)
			}
			results <- f
		})
	}
	for calls.Load() == 0 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(results)
	for f := range results {
		if f.size != int64(len(csv)) || f.name != "invoice-"+fileTestInvoice+".csv" {
			t.Errorf("file %+v, want %d bytes named invoice-{uuid}.csv (DigitalOcean named none)", f, len(csv))
		}
	}
	if n := calls.Swap(0); n != 1 {
		t.Errorf("%d upstream calls for 10 fields after the 503, want 1", n)
	}

	// A success is the answer for the rest of the request.
	if _, err := get(); err != nil || calls.Load() != 0 {
		t.Errorf("asking again: %v and %d upstream calls, want the file and none", err, calls.Load())
	}
}

func TestNewHandlerGivesEachRequestItsFileDownloads(t *testing.T) {
	// H3a's own harness: the per-request middleware must give each request
	// its scope's file downloads, or every InvoiceFile field downloads on its own.
	h := newSandboxHarness(t, func(c *Config) { c.Links, _ = newTestFileLinks(t, fileTestKey) })
	inv := h.sandbox.Account(callerToken).Invoices[0]
	h.sandbox.Reset()
	h.mustData(`query($u: ID!) { invoice(uuid: $u) { files { pdf { filename byteSize base64 again: base64 } } } }`,
		map[string]any{"u": inv.UUID}, &struct{}{})
	pdf := 0
	for _, c := range h.upstreamCalls() {
		if strings.HasSuffix(c, "/pdf") {
			pdf++
		}
	}
	if pdf != 1 {
		t.Errorf("NewHandler: %d pdf downloads for filename, byteSize and base64 twice, want 1: "+
			"its per-request middleware (requestMiddleware.ServeHTTP in handler.go) must pass "+
			"withScope(ctx, s) on, with the scope's loaders.files", pdf)
	}
}

func TestFileDownloadsBoundWhatBase64Holds(t *testing.T) {
	const kib = 1 << 10
	const maxBytes = 64 * kib
	body := bytes.Repeat([]byte{'x'}, 4*maxBytes)
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /{uuid}/pdf where uuid is "<size in KiB>-<chunked|sized>".
		uuid := strings.Split(r.URL.Path, "/")[5]
		var size int
		var mode string
		fmt.Sscanf(strings.ReplaceAll(uuid, "-", " "), "%d %s", &size, &mode)
		n := size * kib
		w.Header().Set("Content-Type", "application/pdf")
		if mode == "sized" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		w.Write(body[:n])
	}))
	t.Cleanup(stub.Close)
	client, _ := upstream.New(upstream.Config{BaseURL: stub.URL, MaxRetries: -1})
	ctx := withScope(t.Context(), newRequestScope(Config{Client: client, MaxConcurrency: 8, MaxBase64FileBytes: maxBytes}, "t", nil))
	d := scopeFrom(ctx).loaders.files

	for _, tc := range []struct {
		uuid     string
		size     int64 // -1: unknown, reading stopped at the cap
		tooLarge bool
	}{
		{"256-chunked", -1, true},
		{"256-sized", 256 * kib, true}, // the stated length answers byteSize without reading
		{"64-sized", 64 * kib, false},
		{"64-chunked", 64 * kib, false},
		{"1-sized", 1 * kib, false},
	} {
		f, err := d.get(ctx, tc.uuid, upstream.FormatPDF)
		switch {
		case err != nil:
			t.Errorf("%s: %v", tc.uuid, err)
		case f.size != tc.size || (f.dropped != nil) != tc.tooLarge || f.kept == tc.tooLarge:
			t.Errorf("%s: size %d kept %v dropped %v; want size %d, too large %v", tc.uuid, f.size, f.kept, f.dropped, tc.size, tc.tooLarge)
		case f.kept && len(f.base64) != base64.StdEncoding.EncodedLen(int(tc.size)):
			t.Errorf("%s: base64 of %d characters, want %d", tc.uuid, len(f.base64), base64.StdEncoding.EncodedLen(int(tc.size)))
		}
	}
}
