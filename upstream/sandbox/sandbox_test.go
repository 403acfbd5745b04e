package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/upstream"
)

// fixedNow is the clock of every test: the preview is November 2026.
var fixedNow = time.Date(2026, time.November, 25, 15, 4, 5, 0, time.UTC)

const testToken = "dop_v1_test"

func newTestServer(t *testing.T, opts Options) (*Sandbox, *httptest.Server) {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// get sends a GET with token ("" for none) and returns the response with its body read.
func get(t *testing.T, srv *httptest.Server, token, path string) (*http.Response, []byte) {
	t.Helper()
	return do(t, srv, http.MethodGet, token, path, nil)
}

func do(t *testing.T, srv *httptest.Server, method, token, path string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

func decode[T any](t *testing.T, path string, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: body does not decode as %T: %v\n%s", path, v, err, body)
	}
	return v
}

// TestPagingLinks checks meta.total and links.pages against the reference:
// absolute URLs, only the links that make sense, none when one page holds all.
func TestPagingLinks(t *testing.T) {
	s, srv := newTestServer(t, Options{})
	a := s.Account(testToken)
	vol := a.Volumes[0]
	inRegion := a.FilterVolumes("", vol.Region.Slug)
	u := srv.URL
	cases := []struct {
		name  string
		path  string
		total int
		count int
		pages *upstream.Pages // nil: no links key
	}{
		{"invoices default page", "/v2/customers/my/invoices", 24, 20, &upstream.Pages{
			Next: u + "/v2/customers/my/invoices?page=2&per_page=20", Last: u + "/v2/customers/my/invoices?page=2&per_page=20"}},
		{"invoices first of many", "/v2/customers/my/invoices?per_page=2", 24, 2, &upstream.Pages{
			Next: u + "/v2/customers/my/invoices?page=2&per_page=2", Last: u + "/v2/customers/my/invoices?page=12&per_page=2"}},
		{"invoices middle page has all four", "/v2/customers/my/invoices?page=5&per_page=2", 24, 2, &upstream.Pages{
			First: u + "/v2/customers/my/invoices?page=1&per_page=2", Prev: u + "/v2/customers/my/invoices?page=4&per_page=2",
			Next: u + "/v2/customers/my/invoices?page=6&per_page=2", Last: u + "/v2/customers/my/invoices?page=12&per_page=2"}},
		{"invoices last page", "/v2/customers/my/invoices?page=12&per_page=2", 24, 2, &upstream.Pages{
			First: u + "/v2/customers/my/invoices?page=1&per_page=2", Prev: u + "/v2/customers/my/invoices?page=11&per_page=2"}},
		{"invoices past the end points back at the last page", "/v2/customers/my/invoices?page=40&per_page=2", 24, 0, &upstream.Pages{
			First: u + "/v2/customers/my/invoices?page=1&per_page=2", Prev: u + "/v2/customers/my/invoices?page=12&per_page=2"}},
		{"a page past any int64 product is empty, not a crash", "/v2/customers/my/invoices?page=9223372036854775807&per_page=200", 24, 0, &upstream.Pages{
			First: u + "/v2/customers/my/invoices?page=1&per_page=200", Prev: u + "/v2/customers/my/invoices?page=1&per_page=200"}},
		{"invoices all on one page: no links", "/v2/customers/my/invoices?per_page=24", 24, 24, nil},
		{"invoices max page size", "/v2/customers/my/invoices?per_page=200", 24, 24, nil},
		{"items of the preview", "/v2/customers/my/invoices/preview?per_page=5", len(a.Preview.Items), 5, &upstream.Pages{
			Next: u + "/v2/customers/my/invoices/preview?page=2&per_page=5",
			Last: u + "/v2/customers/my/invoices/preview?page=" + strconv.Itoa((len(a.Preview.Items)+4)/5) + "&per_page=5"}},
		{"billing history pages too", "/v2/customers/my/billing_history?page=2&per_page=2", len(a.BillingHistory), 2, &upstream.Pages{
			First: u + "/v2/customers/my/billing_history?page=1&per_page=2", Prev: u + "/v2/customers/my/billing_history?page=1&per_page=2",
			Next: u + "/v2/customers/my/billing_history?page=3&per_page=2",
			Last: u + "/v2/customers/my/billing_history?page=" + strconv.Itoa((len(a.BillingHistory)+1)/2) + "&per_page=2"}},
		{"volume links keep the filters", "/v2/volumes?region=" + vol.Region.Slug + "&per_page=1&page=2", len(inRegion), 1, &upstream.Pages{
			First: u + "/v2/volumes?page=1&per_page=1&region=" + vol.Region.Slug, Prev: u + "/v2/volumes?page=1&per_page=1&region=" + vol.Region.Slug,
			Next: u + "/v2/volumes?page=3&per_page=1&region=" + vol.Region.Slug,
			Last: u + "/v2/volumes?page=" + strconv.Itoa(len(inRegion)) + "&per_page=1&region=" + vol.Region.Slug}},
		{"volume by name and region is one", "/v2/volumes?name=" + vol.Name + "&region=" + vol.Region.Slug, 1, 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, srv, testToken, c.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200: %s", c.path, resp.StatusCode, body)
			}
			type listPage struct {
				Links *upstream.Links `json:"links"`
				Meta  upstream.Meta   `json:"meta"`
			}
			page := decode[listPage](t, c.path, body)
			if page.Meta.Total == nil || *page.Meta.Total != c.total {
				t.Errorf("GET %s: meta.total = %v, want %d", c.path, page.Meta.Total, c.total)
			}
			if n := countListed(t, c.path, body); n != c.count {
				t.Errorf("GET %s: %d items listed, want %d", c.path, n, c.count)
			}
			var raw map[string]json.RawMessage
			json.Unmarshal(body, &raw)
			switch _, has := raw["links"]; {
			case c.pages == nil && has:
				t.Errorf("GET %s: links = %s, want no links key", c.path, raw["links"])
			case c.pages != nil && (page.Links == nil || page.Links.Pages == nil):
				t.Errorf("GET %s: no links.pages, want %+v", c.path, *c.pages)
			case c.pages != nil && *page.Links.Pages != *c.pages:
				t.Errorf("GET %s: links.pages\n got %+v\nwant %+v", c.path, *page.Links.Pages, *c.pages)
			}
		})
	}
}

