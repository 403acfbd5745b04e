package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/logbuffer"

	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// downloadRig is a download server in front of an upstream, with the log it
// wrote (to check that no secret reaches it).
type downloadRig struct {
	server *httptest.Server
	links  *FileLinks
	now    *time.Time
	log    *logbuffer.Buffer
}

// downloadRoutes serves NewDownloads' handlers under the routes internal/server
// lists, and Refuse for whatever no route takes (as the server's mux refuses it).
func downloadRoutes(client *upstream.Client, links *FileLinks, defaultToken string, logger *slog.Logger) http.Handler {
	return downloadMux(NewDownloads(client, links, defaultToken, nil, logger))
}

// downloadMux serves d's handlers under the server's routes.
func downloadMux(d *Downloads) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /invoices/{uuid}/{format}", d.InvoiceFile)
	mux.HandleFunc("GET /files/{link}", d.Link)
	mux.HandleFunc("GET /files/{link}/{name}", d.Link)
	mux.HandleFunc("/", d.Refuse)
	return mux
}

// newDownloadRig serves NewDownloadHandler against upstreamURL, without retries
// so that every upstream status reaches the handler once.
func newDownloadRig(t *testing.T, upstreamURL, defaultToken string) *downloadRig {
	t.Helper()
	client, err := upstream.New(upstream.Config{BaseURL: upstreamURL, MaxRetries: -1})
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	links, now := newTestFileLinks(t, fileTestKey)
	log := &logbuffer.Buffer{}
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(downloadRoutes(client, links, defaultToken, logger))
	t.Cleanup(srv.Close)
	return &downloadRig{server: srv, links: links, now: now, log: log}
}

// get sends a GET (or another method) with the given headers and reads the whole answer.
func (rig *downloadRig) get(t *testing.T, method, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := rig.server.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, body
}

// link signs a link to this rig's server.
func (rig *downloadRig) link(t *testing.T, uuid string, format upstream.FileFormat, token string) string {
	t.Helper()
	link, err := rig.links.URL(rig.server.URL, uuid, format, token)
	if err != nil {
		t.Fatalf("links.URL: %v", err)
	}
	return link
}

// errorBody decodes a download's JSON error.
func errorBody(t *testing.T, body []byte) downloadError {
	t.Helper()
	var e struct{ Error downloadError }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return e.Error
}

// sandboxUpstream serves the sandbox and returns it with its URL.
func sandboxUpstream(t *testing.T, opts sandbox.Options) (*sandbox.Sandbox, string) {
	t.Helper()
	sb := sandbox.New(opts)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return sb, srv.URL
}

func TestDownloadsStreamInvoiceFiles(t *testing.T) {
	sb, sbURL := sandboxUpstream(t, sandbox.Options{})
	rig := newDownloadRig(t, sbURL, sandbox.DemoToken)
	callerToken := "caller-token"
	invoice := sb.Account(callerToken).Invoices[0]
	demoInvoice := sb.Account(sandbox.DemoToken).Invoices[0]

	for _, tc := range []struct {
		name        string
		url         string
		header      map[string]string
		contentType string
		filename    string
		bodyPrefix  string
	}{
		{
			name:        "CSV with the caller's bearer token",
			url:         rig.server.URL + "/invoices/" + invoice.UUID + "/csv",
			header:      map[string]string{"Authorization": "Bearer " + callerToken},
			contentType: "text/csv",
			filename:    "DigitalOcean Invoice " + invoice.Start.Format("2006 Jan"),
			bodyPrefix:  "product,group_description,description,hours,start,end,USD,project_name,category\n",
		},
		{
			name:        "PDF with the server's default token",
			url:         rig.server.URL + "/invoices/" + demoInvoice.UUID + "/pdf",
			contentType: "application/pdf",
			filename:    "DigitalOcean Invoice " + demoInvoice.Start.Format("2006 Jan"),
			bodyPrefix:  "%PDF-",
		},
		{
			name:        "PDF by a signed link with no headers at all",
			url:         rig.link(t, invoice.UUID, upstream.FormatPDF, callerToken),
			contentType: "application/pdf",
			filename:    "DigitalOcean Invoice " + invoice.Start.Format("2006 Jan"),
			bodyPrefix:  "%PDF-",
		},
		{
			name:        "CSV by a signed link sealing the default token",
			url:         rig.link(t, demoInvoice.UUID, upstream.FormatCSV, ""),
			contentType: "text/csv",
			filename:    "DigitalOcean Invoice " + demoInvoice.Start.Format("2006 Jan"),
			bodyPrefix:  "product,",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rig.get(t, http.MethodGet, tc.url, tc.header)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", resp.StatusCode, body)
			}
			if !bytes.HasPrefix(body, []byte(tc.bodyPrefix)) {
				t.Errorf("body starts %q, want %q", body[:min(len(body), 40)], tc.bodyPrefix)
			}
			want := map[string]string{
				"Content-Type":           tc.contentType,
				"Content-Length":         strconv.Itoa(len(body)),
				"Cache-Control":          "private, no-store",
				"X-Content-Type-Options": "nosniff",
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="`+tc.filename) {
				t.Errorf("Content-Disposition = %q, want an attachment named %q...", cd, tc.filename)
			}
		})
	}
	t.Run("HEAD answers the headers without a body", func(t *testing.T) {
		resp, body := rig.get(t, http.MethodHead, rig.link(t, invoice.UUID, upstream.FormatPDF, callerToken), nil)
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Length") == "" {
			t.Errorf("HEAD: status %d, %d body bytes, Content-Length %q; want 200, none, the file's length",
				resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
		}
	})
	if log := rig.log.String(); strings.Contains(log, callerToken) || strings.Contains(log, sandbox.DemoToken) {
		t.Errorf("the log shows a token:\n%s", log)
	}
}

