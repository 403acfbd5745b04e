package graph

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/redistest"
	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/internal/tokencache"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// fileCacheRig is the GraphQL handler and the download routes over one
// sandbox (behind a revoker) and one SharedState, as the server wires them.
type fileCacheRig struct {
	*harness
	state     *SharedState
	revoker   *revoker
	downloads *httptest.Server
}

type fileCacheOptions struct {
	store   shared.Store // default in-process
	sandbox sandbox.Options
	// upstream wraps the sandbox (and its revoker) as DigitalOcean's side of the wire.
	upstream func(http.Handler) http.Handler
	maxFile  int64 // default DefaultCacheFileMaxBytes; < 0: no file is cached
	// maxBase64 is Config.MaxBase64FileBytes (0: its default).
	maxBase64 int64
}

func newFileCacheRig(t testing.TB, o fileCacheOptions) *fileCacheRig {
	t.Helper()
	if o.store == nil {
		o.store = shared.NewLocal(0)
	}
	o.sandbox.Seed = 1
	sb := sandbox.New(o.sandbox)
	rv := &revoker{sb: sb, revoked: map[string]bool{}}
	var up http.Handler = rv
	if o.upstream != nil {
		up = o.upstream(rv)
	}
	cache, err := tokencache.New(tokencache.Options{Secret: bytes.Repeat([]byte{7}, 32), Shared: cacheTier(o.store)})
	if err != nil {
		t.Fatal(err)
	}
	st := &SharedState{Store: o.store, Cache: cache, TokenRecheck: time.Hour, FileMaxBytes: cmp.Or(o.maxFile, DefaultCacheFileMaxBytes)}
	h := newHarness(t, up, func(c *Config) { c.Shared, c.MaxBase64FileBytes = st, o.maxBase64 })
	h.sandbox = sb
	srv := httptest.NewServer(downloadMux(NewDownloads(h.cfg.Client, h.cfg.Links, "", st, h.cfg.Logger)))
	t.Cleanup(srv.Close)
	return &fileCacheRig{harness: h, state: st, revoker: rv, downloads: srv}
}

// issued lists the token's invoices, which marks them issued, and returns their UUIDs.
func (r *fileCacheRig) issued(token string) []string {
	r.t.Helper()
	var list struct {
		Invoices struct{ Nodes []struct{ UUID string } }
	}
	resp := r.postAs("Bearer "+token, `{ invoices(first: 2) { nodes { uuid } } }`, nil)
	if len(resp.Errors) > 0 {
		r.t.Fatalf("invoice list: %v", resp.Errors)
	}
	if err := json.Unmarshal(resp.Data, &list); err != nil {
		r.t.Fatal(err)
	}
	var uuids []string
	for _, n := range list.Invoices.Nodes {
		uuids = append(uuids, n.UUID)
	}
	return uuids
}

// get downloads url (a path on the download server, or a whole link) as token ("" for none).
func (r *fileCacheRig) get(method, url, token string) (*http.Response, []byte) {
	r.t.Helper()
	if strings.HasPrefix(url, "/") {
		url = r.downloads.URL + url
	}
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := r.downloads.Client().Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp, body
}

// fileCalls are the file downloads among the sandbox's requests since the last call (which it resets).
func (r *fileCacheRig) fileCalls() []string {
	var files []string
	for _, c := range r.upstreamCalls() {
		if strings.HasSuffix(c, "/pdf") || strings.HasSuffix(c, "/csv") {
			files = append(files, c)
		}
	}
	return files
}

// headersOf is a response's headers but Date, which only says when.
func headersOf(resp *http.Response) http.Header {
	h := resp.Header.Clone()
	h.Del("Date")
	return h
}

func sameHeaders(t *testing.T, name string, got, want http.Header) {
	t.Helper()
	if !maps.EqualFunc(got, want, func(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }) {
		t.Errorf("%s: headers\n got %v\nwant %v", name, got, want)
	}
}