// countListed counts the elements of the response's one list key.
func countListed(t *testing.T, path string, body []byte) int {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, key := range []string{"invoices", "invoice_items", "billing_history", "volumes"} {
		if list, ok := raw[key]; ok {
			var items []json.RawMessage
			if err := json.Unmarshal(list, &items); err != nil || items == nil {
				t.Fatalf("%s: %q is not an array: %s", path, key, list)
			}
			return len(items)
		}
	}
	t.Fatalf("%s: no list key in %s", path, body)
	return 0
}

// TestErrors checks the statuses and bodies of every refusal, and that each
// carries the rate-limit headers and a request id.
func TestErrors(t *testing.T) {
	_, srv := newTestServer(t, Options{})
	cases := []struct {
		name, method, token, path string
		status                    int
		id, message               string // message "" means any
	}{
		{"no token", "GET", "", "/v2/volumes", 401, "unauthorized", "Unable to authenticate you."},
		{"no token on a file", "GET", "", "/v2/customers/my/invoices/preview/pdf", 401, "unauthorized", "Unable to authenticate you."},
		{"unknown invoice", "GET", testToken, "/v2/customers/my/invoices/00000000-0000-0000-0000-000000000000", 404, "not_found", "The resource you requested could not be found."},
		{"unknown invoice summary", "GET", testToken, "/v2/customers/my/invoices/nope/summary", 404, "not_found", ""},
		{"unknown invoice csv", "GET", testToken, "/v2/customers/my/invoices/nope/csv", 404, "not_found", ""},
		{"unknown invoice pdf", "GET", testToken, "/v2/customers/my/invoices/nope/pdf", 404, "not_found", ""},
		{"unknown volume", "GET", testToken, "/v2/volumes/506f78a4-e098-11e5-ad9f-000f53306ae1", 404, "not_found", ""},
		{"unknown path", "GET", testToken, "/v2/droplets", 404, "not_found", ""},
		{"PATCH", "PATCH", testToken, "/v2/volumes", 405, "method_not_allowed", ""},
		{"PUT", "PUT", testToken, "/v2/volumes/x", 405, "method_not_allowed", ""},
		{"POST to a read-only route", "POST", testToken, "/v2/customers/my/balance", 405, "method_not_allowed", ""},
		{"page not an integer", "GET", testToken, "/v2/volumes?page=two", 400, "bad_request", `invalid page "two": must be an integer of at least 1`},
		{"page zero", "GET", testToken, "/v2/customers/my/invoices?page=0", 400, "bad_request", `invalid page "0": must be an integer of at least 1`},
		{"page negative", "GET", testToken, "/v2/customers/my/billing_history?page=-1", 400, "bad_request", `invalid page "-1": must be an integer of at least 1`},
		{"per_page zero", "GET", testToken, "/v2/volumes?per_page=0", 400, "bad_request", `invalid per_page "0": must be an integer from 1 to 200`},
		{"per_page negative", "GET", testToken, "/v2/customers/my/invoices/preview?per_page=-5", 400, "bad_request", `invalid per_page "-5": must be an integer from 1 to 200`},
		{"per_page too large", "GET", testToken, "/v2/customers/my/invoices?per_page=201", 400, "bad_request", `invalid per_page "201": must be an integer from 1 to 200`},
		{"per_page empty", "GET", testToken, "/v2/customers/my/billing_history?per_page=", 400, "bad_request", `invalid per_page "": must be an integer from 1 to 200`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, srv, c.method, c.token, c.path, nil)
			if resp.StatusCode != c.status {
				t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q, want application/json; charset=utf-8", ct)
			}
			e := decode[upstream.ErrorBody](t, c.path, body)
			if e.ID != c.id || (c.message != "" && e.Message != c.message) || e.Message == "" {
				t.Errorf("body %+v, want id %q message %q", e, c.id, c.message)
			}
			if e.RequestID == "" || e.RequestID != resp.Header.Get("X-Request-Id") {
				t.Errorf("request_id %q, x-request-id %q: want the same non-empty id", e.RequestID, resp.Header.Get("X-Request-Id"))
			}
			checkRateLimitHeaders(t, resp)
		})
	}
}

func checkRateLimitHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	for _, h := range []string{"Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset"} {
		if _, err := strconv.ParseInt(resp.Header.Get(h), 10, 64); err != nil {
			t.Errorf("%s = %q, want an integer", h, resp.Header.Get(h))
		}
	}
}

// TestEveryEndpointAnswers fetches each endpoint once with a token and checks
// the status, content type and rate-limit headers.
func TestEveryEndpointAnswers(t *testing.T) {
	s, srv := newTestServer(t, Options{})
	a := s.Account(testToken)
	inv := a.Invoices[3]
	cases := []struct {
		path, contentType string
	}{
		{"/v2/customers/my/billing_history", "application/json; charset=utf-8"},
		{"/v2/customers/my/invoices", "application/json; charset=utf-8"},
		{"/v2/customers/my/invoices/" + inv.UUID, "application/json; charset=utf-8"},
		{"/v2/customers/my/invoices/" + inv.UUID + "/summary", "application/json; charset=utf-8"},
		{"/v2/customers/my/invoices/" + inv.UUID + "/csv", "text/csv"},
		{"/v2/customers/my/invoices/" + inv.UUID + "/pdf", "application/pdf"},
		{"/v2/customers/my/invoices/preview/summary", "application/json; charset=utf-8"},
		{"/v2/customers/my/balance", "application/json; charset=utf-8"},
		{"/v2/volumes", "application/json; charset=utf-8"},
		{"/v2/volumes/" + a.Volumes[7].ID, "application/json; charset=utf-8"},
	}
	for _, c := range cases {
		resp, body := get(t, srv, testToken, c.path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.contentType {
			t.Errorf("GET %s: %d %q, want 200 %q: %.200s", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.contentType, body)
		}
		if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
			t.Errorf("GET %s: Content-Length %q for a %d-byte body", c.path, cl, len(body))
		}
		checkRateLimitHeaders(t, resp)
	}
	_, body := get(t, srv, testToken, "/v2/volumes/"+a.Volumes[7].ID)
	got := decode[struct{ Volume upstream.Volume }](t, "volume", body).Volume
	if got.ID != a.Volumes[7].ID || got.Name != a.Volumes[7].Name || got.Region == nil || got.Region.Slug != a.Volumes[7].Region.Slug {
		t.Errorf("GET /v2/volumes/{id}: got %+v, want %+v", got, a.Volumes[7])
	}
	_, body = get(t, srv, testToken, "/v2/customers/my/balance")
	b := decode[upstream.Balance](t, "balance", body)
	if b.GeneratedAt != fixedNow.Format(time.RFC3339) || b.MonthToDateUsage != a.Preview.Amount {
		t.Errorf("balance %+v: want generated_at %s and month_to_date_usage = the preview's amount %s", b, fixedNow.Format(time.RFC3339), a.Preview.Amount)
	}
}

