package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// asError insists that err is an *Error and returns it.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want an *upstream.Error", err, err)
	}
	return e
}

func TestNewRejectsBadBaseURLs(t *testing.T) {
	for _, base := range []string{"api.digitalocean.com", "ftp://x", "http://", "http://x/?a=b", ":"} {
		if _, err := New(Config{BaseURL: base}); err == nil {
			t.Errorf("New(BaseURL: %q) succeeded, want an error", base)
		}
	}
}

func TestRequestHeaders(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/balance", serveJSON(http.StatusOK, fixture(t, "balance.json")))
	do.mux.Handle("GET /v2/customers/my/invoices/{uuid}/pdf", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Write([]byte("%PDF-1.4"))
	}))

	cases := []struct {
		name     string
		token    string // the client's configured token
		ctxToken string // the call's token (WithToken)
		wantAuth string
	}{
		{"configured token", "dop_v1_server", "", "Bearer dop_v1_server"},
		{"call's token overrides", "dop_v1_server", "dop_v1_caller", "Bearer dop_v1_caller"},
		{"call's token alone", "", "dop_v1_caller", "Bearer dop_v1_caller"},
		{"no token at all", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, do.URL, Config{Token: tc.token})
			ctx := context.Background()
			if tc.ctxToken != "" {
				ctx = WithToken(ctx, tc.ctxToken)
			}
			if _, err := c.GetBalance(ctx); err != nil {
				t.Fatalf("GetBalance: %v", err)
			}
			reqs := do.seen()
			r := reqs[len(reqs)-1]
			if got := r.Header.Get("Authorization"); got != tc.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tc.wantAuth)
			}
			if got := r.Header.Get("User-Agent"); got != UserAgent || !strings.HasPrefix(got, "oceangraph/"+Version) {
				t.Errorf("User-Agent = %q, want %q", got, UserAgent)
			}
			if got := r.Header.Get("Accept"); got != "application/json" {
				t.Errorf("Accept = %q, want application/json", got)
			}
		})
	}

	t.Run("file accept", func(t *testing.T) {
		c := newTestClient(t, do.URL, Config{})
		if err := openAndClose(c.GetInvoiceFile(context.Background(), "u", FormatPDF)); err != nil {
			t.Fatal(err)
		}
		reqs := do.seen()
		if got := reqs[len(reqs)-1].Header.Get("Accept"); !strings.HasPrefix(got, "application/pdf") {
			t.Errorf("Accept = %q, want application/pdf first", got)
		}
	})
}

func TestBaseURLWithPathPrefix(t *testing.T) {
	for _, base := range []string{"/proxy/do", "/proxy/do/"} {
		t.Run(base, func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.Handle("GET /proxy/do/v2/volumes", serveJSON(http.StatusOK, fixture(t, "volumes_all.json")))
			c := newTestClient(t, do.URL+base, Config{})
			page, err := c.ListVolumes(context.Background(), VolumeListOptions{})
			if err != nil {
				t.Fatalf("ListVolumes through %s: %v", base, err)
			}
			if len(page.Volumes) != 2 {
				t.Errorf("got %d volumes, want 2", len(page.Volumes))
			}
		})
	}
}

func TestQueryAndPathValuesAreEscaped(t *testing.T) {
	do := newFakeDO(t)
	var gotName, gotRegion, gotID string
	do.mux.HandleFunc("GET /v2/volumes", func(w http.ResponseWriter, r *http.Request) {
		gotName, gotRegion = r.URL.Query().Get("name"), r.URL.Query().Get("region")
		serveJSON(http.StatusOK, []byte(`{"volumes":[],"meta":{"total":0}}`))(w, r)
	})
	do.mux.HandleFunc("GET /v2/volumes/{id}", func(w http.ResponseWriter, r *http.Request) {
		gotID = r.PathValue("id")
		serveJSON(http.StatusOK, fixture(t, "volume.json"))(w, r)
	})
	c := newTestClient(t, do.URL, Config{})

	name := "my vol & more=yes+1/ü?#%"
	if _, err := c.ListVolumes(context.Background(), VolumeListOptions{Name: name, Region: "nyc3&per_page=1"}); err != nil {
		t.Fatalf("ListVolumes: %v", err)
	}
	if gotName != name || gotRegion != "nyc3&per_page=1" {
		t.Errorf("server read name=%q region=%q, want %q and %q", gotName, gotRegion, name, "nyc3&per_page=1")
	}
	if q := do.seen()[0].URL.Query(); len(q) != 2 {
		t.Errorf("server saw parameters %v, want exactly name and region", q)
	}

	id := "506f78a4-e098-11e5-ad9f-000f53306ae1"
	if _, err := c.GetVolume(context.Background(), id); err != nil {
		t.Fatalf("GetVolume(%q): %v", id, err)
	}
	if gotID != id {
		t.Errorf("server read id %q, want %q", gotID, id)
	}
}