func TestASecondDownloadOfAnIssuedInvoiceCostsNoFileCall(t *testing.T) {
	rig := newFileCacheRig(t, fileCacheOptions{})
	uuid := rig.issued(callerToken)[0]
	rig.sandbox.Reset()
	path := "/invoices/" + uuid + "/pdf"
	first, pdf := rig.get(http.MethodGet, path, callerToken)
	if first.StatusCode != http.StatusOK || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("first download: %d %q", first.StatusCode, pdf[:min(len(pdf), 80)])
	}
	assertCalls(t, "first download", rig.upstreamCalls(), []string{"GET /v2/customers/my/invoices/" + uuid + "/pdf"})

	for _, c := range []struct{ name, url string }{
		{"second download", path},
		{"a link to the same file", rig.link(uuid, upstream.FormatPDF)},
	} {
		resp, body := rig.get(http.MethodGet, c.url, callerToken)
		assertCalls(t, c.name, rig.upstreamCalls(), nil)
		if !bytes.Equal(body, pdf) {
			t.Errorf("%s: %d bytes, not the %d the first download sent", c.name, len(body), len(pdf))
		}
		sameHeaders(t, c.name, headersOf(resp), headersOf(first))
	}
	if resp, body := rig.get(http.MethodHead, path, callerToken); len(body) != 0 || resp.Header.Get("Content-Length") != first.Header.Get("Content-Length") {
		t.Errorf("HEAD from the cache: %d body bytes, Content-Length %q", len(body), resp.Header.Get("Content-Length"))
	}
	assertCalls(t, "HEAD", rig.upstreamCalls(), nil)
}

func (r *fileCacheRig) link(uuid string, format upstream.FileFormat) string {
	r.t.Helper()
	link, err := r.cfg.Links.URL(r.downloads.URL, uuid, format, callerToken)
	if err != nil {
		r.t.Fatal(err)
	}
	return link
}

const fileFieldsQuery = `query($u: ID!) { invoice(uuid: $u) { files {
  pdf { filename byteSize base64 } csv { filename byteSize base64 } } } }`

func TestFileFieldsAndDownloadsShareTheCacheAndCountItsHits(t *testing.T) {
	rig := newFileCacheRig(t, fileCacheOptions{})
	uuid := rig.issued(callerToken)[0]
	vars := map[string]any{"u": uuid}
	rig.sandbox.Reset()
	cold := rig.post(fileFieldsQuery, vars)
	if len(cold.Errors) > 0 {
		t.Fatal(cold.Errors)
	}
	if got := rig.fileCalls(); len(got) != 2 {
		t.Fatalf("cold file fields: file calls %q, want the CSV and the PDF", got)
	}
	warm := rig.post(fileFieldsQuery, vars)
	if got := rig.fileCalls(); len(got) != 0 {
		t.Fatalf("warm file fields: file calls %q, want none", got)
	}
	if calls, hits := cost(t, warm); calls != 0 || hits != 3 {
		// The summary is not asked for: the two files and the invoice's existence (its summary entry).
		t.Errorf("warm file fields cost {upstreamCalls: %d, cacheHits: %d}, want {0, 3}", calls, hits)
	}
	if !bytes.Equal(cold.Data, warm.Data) {
		t.Fatalf("the cached files differ:\ncold %s\nwarm %s", cold.Data, warm.Data)
	}

	// What the fields cached, the download route serves, and the other way round.
	var files struct {
		Invoice struct {
			Files struct{ PDF struct{ Base64 string } }
		}
	}
	decode(t, warm, &files)
	resp, pdf := rig.get(http.MethodGet, "/invoices/"+uuid+"/pdf", callerToken)
	if got := rig.fileCalls(); len(got) != 0 || resp.StatusCode != http.StatusOK {
		t.Fatalf("download after the fields: %d, file calls %q; want 200 from the cache", resp.StatusCode, got)
	}
	if want, _ := base64.StdEncoding.DecodeString(files.Invoice.Files.PDF.Base64); !bytes.Equal(pdf, want) {
		t.Fatal("the download route served other bytes than the base64 field")
	}
	other := rig.issued(callerToken)[1]
	rig.get(http.MethodGet, "/invoices/"+other+"/csv", callerToken)
	rig.sandbox.Reset()
	if resp := rig.post(`query($u: ID!) { invoice(uuid: $u) { files { csv { byteSize } } } }`, map[string]any{"u": other}); len(resp.Errors) > 0 {
		t.Fatal(resp.Errors)
	}
	if got := rig.fileCalls(); len(got) != 0 {
		t.Fatalf("byteSize of a CSV the download route cached: file calls %q, want none", got)
	}
}

