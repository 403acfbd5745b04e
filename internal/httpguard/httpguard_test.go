package httpguard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// echoBody is a stand-in for the GraphQL handler: it answers 200 with the body it read.
var echoBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(b)
})

func mustOrigins(t *testing.T, raw string) Origins {
	t.Helper()
	l, err := ParseOrigins(raw)
	if err != nil {
		t.Fatalf("ParseOrigins(%q): %v", raw, err)
	}
	return l
}

func TestParseOriginsRefusesWhatIsNotAnOrigin(t *testing.T) {
	for _, raw := range []string{
		"app.example.com",              // no scheme
		"ftp://app.example.com",        // not http(s)
		"https://app.example.com/path", // a path
		"https://*example.com",         // a wildcard inside the host
		"https://app.example.com:8o",   // a bad port
		"https://",                     // no host
	} {
		if _, err := ParseOrigins(raw); err == nil {
			t.Errorf("ParseOrigins(%q) = nil error, want a refusal", raw)
		}
	}
	if l := mustOrigins(t, " , "); len(l) != 0 {
		t.Errorf("ParseOrigins(blank) = %v, want no origin", l)
	}
}

func TestOriginMatching(t *testing.T) {
	list := mustOrigins(t, "https://app.example.com, http://localhost:*, https://*.preview.example.com, http://[::1]:*")
	for origin, want := range map[string]bool{
		"https://app.example.com":           true,
		"https://APP.example.com":           true,
		"https://app.example.com:443":       true,
		"http://app.example.com":            false, // another scheme
		"https://app.example.com:8443":      false, // another port
		"https://evil-app.example.com":      false,
		"https://app.example.com.evil.io":   false,
		"http://localhost:5173":             true,
		"http://localhost":                  true,
		"http://localhost.evil.io:5173":     false,
		"https://localhost:5173":            false,
		"https://pr-12.preview.example.com": true,
		"https://preview.example.com":       false, // a subdomain pattern needs a subdomain
		"http://[::1]:3000":                 true,
		"null":                              false,
		"":                                  false,
	} {
		if got := list.Allows(origin); got != want {
			t.Errorf("allows(%q) = %v, want %v", origin, got, want)
		}
	}
}

func TestCORS(t *testing.T) {
	h := Query(mustOrigins(t, "https://app.example.com"), DefaultMaxBodyBytes, echoBody)
	preflight := func(origin string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodOptions, "/query", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		// Browsers send the names lower-cased and sorted (Fetch standard).
		r.Header.Set("Access-Control-Request-Headers", "apollo-require-preflight,authorization,content-type")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	t.Run("preflight from a listed origin is allowed and cached", func(t *testing.T) {
		w := preflight("https://app.example.com")
		want := map[string]string{
			"Access-Control-Allow-Origin":      "https://app.example.com",
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Methods":     "POST",
			"Access-Control-Allow-Headers":     "apollo-require-preflight,authorization,content-type",
			"Access-Control-Max-Age":           "600",
		}
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if w.Code != http.StatusNoContent {
			t.Errorf("status = %d, want 204", w.Code)
		}
	})

	t.Run("preflight from an unlisted origin gets no CORS header", func(t *testing.T) {
		w := preflight("https://evil.example.net")
		assertNoCORSHeaders(t, w.Header())
	})

	t.Run("a request from a listed origin can be read, with credentials", func(t *testing.T) {
		w := postJSON(h, "https://app.example.com", `{"query":"{ __typename }"}`)
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
			t.Errorf("Access-Control-Allow-Origin = %q, want the origin", got)
		}
		if got := w.Header().Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Errorf("Access-Control-Allow-Credentials = %q, want true", got)
		}
		if got := w.Header().Get("Access-Control-Expose-Headers"); !strings.Contains(got, "X-Request-Id") {
			t.Errorf("Access-Control-Expose-Headers = %q, want X-Request-Id among them", got)
		}
	})

	t.Run("a request from an unlisted origin gets no CORS header", func(t *testing.T) {
		w := postJSON(h, "https://evil.example.net", `{"query":"{ __typename }"}`)
		assertNoCORSHeaders(t, w.Header())
	})

	t.Run("no origins configured: no CORS header for anyone", func(t *testing.T) {
		off := Query(nil, DefaultMaxBodyBytes, echoBody)
		assertNoCORSHeaders(t, postJSON(off, "https://app.example.com", `{}`).Header())
	})

	t.Run("* allows every origin but never with credentials", func(t *testing.T) {
		all := Query(mustOrigins(t, "*"), DefaultMaxBodyBytes, echoBody)
		w := postJSON(all, "https://anyone.example.org", `{}`)
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "https://anyone.example.org" {
			t.Errorf("Access-Control-Allow-Origin = %q, want the origin", got)
		}
		if got := w.Header().Get("Access-Control-Allow-Credentials"); got != "" {
			t.Errorf("Access-Control-Allow-Credentials = %q, want none with *", got)
		}
	})
}