func TestAbsurdIDsAreRefusedBeforeSending(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("/", serveJSON(http.StatusOK, fixture(t, "volume.json")))
	c := newTestClient(t, do.URL, Config{})
	for _, id := range []string{
		"", ".", "..", "a/b c?d", "%2e%2e", "../customers/my/balance", "vol\u00fcme", "new\nline",
		strings.Repeat("a", maxIDLength+1), strings.Repeat("0", 900<<10),
	} {
		name := shorten(id, 20)
		t.Run(name, func(t *testing.T) {
			_, err := c.GetVolume(context.Background(), id)
			e := asError(t, err)
			if e.Kind != KindRequest || !errors.Is(err, ErrInvalidID) {
				t.Errorf("GetVolume(%q) error = %v, want KindRequest wrapping ErrInvalidID", name, err)
			}
			if len(e.Error()) > 200 {
				t.Errorf("error message is %d bytes, want the id shortened", len(e.Error()))
			}
		})
	}
	if n := len(do.seen()); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
	for _, id := range []string{"506f78a4-e098-11e5-ad9f-000f53306ae1", "preview", "6372321", "snap_1.a", strings.Repeat("a", maxIDLength)} {
		if _, err := c.GetVolume(context.Background(), id); err != nil {
			t.Errorf("GetVolume(%q...): %v, want it sent", id[:min(len(id), 20)], err)
		}
	}
}

// specErrors are DigitalOcean's error bodies, as the spec gives them
// (shared/responses/*.yml); 502 to 504 are not in the spec, so they get what
// a gateway in front of it sends: the spec's default body, an HTML page, nothing.
var specErrors = []struct {
	status int
	body   string
	header http.Header
	want   Error
}{
	{400, `{"id":"bad_request","message":"error parsing request body","request_id":"4851a473-1621-42ea-b2f9-5071c0ea8414"}`, nil,
		Error{ID: "bad_request", Message: "error parsing request body", RequestID: "4851a473-1621-42ea-b2f9-5071c0ea8414"}},
	{401, `{"id":"unauthorized","message":"Unable to authenticate you."}`, nil,
		Error{ID: "unauthorized", Message: "Unable to authenticate you."}},
	{403, `{"id":"forbidden","message":"You do not have permission to perform this action."}`, nil,
		Error{ID: "forbidden", Message: "You do not have permission to perform this action."}},
	{404, `{"id":"not_found","message":"The resource you requested could not be found."}`, http.Header{"X-Request-Id": {"515850a0-a812-50bf-aa3c-d0d21d287e40"}},
		Error{ID: "not_found", Message: "The resource you requested could not be found.", RequestID: "515850a0-a812-50bf-aa3c-d0d21d287e40"}},
	{429, `{"id":"too_many_requests","message":"API rate limit exceeded."}`, http.Header{"Retry-After": {"7"}},
		Error{ID: "too_many_requests", Message: "API rate limit exceeded.", RetryAfter: 7 * time.Second}},
	{500, `{"id":"server_error","message":"Unexpected server-side error","request_id":"4d9d8375-3c56-4925-a3e7-eb137fed17e9"}`, http.Header{"X-Request-Id": {"ignored-when-the-body-has-one"}},
		Error{ID: "server_error", Message: "Unexpected server-side error", RequestID: "4d9d8375-3c56-4925-a3e7-eb137fed17e9"}},
	{502, "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>bad gateway</body>\n</html>\n", http.Header{"Content-Type": {"text/html"}},
		Error{Message: "<html> <head><title>502 Bad Gateway</title></head> <body>bad gateway</body> </html>"}},
	{503, `{"id":"example_error","message":"some error message"}`, http.Header{"X-Request-Id": {"515850a0-a812-50bf-aa3c-d0d21d287e40"}},
		Error{ID: "example_error", Message: "some error message", RequestID: "515850a0-a812-50bf-aa3c-d0d21d287e40"}},
	{504, ``, nil, Error{}},
}