func TestFileFieldsFromTheCacheAnswerAsFromDigitalOcean(t *testing.T) {
	// An 8 KiB PDF: in the cache's bound (the download route keeps it), past base64's 4 KiB.
	answers := map[string]gqlResponse{}
	for _, c := range []struct {
		name    string
		maxFile int64
	}{{"from DigitalOcean", -1}, {"from the cache", 0}} {
		rig := newFileCacheRig(t, fileCacheOptions{sandbox: sandbox.Options{PDFSize: 8 << 10}, maxBase64: 4 << 10, maxFile: c.maxFile})
		uuid := rig.issued(callerToken)[0]
		rig.get(http.MethodGet, "/invoices/"+uuid+"/pdf", callerToken)
		rig.sandbox.Reset()
		resp := rig.post(`query($u: ID!) { invoice(uuid: $u) { files { pdf { filename byteSize base64 } } } }`, map[string]any{"u": uuid})
		if got, cached := rig.fileCalls(), c.maxFile == 0; cached != (len(got) == 0) {
			t.Fatalf("%s: file calls %q", c.name, got)
		}
		resp.Extensions = nil // the cost differs, by design
		answers[c.name] = resp
	}
	want, got := answers["from DigitalOcean"], answers["from the cache"]
	if len(want.Errors) != 1 || want.Errors[0].Extensions["code"] != codeBadUserInput {
		t.Fatalf("from DigitalOcean: errors %+v, want base64's BAD_USER_INPUT", want.Errors)
	}
	if !bytes.Equal(got.Data, want.Data) || len(got.Errors) != 1 || got.Errors[0].Message != want.Errors[0].Message {
		t.Fatalf("from the cache:\n%s %+v\nfrom DigitalOcean:\n%s %+v", got.Data, got.Errors, want.Data, want.Errors)
	}
}

func TestCachedFilesAreTheTokensOwn(t *testing.T) {
	// One sandbox account for every token, so that both tokens see the same invoices.
	rig := newFileCacheRig(t, fileCacheOptions{sandbox: sandbox.Options{AccountToken: "dop_v1_the_account"}})
	alice, bob := "dop_v1_alice", "dop_v1_bob"
	uuid := rig.issued(alice)[0]
	path := "/invoices/" + uuid + "/pdf"
	rig.get(http.MethodGet, path, alice)
	rig.get(http.MethodGet, path, alice)
	rig.sandbox.Reset()

	if resp, _ := rig.get(http.MethodGet, path, bob); resp.StatusCode != http.StatusOK {
		t.Fatalf("bob's download: %d", resp.StatusCode)
	}
	if got := rig.fileCalls(); len(got) != 1 {
		t.Fatalf("bob's download of a file alice has cached: file calls %q, want his own from DigitalOcean (bob's list never showed it to him)", got)
	}
	rig.issued(bob)
	rig.get(http.MethodGet, path, bob)
	if got := rig.fileCalls(); len(got) != 1 {
		t.Fatalf("bob's first download of an invoice his list showed: file calls %q, want one (a miss)", got)
	}
	rig.get(http.MethodGet, path, bob)
	if got := rig.fileCalls(); len(got) != 0 {
		t.Fatalf("bob's second download: file calls %q, want none", got)
	}
}

func TestThePreviewsFilesAreNeverCached(t *testing.T) {
	rig := newFileCacheRig(t, fileCacheOptions{})
	rig.issued(callerToken)
	var list struct {
		Invoices struct{ Preview struct{ UUID string } }
	}
	rig.mustData(`{ invoices(first: 1) { preview { uuid } } }`, nil, &list)
	rig.sandbox.Reset()
	for range 2 {
		if resp := rig.post(`{ invoice(uuid: "preview") { files { pdf { byteSize } csv { base64 } } } }`, nil); len(resp.Errors) > 0 {
			t.Fatal(resp.Errors)
		}
		if got := rig.fileCalls(); len(got) != 2 {
			t.Fatalf("the preview's file fields: file calls %q, want both files every time", got)
		}
		for _, uuid := range []string{"preview", list.Invoices.Preview.UUID} {
			rig.get(http.MethodGet, "/invoices/"+uuid+"/pdf", callerToken)
			if got := rig.fileCalls(); len(got) != 1 {
				t.Fatalf("download of the preview as %q: file calls %q, want one every time", uuid, got)
			}
		}
	}
}