// TestRequestsAreCounted checks Requests (URIs exactly as received, in order),
// Counts (by route), Reset, and the same over HTTP.
func TestRequestsAreCounted(t *testing.T) {
	s, srv := newTestServer(t, Options{})
	uuid := s.Account(testToken).Invoices[0].UUID
	paths := []string{
		"/v2/volumes?page=1&per_page=3",
		"/v2/volumes?per_page=3&page=2",
		"/v2/customers/my/invoices/" + uuid + "/summary",
		"/v2/customers/my/invoices/preview?per_page=5",
		"/v2/volumes?page=0",
	}
	for _, p := range paths {
		get(t, srv, testToken, p)
	}
	get(t, srv, "", "/v2/customers/my/balance")
	want := []string{}
	for _, p := range paths {
		want = append(want, "GET "+p)
	}
	want = append(want, "GET /v2/customers/my/balance")
	if got := s.Requests(); !slices.Equal(got, want) {
		t.Errorf("Requests()\n got %q\nwant %q", got, want)
	}
	wantCounts := map[string]int{
		upstream.EndpointVolumes: 3, upstream.EndpointInvoiceSummary: 1,
		upstream.EndpointInvoiceItems: 1, upstream.EndpointBalance: 1,
	}
	if got := s.Counts(); !mapsEqual(got, wantCounts) {
		t.Errorf("Counts() = %v, want %v", got, wantCounts)
	}

	resp, body := get(t, srv, "", "/_sandbox/stats")
	st := decode[Stats](t, "stats", body)
	if resp.StatusCode != 200 || st.Total != 6 || !slices.Equal(st.Requests, want) || !mapsEqual(st.Counts, wantCounts) {
		t.Errorf("GET /_sandbox/stats: %d %+v, want total 6, the requests and counts above", resp.StatusCode, st)
	}
	if resp, body := do(t, srv, "POST", "", "/_sandbox/reset", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /_sandbox/reset: %d %s", resp.StatusCode, body)
	}
	if s.Total() != 0 || len(s.Requests()) != 0 || len(s.Counts()) != 0 {
		t.Errorf("after reset: total %d, requests %q, counts %v; want all empty", s.Total(), s.Requests(), s.Counts())
	}
	if resp, _ := do(t, srv, "GET", "", "/_sandbox/reset", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /_sandbox/reset: %d, want 405", resp.StatusCode)
	}
}