func TestEveryErrorStatusOnEveryEndpoint(t *testing.T) {
	calls := append(append([]endpointCall(nil), everyEndpoint...), everyWrite...)
	for _, se := range specErrors {
		do := newFakeDO(t)
		for _, ep := range uniquePatterns(calls) {
			do.mux.HandleFunc(ep, func(w http.ResponseWriter, r *http.Request) {
				writeRateLimit(w)
				w.Header().Set("Content-Type", "application/json")
				for k, v := range se.header {
					w.Header()[k] = v
				}
				w.WriteHeader(se.status)
				fmt.Fprint(w, se.body)
			})
		}
		c := newTestClient(t, do.URL, Config{MaxRetries: -1})
		for _, ep := range calls {
			t.Run(fmt.Sprintf("%d %s", se.status, ep.name), func(t *testing.T) {
				e := asError(t, ep.call(context.Background(), c))
				want := se.want
				want.Endpoint, want.Kind, want.Status, want.RateLimit, want.Attempts = ep.route(), KindHTTP, se.status, specRateLimit, 1
				if ep.write() && se.status >= 500 {
					want.Outcome = OutcomeUnknown
				}
				assertEqual(t, "error", *e, want)
				if e.HasBody() != (se.body != "") {
					t.Errorf("HasBody() = %v for body %q", e.HasBody(), se.body)
				}
				if !strings.Contains(e.Error(), fmt.Sprint(se.status)) {
					t.Errorf("Error() = %q does not name the status", e.Error())
				}
			})
		}
	}
}

// uniquePatterns lists the calls' mux patterns once each (three actions share one).
func uniquePatterns(calls []endpointCall) []string {
	var out []string
	seen := map[string]bool{}
	for _, ep := range calls {
		if !seen[ep.pattern] {
			seen[ep.pattern] = true
			out = append(out, ep.pattern)
		}
	}
	return out
}

func TestLongNonJSONErrorBodyIsShortened(t *testing.T) {
	do := newFakeDO(t)
	do.mux.HandleFunc("GET /v2/customers/my/balance", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, strings.Repeat("é", 10000))
	})
	c := newTestClient(t, do.URL, Config{})
	_, err := c.GetBalance(context.Background())
	e := asError(t, err)
	if len(e.Message) > maxMessage+len("…") || !strings.HasSuffix(e.Message, "é…") {
		t.Errorf("Message is %d bytes ending %q, want at most %d bytes cut on a rune boundary with …", len(e.Message), e.Message[max(len(e.Message)-8, 0):], maxMessage)
	}
}