// lengthless passes a response on without its Content-Length, as a chunked stream.
type lengthless struct{ http.ResponseWriter }

func (l lengthless) WriteHeader(code int) {
	l.Header().Del("Content-Length")
	l.ResponseWriter.WriteHeader(code)
}

func TestAFileAboveTheBoundStreamsEveryTimeAndIsNotCached(t *testing.T) {
	for _, c := range []struct {
		name     string
		upstream func(http.Handler) http.Handler
	}{
		{"length stated", nil},
		{"length not stated", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(lengthless{w}, r) })
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rig := newFileCacheRig(t, fileCacheOptions{sandbox: sandbox.Options{PDFSize: 64 << 10}, maxFile: 32 << 10, upstream: c.upstream})
			uuid := rig.issued(callerToken)[0]
			rig.sandbox.Reset()
			var first []byte
			for i := range 2 {
				resp, pdf := rig.get(http.MethodGet, "/invoices/"+uuid+"/pdf", callerToken)
				if resp.StatusCode != http.StatusOK || len(pdf) < 64<<10 {
					t.Fatalf("download %d: %d, %d bytes", i+1, resp.StatusCode, len(pdf))
				}
				if first == nil {
					first = pdf
				} else if !bytes.Equal(pdf, first) {
					t.Fatal("two downloads of one PDF differ")
				}
				if got := rig.fileCalls(); len(got) != 1 {
					t.Fatalf("download %d of a 64 KiB PDF with a 32 KiB bound: file calls %q, want one", i+1, got)
				}
				if resp := rig.post(`query($u: ID!) { invoice(uuid: $u) { files { pdf { byteSize } } } }`, map[string]any{"u": uuid}); len(resp.Errors) > 0 {
					t.Fatal(resp.Errors)
				}
				if got := rig.fileCalls(); len(got) != 1 {
					t.Fatalf("byteSize %d of the large PDF: file calls %q, want one", i+1, got)
				}
			}
			// The bound is per file: the invoice's small CSV is cached.
			rig.get(http.MethodGet, "/invoices/"+uuid+"/csv", callerToken)
			rig.get(http.MethodGet, "/invoices/"+uuid+"/csv", callerToken)
			if got := rig.fileCalls(); len(got) != 1 {
				t.Fatalf("two downloads of the small CSV: file calls %q, want one", got)
			}
		})
	}
}