func TestRefusedLinksCostNoUpstreamCall(t *testing.T) {
	sb, sbURL := sandboxUpstream(t, sandbox.Options{})
	rig := newDownloadRig(t, sbURL, sandbox.DemoToken)
	uuid := sb.Account(sandbox.DemoToken).Invoices[0].UUID
	link := rig.link(t, uuid, upstream.FormatPDF, fileTestToken)
	opaque := linkOpaque(t, link)
	foreign, _ := newTestFileLinks(t, bytes.Repeat([]byte("x"), 32))
	foreignLink, _ := foreign.URL(rig.server.URL, uuid, upstream.FormatPDF, fileTestToken)
	flip := func(i int) string {
		c := byte('A')
		if opaque[i] == c {
			c = 'B'
		}
		return strings.Replace(link, opaque, opaque[:i]+string(c)+opaque[i+1:], 1)
	}
	expired := rig.link(t, uuid, upstream.FormatPDF, fileTestToken)

	for _, tc := range []struct {
		name    string
		url     func() string
		message string
	}{
		{"a character changed at the start", func() string { return flip(0) }, "not valid"},
		{"a character changed in the middle", func() string { return flip(len(opaque) / 2) }, "not valid"},
		{"a character changed at the end", func() string { return flip(len(opaque) - 1) }, "not valid"},
		{"truncated", func() string { return strings.Replace(link, opaque, opaque[:len(opaque)-6], 1) }, "not valid"},
		{"sealed by another server", func() string { return foreignLink }, "not valid"},
		{"expired", func() string { *rig.now = rig.now.Add(DefaultFileLinkTTL); return expired }, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb.Reset()
			resp, body := rig.get(t, http.MethodGet, tc.url(), nil)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403; body %s", resp.StatusCode, body)
			}
			e := errorBody(t, body)
			if e.Code != codeForbidden || !strings.Contains(e.Message, tc.message) {
				t.Errorf("error = %+v, want code FORBIDDEN and a message saying %q", e, tc.message)
			}
			if n := sb.Total(); n != 0 {
				t.Errorf("a refused link made %d upstream calls (%v), want 0", n, sb.Requests())
			}
		})
	}
	if log := rig.log.String(); strings.Contains(log, opaque[:24]) || strings.Contains(log, fileTestToken) {
		t.Errorf("the log shows a link or a token:\n%s", log)
	}
}

