package graph

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestTokenOf(t *testing.T) {
	cases := []struct {
		header, fallback, want string
		ok                     bool
	}{
		{"Bearer dop_v1_abc", "server", "dop_v1_abc", true},
		{"bearer dop_v1_abc", "", "dop_v1_abc", true},
		{"", "server", "server", true},
		{"", "", "", false},
		{"Bearer ", "server", "", false},
		{"Basic dXNlcjpwYXNz", "server", "", false},
		{"dop_v1_abc", "server", "", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/query", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		got, err := tokenOf(r, c.fallback)
		if got != c.want || (err == nil) != c.ok || (err != nil && !errors.Is(err, errUnauthenticated)) {
			t.Errorf("Authorization %q, default %q: got %q, %v; want %q, ok %v", c.header, c.fallback, got, err, c.want, c.ok)
		}
	}
}

func TestBaseURLOf(t *testing.T) {
	// httptest's requests come from 192.0.2.1.
	trusted := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	cases := []struct {
		host, proto, fwdHost string
		trusted              []netip.Prefix
		want                 string
	}{
		{"localhost:8080", "", "", nil, "http://localhost:8080"},
		{"10.0.0.5:8080", "https", "api.example.com", trusted, "https://api.example.com"},
		{"10.0.0.5:8080", "https, http", "api.example.com, proxy.internal", trusted, "https://api.example.com"},
		{"localhost:8080", "gopher", "", trusted, "http://localhost:8080"},
		{"10.0.0.5:8080", "https", "api.example.com", nil, "http://10.0.0.5:8080"},
		{"[::1]:8080", "", "", nil, "http://[::1]:8080"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/query", nil)
		r.Host = c.host
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if c.fwdHost != "" {
			r.Header.Set("X-Forwarded-Host", c.fwdHost)
		}
		if got, err := baseURLOf(r, c.trusted); got != c.want || err != nil {
			t.Errorf("%+v: got %s, %v; want %s", c, got, err, c.want)
		}
	}
	for _, host := range []string{"", "a@b", "a/b", "a?b", "a b", "<x>", "a:0", "a:99999", "a:", "[zz]:1", "-a.example"} {
		r := httptest.NewRequest("POST", "/query", nil)
		r.Host = host
		if got, err := baseURLOf(r, nil); !errors.Is(err, errBadHost) {
			t.Errorf("Host %q: got %q, %v; want errBadHost", host, got, err)
		}
	}
}

// GET, POST and OPTIONS are the transports; the per-request scope applies to each.
func TestTransports(t *testing.T) {
	h := newHarness(t, newStub().onFile(t, balancePath, "balance.json"))
	get := httptest.NewRequest(http.MethodGet, "/query?query="+url.QueryEscape(`{ balance { accountBalance } }`), nil)
	get.Header.Set("Authorization", "Bearer "+callerToken)
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, get)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"accountBalance":"12.23"`) {
		t.Errorf("GET: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodOptions, "/query", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Allow"), "POST") {
		t.Errorf("OPTIONS: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

// A request gqlgen's transports refuse gets a coded GraphQL error and the
// fitting status, never gqlgen's uncoded "transport not supported" or
// "variables could not be decoded".
func TestRequestsTheTransportsRefuse(t *testing.T) {
	h := newHarness(t, newStub().onFile(t, balancePath, "balance.json"))
	query := `{"query":"{ balance { accountBalance } }"}`
	getQuery := "/query?query=" + url.QueryEscape(`{ balance { accountBalance } }`)
	for _, tc := range []struct {
		name, method, target, contentType, upgrade string
		wantStatus                                 int
		wantCode, wantAllow                        string
	}{
		{"PUT", http.MethodPut, "/query", "application/json", "", http.StatusMethodNotAllowed, codeMethodNotAllowed, "GET, POST, OPTIONS"},
		{"DELETE", http.MethodDelete, "/query", "", "", http.StatusMethodNotAllowed, codeMethodNotAllowed, "GET, POST, OPTIONS"},
		{"PATCH", http.MethodPatch, "/query", "application/json", "", http.StatusMethodNotAllowed, codeMethodNotAllowed, "GET, POST, OPTIONS"},
		{"HEAD", http.MethodHead, "/query", "", "", http.StatusMethodNotAllowed, codeMethodNotAllowed, "GET, POST, OPTIONS"},
		{"POST as text/plain", http.MethodPost, "/query", "text/plain", "", http.StatusUnsupportedMediaType, CodeBadRequest, ""},
		{"POST without a content type", http.MethodPost, "/query", "", "", http.StatusUnsupportedMediaType, CodeBadRequest, ""},
		{"POST asking for a WebSocket", http.MethodPost, "/query", "application/json", "websocket", http.StatusBadRequest, CodeBadRequest, ""},
		{"GET, variables not JSON", http.MethodGet, getQuery + "&variables=x", "", "", http.StatusBadRequest, CodeBadRequest, ""},
		{"GET, variables an array", http.MethodGet, getQuery + "&variables=%5B1%5D", "", "", http.StatusBadRequest, CodeBadRequest, ""},
		{"GET, extensions not JSON", http.MethodGet, getQuery + "&extensions=x", "", "", http.StatusBadRequest, CodeBadRequest, ""},
		{"GET, a bad escape", http.MethodGet, getQuery + "&a=%25zz", "", "", http.StatusBadRequest, CodeBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(query))
			if tc.name == "GET, a bad escape" {
				req.URL.RawQuery = strings.Replace(req.URL.RawQuery, "%25zz", "%zz", 1) // httptest refuses to parse it
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.upgrade != "" {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", tc.upgrade)
			}
			req.Header.Set("Authorization", "Bearer "+callerToken)
			rec := httptest.NewRecorder()
			h.handler.ServeHTTP(rec, req)
			var resp gqlResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("body is not JSON (%v): %s", err, rec.Body)
			}
			if rec.Code != tc.wantStatus || len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != tc.wantCode || resp.Data != nil {
				t.Errorf("got HTTP %d %s, want %d with one %s error and no data", rec.Code, rec.Body, tc.wantStatus, tc.wantCode)
			}
			if got := rec.Header().Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
		})
	}
	req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(query))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+callerToken)
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"accountBalance":"12.23"`) {
		t.Errorf("POST with a charset: got HTTP %d %s, want the balance", rec.Code, rec.Body)
	}
}