func TestCachedFilesInRedisShowNoPlaintextAndServeAnotherReplica(t *testing.T) {
	srv := redistest.Start(t)
	open := func() shared.Store {
		s, err := shared.Open(context.Background(), shared.Options{RedisURL: srv.URL(), Wait: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	replica1 := newFileCacheRig(t, fileCacheOptions{store: open()})
	uuid := replica1.issued(callerToken)[0]
	_, pdf := replica1.get(http.MethodGet, "/invoices/"+uuid+"/pdf", callerToken)
	_, csv := replica1.get(http.MethodGet, "/invoices/"+uuid+"/csv", callerToken)

	dump, err := srv.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Pieces of each file that would show it: its start, and a stretch from its middle.
	pieces := [][]byte{[]byte("%PDF"), pdf[len(pdf)/2 : len(pdf)/2+24], csv[:24], csv[len(csv)/2 : len(csv)/2+24], []byte(callerToken), []byte(uuid)}
	files := 0
	for k, v := range dump {
		if len(v) > min(len(pdf), len(csv)) {
			files++
		}
		for _, p := range pieces {
			if strings.Contains(k, string(p)) || bytes.Contains(v, p) {
				t.Errorf("Redis entry %q shows %q in plaintext", k, p)
			}
		}
	}
	if files < 2 {
		t.Fatalf("Redis holds %d values the size of a file, want the PDF and the CSV (keys %q)", files, keysOf(dump))
	}

	replica2 := newFileCacheRig(t, fileCacheOptions{store: open()})
	resp, body := replica2.get(http.MethodGet, "/invoices/"+uuid+"/pdf", callerToken)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, pdf) {
		t.Fatalf("replica 2: %d, %d bytes; want the PDF", resp.StatusCode, len(body))
	}
	if got := replica2.fileCalls(); len(got) != 0 {
		t.Fatalf("replica 2's download of a file replica 1 cached: file calls %q, want none", got)
	}
}

func TestARevokedTokensFilesAreNotServedFromTheCache(t *testing.T) {
	rig := newFileCacheRig(t, fileCacheOptions{})
	uuid := rig.issued(callerToken)[0]
	path := "/invoices/" + uuid + "/pdf"
	_, pdf := rig.get(http.MethodGet, path, callerToken)
	rig.post(fileFieldsQuery, map[string]any{"u": uuid})
	rig.sandbox.Reset()
	tokenKey := shared.TokenKey(bytes.Repeat([]byte{7}, 32), callerToken)
	marks := shared.Rechecks{Store: rig.state.Store}

	// Past TOKEN_RECHECK (the mark gone): one cheap proof, then the file from the cache.
	marks.Revoked(context.Background(), tokenKey)
	resp, body := rig.get(http.MethodGet, path, callerToken)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, pdf) {
		t.Fatalf("after TOKEN_RECHECK: %d, %d bytes; want the PDF", resp.StatusCode, len(body))
	}
	assertCalls(t, "after TOKEN_RECHECK", rig.upstreamCalls(), []string{"GET /v2/customers/my/balance"})

	// DigitalOcean now refuses the token: neither route serves the cached file.
	rig.revoker.revoke(callerToken)
	marks.Revoked(context.Background(), tokenKey)
	resp, body = rig.get(http.MethodGet, path, callerToken)
	if resp.StatusCode != http.StatusUnauthorized || bytes.Contains(body, []byte("%PDF")) {
		t.Fatalf("a revoked token's download: %d %q; want 401 and no file", resp.StatusCode, body[:min(len(body), 80)])
	}
	if code := errorBody(t, body).Code; code != codeUnauthenticated {
		t.Errorf("a revoked token's download: code %s, want UNAUTHENTICATED", code)
	}
	if got := rig.fileCalls(); len(got) != 0 {
		t.Errorf("file calls %q: the refusal came from the proof, not a download", got)
	}
	gql := rig.post(fileFieldsQuery, map[string]any{"u": uuid})
	if strings.Contains(string(gql.Data), "base64\":\"") || len(gql.Errors) == 0 {
		t.Fatalf("a revoked token's file fields were answered: %s", gql.Data)
	}
	for _, e := range gql.Errors {
		if e.Extensions["code"] != codeUnauthenticated {
			t.Errorf("error %q coded %v, want UNAUTHENTICATED", e.Message, e.Extensions["code"])
		}
	}
}

// BenchmarkIssuedInvoicePDFDownload is one download of an issued invoice's
// PDF (the sandbox's, about 2 KB) through /invoices/{uuid}/pdf: streamed from
// DigitalOcean with file caching off, and answered from the cache (sealed in
// memory, opened per download) once warm. Server, sandbox and client share
// the process, so ns/op and B/op count all three.
func BenchmarkIssuedInvoicePDFDownload(b *testing.B) {
	for _, c := range []struct {
		name    string
		maxFile int64
	}{{"upstream", -1}, {"cache", 0}} {
		b.Run(c.name, func(b *testing.B) {
			rig := newFileCacheRig(b, fileCacheOptions{maxFile: c.maxFile})
			path := "/invoices/" + rig.issued(callerToken)[0] + "/pdf"
			rig.get(http.MethodGet, path, callerToken)
			rig.sandbox.Reset()
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := rig.get(http.MethodGet, path, callerToken); resp.StatusCode != http.StatusOK {
					b.Fatalf("download: %d", resp.StatusCode)
				}
			}
			b.ReportMetric(float64(rig.sandbox.Total())/float64(b.N), "upstreamcalls/op")
		})
	}
}