func assertNoCORSHeaders(t *testing.T, h http.Header) {
	t.Helper()
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("unexpected CORS header %s: %q", k, h.Get(k))
		}
	}
}

func postJSON(h http.Handler, origin, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestCSRFPrevention(t *testing.T) {
	h := preventCSRF(echoBody)
	for _, tc := range []struct {
		name        string
		method      string
		contentType string
		headers     map[string]string
		wantBlocked bool
	}{
		{"GET without a preflight header", http.MethodGet, "", nil, true},
		{"GET with apollo-require-preflight", http.MethodGet, "", map[string]string{"Apollo-Require-Preflight": "true"}, false},
		{"GET with x-apollo-operation-name", http.MethodGet, "", map[string]string{"X-Apollo-Operation-Name": "Dashboard"}, false},
		{"GET with an empty apollo-require-preflight", http.MethodGet, "", map[string]string{"Apollo-Require-Preflight": ""}, true},
		{"form POST, urlencoded", http.MethodPost, "application/x-www-form-urlencoded", nil, true},
		{"form POST, multipart", http.MethodPost, "multipart/form-data; boundary=x", nil, true},
		{"form POST, text/plain", http.MethodPost, "text/plain", nil, true},
		{"text/plain in capitals with a charset", http.MethodPost, "TEXT/Plain; charset=utf-8", nil, true},
		{"text/plain with a malformed parameter", http.MethodPost, "text/plain;garbage", nil, true},
		{"POST without a content type", http.MethodPost, "", nil, true},
		{"text/plain with apollo-require-preflight", http.MethodPost, "text/plain", map[string]string{"Apollo-Require-Preflight": "1"}, false},
		{"POST application/json", http.MethodPost, "application/json", nil, false},
		{"POST application/json with a charset", http.MethodPost, "application/json; charset=utf-8", nil, false},
		{"POST application/graphql-response+json", http.MethodPost, "application/graphql-response+json", nil, false},
		{"OPTIONS is left to CORS", http.MethodOptions, "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/query?query=%7B__typename%7D", strings.NewReader(`{"query":"{ __typename }"}`))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if !tc.wantBlocked {
				if w.Code != http.StatusOK {
					t.Fatalf("status = %d (%s), want the request let through", w.Code, w.Body)
				}
				return
			}
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", w.Code)
			}
			code, msg := decodeGraphQLError(t, w.Body.Bytes())
			if code != "BAD_REQUEST" || !strings.Contains(msg, "Cross-Site Request Forgery") {
				t.Errorf("error = %s %q, want BAD_REQUEST naming CSRF", code, msg)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	const max = 64
	h := limitBody(max, echoBody)
	send := func(body string, chunked bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if chunked {
			r.ContentLength = -1
			r.Body = io.NopCloser(strings.NewReader(body)) // no length known up front
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	atLimit := strings.Repeat("a", max)
	for _, chunked := range []bool{false, true} {
		if w := send(atLimit, chunked); w.Code != http.StatusOK || w.Body.String() != atLimit {
			t.Errorf("chunked=%v: a body of exactly the limit got %d %q, want it passed on whole", chunked, w.Code, w.Body)
		}
		w := send(atLimit+"b", chunked)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked=%v: a body one byte over the limit got %d, want 413", chunked, w.Code)
		}
		if code, msg := decodeGraphQLError(t, w.Body.Bytes()); code != "REQUEST_BODY_TOO_LARGE" || !strings.Contains(msg, "64 bytes") {
			t.Errorf("chunked=%v: error = %s %q, want REQUEST_BODY_TOO_LARGE naming the limit", chunked, code, msg)
		}
	}
}

func decodeGraphQLError(t *testing.T, body []byte) (code, message string) {
	t.Helper()
	var resp struct {
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Errors) != 1 {
		t.Fatalf("body %s: want a GraphQL response with one error (%v)", body, err)
	}
	return resp.Errors[0].Extensions.Code, resp.Errors[0].Message
}
