package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// captureServer stands for wherever a redirect points; it must receive nothing.
func captureServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.HasSuffix(r.URL.Path, "/pdf") {
			w.Header().Set("Content-Type", "application/pdf")
			w.Write([]byte("%PDF-1.4 not DigitalOcean's"))
			return
		}
		serveJSON(http.StatusOK, fixture(t, "balance.json"))(w, r)
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

// TestRedirectsAreNeverFollowed: DigitalOcean does not redirect, so a 3xx is
// an error and the token goes nowhere but the configured base URL.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	capture, hits := captureServer(t)
	cu, _ := url.Parse(capture.URL)
	otherHost := "http://localhost:" + cu.Port() // same machine, another host name

	cases := []struct {
		name     string
		tls      bool   // DigitalOcean's stand-in serves https
		location string // where the redirect points, before the request's path
		call     func(context.Context, *Client) error
	}{
		{"same host, other port", false, capture.URL, everyEndpoint[6].call},
		{"https to http", true, capture.URL, everyEndpoint[6].call},
		{"other host, JSON", false, otherHost, everyEndpoint[6].call},
		{"other host, PDF", false, otherHost, everyEndpoint[5].call},
	}
	for _, tc := range cases {
		for _, status := range []int{301, 302, 303, 307, 308} {
			t.Run(tc.name+" "+http.StatusText(status), func(t *testing.T) {
				redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					writeRateLimit(w)
					http.Redirect(w, r, tc.location+r.URL.RequestURI(), status)
				})
				do := httptest.NewUnstartedServer(redirect)
				if tc.tls {
					do.StartTLS()
				} else {
					do.Start()
				}
				defer do.Close()
				c := newTestClient(t, do.URL, Config{Token: "dop_v1_secret", HTTPClient: do.Client()})

				err := tc.call(context.Background(), c)
				e := asError(t, err)
				if e.Kind != KindHTTP || e.Status != status {
					t.Errorf("error = %v (%+v), want KindHTTP with status %d", err, e, status)
				}
				if e.Attempts != 1 {
					t.Errorf("Attempts = %d, want 1: a redirect is not retried", e.Attempts)
				}
				if n := hits.Load(); n != 0 {
					t.Fatalf("the redirect's target received %d requests, want none", n)
				}
			})
		}
	}
}