func TestUndecodableSuccessBodies(t *testing.T) {
	cases := []struct {
		name        string
		contentType string
		body        string
	}{
		{"garbage", "application/json", "not json at all"},
		{"truncated", "application/json", `{"month_to_date_balance":"23.44","account_bal`},
		{"empty", "application/json", ""},
		{"null", "application/json", "null"},
		{"array", "application/json", `[{"month_to_date_balance":"23.44"}]`},
		{"trailing garbage", "application/json", `{"month_to_date_balance":"23.44"} {"x":1}`},
		{"object where a string is due", "application/json", `{"month_to_date_balance":{"value":"23.44"}}`},
		{"html page", "text/html; charset=utf-8", `<html><body>Please log in</body></html>`},
		{"json behind the wrong type", "text/html", `{"month_to_date_balance":"23.44"}`},
		{"unparseable content type", "application/json; ===", `{"month_to_date_balance":"23.44"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.HandleFunc("GET /v2/customers/my/balance", func(w http.ResponseWriter, r *http.Request) {
				writeRateLimit(w)
				w.Header().Set("Content-Type", tc.contentType)
				w.Header().Set("X-Request-Id", "req-1")
				fmt.Fprint(w, tc.body)
			})
			c := newTestClient(t, do.URL, Config{})
			b, err := c.GetBalance(context.Background())
			if b != nil {
				t.Errorf("GetBalance returned data %+v with a bad body", b)
			}
			e := asError(t, err)
			if e.Kind != KindDecode || e.Status != 200 || e.RequestID != "req-1" || e.RateLimit != specRateLimit || e.Err == nil {
				t.Errorf("error = %+v, want KindDecode, status 200, request id req-1, the rate limit and a cause", e)
			}
			if len(do.seen()) != 1 {
				t.Errorf("server saw %d requests, want 1: a bad 2xx body is not retried", len(do.seen()))
			}
		})
	}
}

func TestUndecodableBodyOnEveryJSONEndpoint(t *testing.T) {
	do := newFakeDO(t)
	for _, ep := range everyEndpoint {
		do.mux.Handle(ep.pattern, serveJSON(http.StatusOK, []byte(`{"truncated": [`)))
	}
	for _, p := range uniquePatterns(everyWrite) {
		do.mux.Handle(p, serveJSON(http.StatusCreated, []byte(`{"truncated": [`)))
	}
	c := newTestClient(t, do.URL, Config{})
	for _, ep := range append(append([]endpointCall(nil), everyEndpoint...), everyWrite...) {
		if strings.Contains(ep.name, "csv") || strings.Contains(ep.name, "pdf") || method(ep.route()) == http.MethodDelete {
			continue // files are not decoded (their wrong content type is tested in files_test.go), nor are a 204's bodies
		}
		t.Run(ep.name, func(t *testing.T) {
			e := asError(t, ep.call(context.Background(), c))
			if e.Kind != KindDecode {
				t.Errorf("Kind = %v, want KindDecode; error %v", e.Kind, e)
			}
			if want := map[bool]Outcome{true: OutcomeApplied, false: OutcomeNotApplied}[ep.write()]; e.Outcome != want {
				t.Errorf("Outcome = %v, want %v: a 2xx means the write happened", e.Outcome, want)
			}
		})
	}
}

// hang answers nothing until the client goes away.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func TestServerHangingPastTheDeadline(t *testing.T) {
	do := newFakeDO(t)
	do.mux.HandleFunc("GET /v2/volumes", hang)
	do.mux.HandleFunc("GET /v2/customers/my/balance", func(w http.ResponseWriter, r *http.Request) {
		// Headers and half a body, then silence.
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"month_to_date_balance":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})

	cases := []struct {
		name    string
		cfg     Config
		timeout time.Duration // on the caller's context; 0 for none
		call    func(context.Context, *Client) error
	}{
		{"caller's deadline", Config{}, 200 * time.Millisecond, everyEndpoint[7].call},
		{"Config.Timeout", Config{Timeout: 200 * time.Millisecond}, 0, everyEndpoint[7].call},
		{"deadline mid-body", Config{}, 200 * time.Millisecond, everyEndpoint[6].call},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, do.URL, tc.cfg)
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			err := tc.call(ctx, c)
			e := asError(t, err)
			if e.Kind != KindTransport || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error = %v (kind %v), want KindTransport wrapping context.DeadlineExceeded", err, e.Kind)
			}
			// Generous: the server would hang for ever.
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("returned after %v, want about the 200ms deadline", d)
			}
		})
	}
}

func TestCancelledContextIsNotSent(t *testing.T) {
	do := newFakeDO(t)
	c := newTestClient(t, do.URL, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.GetBalance(ctx)
	if e := asError(t, err); e.Kind != KindTransport || !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want KindTransport wrapping context.Canceled", err)
	}
	if n := len(do.seen()); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}

// BenchmarkListVolumes is the client's own cost per call (request, headers,
// retry bookkeeping, decoding the spec's two-volume page) over loopback.
func BenchmarkListVolumes(b *testing.B) {
	body, err := os.ReadFile("testdata/volumes_all.json")
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(serveJSON(http.StatusOK, body))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Token: "t"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.ListVolumes(context.Background(), VolumeListOptions{ListOptions: ListOptions{PerPage: 20}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestBodyCutOffMidStreamIsATransportError(t *testing.T) {
	do := newFakeDO(t)
	do.mux.HandleFunc("GET /v2/customers/my/balance", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		// Promises 100 bytes, sends 26, hangs up.
		fmt.Fprint(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"month_to_date_balance\":")
		buf.Flush()
	})
	c := newTestClient(t, do.URL, Config{})
	b, err := c.GetBalance(context.Background())
	if b != nil {
		t.Errorf("GetBalance returned data %+v from a cut-off body", b)
	}
	if e := asError(t, err); e.Kind != KindTransport || e.Status != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error = %v (%+v), want KindTransport, status 200, wrapping io.ErrUnexpectedEOF", err, e)
	}
}