func TestDownloadErrorsMapLikeGraphQL(t *testing.T) {
	var calls, status atomic.Int32
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch status.Load() {
		case 0:
			<-r.Context().Done() // hang until the caller gives up
			return
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "7")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, `{"id":"some_id","message":"DigitalOcean says no","request_id":"req-1"}`)
	}))
	t.Cleanup(stub.Close)
	rig := newDownloadRig(t, stub.URL, "")
	auth := map[string]string{"Authorization": "Bearer " + fileTestToken}
	url := rig.server.URL + "/invoices/" + fileTestInvoice + "/pdf"

	for _, tc := range []struct {
		name       string
		upstream   int
		want       int
		code       string
		retryAfter string
	}{
		{"not found", 404, 404, CodeNotFound, ""},
		{"token refused", 401, 401, codeUnauthenticated, ""},
		{"forbidden", 403, 403, codeForbidden, ""},
		{"rate limited", 429, 429, codeRateLimited, "7"},
		{"server error", 500, 502, codeUpstreamUnavailable, ""},
		{"unavailable", 503, 502, codeUpstreamUnavailable, ""},
		{"gateway timeout", 504, 504, codeUpstreamUnavailable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status.Store(int32(tc.upstream))
			calls.Store(0)
			resp, body := rig.get(t, http.MethodGet, url, auth)
			if resp.StatusCode != tc.want {
				t.Fatalf("upstream %d: status %d, want %d; body %s", tc.upstream, resp.StatusCode, tc.want, body)
			}
			e := errorBody(t, body)
			if e.Code != tc.code || e.Message == "" {
				t.Errorf("upstream %d: error %+v, want code %s with a message", tc.upstream, e, tc.code)
			}
			if e.Upstream["status"] != float64(tc.upstream) || e.Upstream["id"] != "some_id" || e.Upstream["requestId"] != "req-1" {
				t.Errorf("upstream %d: error.upstream = %v, want status, id and requestId", tc.upstream, e.Upstream)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("upstream %d: Retry-After = %q, want %q", tc.upstream, got, tc.retryAfter)
			}
			if tc.retryAfter != "" && (e.RetryAfter == nil || strconv.Itoa(*e.RetryAfter) != tc.retryAfter) {
				t.Errorf("upstream %d: error.retryAfter = %v, want %s", tc.upstream, e.RetryAfter, tc.retryAfter)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("upstream %d: %d upstream calls, want 1", tc.upstream, n)
			}
		})
	}

	t.Run("the request's deadline is the upstream's", func(t *testing.T) {
		status.Store(0)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/invoices/"+fileTestInvoice+"/pdf", nil)
		req.Header.Set("Authorization", "Bearer "+fileTestToken)
		rec := httptest.NewRecorder()
		client, _ := upstream.New(upstream.Config{BaseURL: stub.URL, MaxRetries: -1})
		downloadRoutes(client, rig.links, "", slog.New(slog.DiscardHandler)).ServeHTTP(rec, req)
		if rec.Code != http.StatusGatewayTimeout || errorBody(t, rec.Body.Bytes()).Code != codeUpstreamUnavailable {
			t.Errorf("upstream hung past the deadline: status %d body %s, want 504 UPSTREAM_UNAVAILABLE", rec.Code, rec.Body)
		}
	})

	t.Run("a refused connection", func(t *testing.T) {
		closed := httptest.NewServer(http.NotFoundHandler())
		closed.Close()
		rig := newDownloadRig(t, closed.URL, fileTestToken)
		resp, body := rig.get(t, http.MethodGet, rig.server.URL+"/invoices/"+fileTestInvoice+"/csv", nil)
		if resp.StatusCode != http.StatusBadGateway || errorBody(t, body).Code != codeUpstreamUnavailable {
			t.Errorf("upstream refusing connections: status %d body %s, want 502 UPSTREAM_UNAVAILABLE", resp.StatusCode, body)
		}
	})

	for _, tc := range []struct {
		name, method, path, authorization string
		want                              int
		code                              string
	}{
		{"no token anywhere", "GET", "/invoices/" + fileTestInvoice + "/pdf", "", 401, codeUnauthenticated},
		{"not a bearer token", "GET", "/invoices/" + fileTestInvoice + "/pdf", "Basic dXNlcjpwYXNz", 401, codeUnauthenticated},
		{"unknown format", "GET", "/invoices/" + fileTestInvoice + "/xlsx", "Bearer t", 404, CodeNotFound},
		{"unknown route", "GET", "/files/", "", 404, CodeNotFound},
		{"not a GET", "POST", "/invoices/" + fileTestInvoice + "/pdf", "Bearer t", 405, codeMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			header := map[string]string{}
			if tc.authorization != "" {
				header["Authorization"] = tc.authorization
			}
			resp, body := rig.get(t, tc.method, rig.server.URL+tc.path, header)
			if resp.StatusCode != tc.want || errorBody(t, body).Code != tc.code {
				t.Errorf("status %d body %s, want %d with code %s", resp.StatusCode, body, tc.want, tc.code)
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("%d upstream calls, want 0", n)
			}
		})
	}
}