// TestRequestLogIsBounded keeps the newest Options.RequestLog URIs, in order.
func TestRequestLogIsBounded(t *testing.T) {
	s, srv := newTestServer(t, Options{RequestLog: 3})
	for i := 1; i <= 5; i++ {
		get(t, srv, testToken, "/v2/volumes?page="+strconv.Itoa(i))
	}
	want := []string{"GET /v2/volumes?page=3", "GET /v2/volumes?page=4", "GET /v2/volumes?page=5"}
	if got := s.Requests(); !slices.Equal(got, want) {
		t.Errorf("Requests() = %q, want %q", got, want)
	}
	if s.Total() != 5 || s.Counts()[upstream.EndpointVolumes] != 5 {
		t.Errorf("Total %d, Counts %v: want 5 however short the log", s.Total(), s.Counts())
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestServedDataMatchesAccount walks every page of every list and compares
// it with what Account says, so tests elsewhere can trust Account.
func TestServedDataMatchesAccount(t *testing.T) {
	s, srv := newTestServer(t, Options{})
	a := s.Account(testToken)
	var invoices []upstream.Invoice
	walk(t, srv, "/v2/customers/my/invoices?per_page=7", func(body []byte) *upstream.Links {
		p := decode[upstream.InvoicePage](t, "invoices", body)
		invoices = append(invoices, p.Invoices...)
		if p.InvoicePreview == nil || *p.InvoicePreview != a.Preview.Wire() {
			t.Errorf("invoice_preview %+v, want %+v", p.InvoicePreview, a.Preview.Wire())
		}
		return p.Links
	})
	if len(invoices) != len(a.Invoices) {
		t.Fatalf("walked %d invoices, want %d", len(invoices), len(a.Invoices))
	}
	for i, inv := range a.Invoices {
		if invoices[i] != inv.Wire() {
			t.Errorf("invoice %d: served %+v, want %+v", i, invoices[i], inv.Wire())
		}
	}
	var items []upstream.InvoiceItem
	walk(t, srv, "/v2/customers/my/invoices/"+a.Invoices[5].UUID+"?per_page=9", func(body []byte) *upstream.Links {
		p := decode[upstream.InvoiceItemPage](t, "items", body)
		items = append(items, p.InvoiceItems...)
		return p.Links
	})
	if !slices.Equal(items, a.Invoices[5].Items) {
		t.Errorf("walked %d items of invoice 5, want the %d of Account", len(items), len(a.Invoices[5].Items))
	}
	var history []upstream.BillingHistoryEntry
	walk(t, srv, "/v2/customers/my/billing_history", func(body []byte) *upstream.Links {
		p := decode[upstream.BillingHistoryPage](t, "history", body)
		history = append(history, p.BillingHistory...)
		return p.Links
	})
	if !slices.Equal(history, a.BillingHistory) {
		t.Errorf("walked %d history entries, want the %d of Account", len(history), len(a.BillingHistory))
	}
	var volumes []upstream.Volume
	walk(t, srv, "/v2/volumes?per_page=200", func(body []byte) *upstream.Links {
		p := decode[upstream.VolumePage](t, "volumes", body)
		volumes = append(volumes, p.Volumes...)
		return p.Links
	})
	if len(volumes) != len(a.Volumes) {
		t.Errorf("walked %d volumes, want %d", len(volumes), len(a.Volumes))
	}
	_, body := get(t, srv, testToken, "/v2/customers/my/invoices/"+a.Invoices[5].UUID+"/summary")
	if sm := decode[upstream.InvoiceSummary](t, "summary", body); sm.Amount != a.Invoices[5].Amount || sm.InvoiceUUID != a.Invoices[5].UUID {
		t.Errorf("summary %+v, want the amount %s of invoice %s", sm, a.Invoices[5].Amount, a.Invoices[5].UUID)
	}
}

// walk follows links.pages.next from path, handing each body to page.
func walk(t *testing.T, srv *httptest.Server, path string, page func([]byte) *upstream.Links) {
	t.Helper()
	for n := 0; path != ""; n++ {
		if n > 100 {
			t.Fatalf("more than 100 pages from %s", path)
		}
		resp, body := get(t, srv, testToken, path)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		links := page(body)
		path = ""
		if links.HasNext() {
			path = strings.TrimPrefix(links.Pages.Next, srv.URL)
		}
	}
}

// BenchmarkServe measures the sandbox's own cost per request, in-process, so
// a load test knows how much of its budget the stand-in takes.
func BenchmarkServe(b *testing.B) {
	s := New(Options{Now: func() time.Time { return fixedNow }})
	inv := s.Account(testToken).Invoices[0].UUID
	for _, path := range []string{
		"/v2/volumes?per_page=20",
		"/v2/volumes?region=nyc3&per_page=20&page=2",
		"/v2/customers/my/invoices?per_page=12",
		"/v2/customers/my/invoices/" + inv + "?per_page=5",
		"/v2/customers/my/invoices/" + inv + "/summary",
		"/v2/customers/my/invoices/" + inv + "/pdf",
	} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s.ServeHTTP(&chunkRecorder{header: http.Header{}}, req)
				}
			})
		})
	}
}