func TestDownloadStreamsWithoutBuffering(t *testing.T) {
	const rest = 8 << 20
	firstChunk := []byte("%PDF-1.7\n% first bytes, sent before the rest exists\n")
	release := make(chan struct{})
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Write(firstChunk)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		// The rest comes through a pipe, never existing whole at the upstream either.
		pr, pw := io.Pipe()
		go func() {
			chunk := bytes.Repeat([]byte{'x'}, 64<<10)
			for sent := 0; sent < rest; sent += len(chunk) {
				if _, err := pw.Write(chunk); err != nil {
					return
				}
			}
			pw.Close()
		}()
		io.Copy(w, pr)
		pr.Close()
	}))
	t.Cleanup(stub.Close)
	rig := newDownloadRig(t, stub.URL, "")

	resp, err := http.Get(rig.link(t, fileTestInvoice, upstream.FormatPDF, fileTestToken))
	if err != nil {
		close(release)
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	got := make([]byte, len(firstChunk))
	read := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, got); read <- err }()
	select {
	case err := <-read:
		close(release)
		if err != nil || !bytes.Equal(got, firstChunk) {
			t.Fatalf("first bytes %q (%v), want %q", got, err, firstChunk)
		}
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("the first bytes did not arrive before the upstream finished: the download is buffered")
	}
	if resp.Header.Get("Content-Length") != "" {
		t.Errorf("Content-Length %q for a body of unknown length, want none", resp.Header.Get("Content-Length"))
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != rest {
		t.Errorf("rest of the body: %d bytes (%v), want %d", n, err, rest)
	}
}

func TestDownloadCutOffUpstreamIsNotAWholeFile(t *testing.T) {
	for _, tc := range []struct {
		name          string
		contentLength string
	}{
		{"with Content-Length", "100000"},
		{"chunked", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/pdf")
				if tc.contentLength != "" {
					w.Header().Set("Content-Length", tc.contentLength)
				}
				w.Write(bytes.Repeat([]byte{'x'}, 5000))
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // the connection drops mid-file
			}))
			t.Cleanup(stub.Close)
			rig := newDownloadRig(t, stub.URL, fileTestToken)
			resp, err := http.Get(rig.server.URL + "/invoices/" + fileTestInvoice + "/pdf")
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			if n, err := io.Copy(io.Discard, resp.Body); err == nil {
				t.Errorf("read %d bytes and a clean end: the client cannot tell the file is incomplete", n)
			}
		})
	}
}

func TestAttachmentDisposition(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"DigitalOcean Invoice 2020 Jul (6173678-418071234).pdf", `attachment; filename="DigitalOcean Invoice 2020 Jul (6173678-418071234).pdf"`},
		{"invoice-preview.csv", `attachment; filename="invoice-preview.csv"`},
		{"Facture été.pdf", `attachment; filename="Facture _t_.pdf"; filename*=UTF-8''Facture%20%C3%A9t%C3%A9.pdf`},
		{`say "hi"\.csv`, `attachment; filename="say _hi__.csv"; filename*=UTF-8''say%20%22hi%22%5C.csv`},
		{"line\r\nbreak.csv", `attachment; filename="linebreak.csv"`},
		{"100%.csv", `attachment; filename="100_.csv"; filename*=UTF-8''100%25.csv`},
	} {
		if got := attachment(tc.name); got != tc.want {
			t.Errorf("attachment(%q)\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// BenchmarkDownloadStream50MB streams a 50 MB sandbox PDF through a signed
// link. B/op (server, sandbox and client together, all in this process) shows
// that no one holds the file: it stays far below the file's size.
func BenchmarkDownloadStream50MB(b *testing.B) {
	const size = 50 << 20
	sb := sandbox.New(sandbox.Options{PDFSize: size})
	up := httptest.NewServer(sb)
	defer up.Close()
	client, _ := upstream.New(upstream.Config{BaseURL: up.URL, MaxRetries: -1})
	links, _ := NewFileLinks(fileTestKey, 0)
	srv := httptest.NewServer(downloadRoutes(client, links, "", slog.New(slog.DiscardHandler)))
	defer srv.Close()
	link, _ := links.URL(srv.URL, sb.Account(fileTestToken).Invoices[0].UUID, upstream.FormatPDF, fileTestToken)
	b.ReportAllocs()
	b.SetBytes(size)
	for b.Loop() {
		resp, err := srv.Client().Get(link)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || n < size {
			b.Fatalf("status %d, %d bytes (%v), want 200 and at least %d", resp.StatusCode, n, err, size)
		}
	}
}
