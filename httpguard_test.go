package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oceangraph/oceangraph/graph"
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

func mustOrigins(t *testing.T, raw string) originList {
	t.Helper()
	l, err := parseOrigins(raw)
	if err != nil {
		t.Fatalf("parseOrigins(%q): %v", raw, err)
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
		if _, err := parseOrigins(raw); err == nil {
			t.Errorf("parseOrigins(%q) = nil error, want a refusal", raw)
		}
	}
	if l := mustOrigins(t, " , "); len(l) != 0 {
		t.Errorf("parseOrigins(blank) = %v, want no origin", l)
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
		if got := list.allows(origin); got != want {
			t.Errorf("allows(%q) = %v, want %v", origin, got, want)
		}
	}
}

func TestCORS(t *testing.T) {
	h := guardQuery(mustOrigins(t, "https://app.example.com"), defaultMaxBodyBytes, echoBody)
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
		off := guardQuery(nil, defaultMaxBodyBytes, echoBody)
		assertNoCORSHeaders(t, postJSON(off, "https://app.example.com", `{}`).Header())
	})

	t.Run("* allows every origin but never with credentials", func(t *testing.T) {
		all := guardQuery(mustOrigins(t, "*"), defaultMaxBodyBytes, echoBody)
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

func TestSettingsOfTheGuards(t *testing.T) {
	cfg, err := loadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.CORSOrigins.allows("http://localhost:5173") || cfg.CORSOrigins.allows("https://example.com") {
		t.Errorf("sandbox default origins %v: want any localhost port and nothing else", cfg.CORSOrigins)
	}
	want := graph.GuardLimits{MaxComplexity: 20000, MaxDepth: 12, MaxUpstreamCalls: 60, APQCacheSize: 1000}
	if cfg.Guards != want || cfg.MaxBodyBytes != defaultMaxBodyBytes || cfg.OTLPEndpoint != "" {
		t.Errorf("defaults: guards %+v body %d otel %q; want %+v, %d and no tracing", cfg.Guards, cfg.MaxBodyBytes, cfg.OTLPEndpoint, want, defaultMaxBodyBytes)
	}

	prod, err := loadConfig(nil, func(k string) string {
		return map[string]string{"DIGITALOCEAN_API_URL": "https://api.digitalocean.com"}[k]
	})
	if err != nil || len(prod.CORSOrigins) != 0 {
		t.Errorf("with a real API URL: origins %v (%v), want none by default", prod.CORSOrigins, err)
	}
	if none, _ := loadConfig([]string{"-cors-allowed-origins", "none"}, func(string) string { return "" }); len(none.CORSOrigins) != 0 {
		t.Errorf("none: origins %v, want none", none.CORSOrigins)
	}

	set, err := loadConfig(nil, func(k string) string {
		return map[string]string{
			"CORS_ALLOWED_ORIGINS": "https://app.example.com", "MAX_BODY_BYTES": "4096", "MAX_COMPLEXITY": "500",
			"MAX_DEPTH": "6", "MAX_UPSTREAM_CALLS": "30", "APQ_CACHE_SIZE": "10", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if !set.CORSOrigins.allows("https://app.example.com") || set.CORSOrigins.allows("http://localhost:5173") ||
		set.MaxBodyBytes != 4096 || set.Guards != (graph.GuardLimits{MaxComplexity: 500, MaxDepth: 6, MaxUpstreamCalls: 30, APQCacheSize: 10}) ||
		set.OTLPEndpoint != "http://127.0.0.1:4318" {
		t.Errorf("settings from the environment not read: %+v", set)
	}

	for env, bad := range map[string]string{
		"CORS_ALLOWED_ORIGINS":        "app.example.com",
		"MAX_BODY_BYTES":              "1",
		"MAX_UPSTREAM_CALLS":          "0",
		"MAX_DEPTH":                   "deep",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318",
	} {
		_, err := loadConfig(nil, func(k string) string { return map[string]string{env: bad}[k] })
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%q: error %v, want one naming %s", env, bad, err, env)
		}
	}
}

// TestRunningServerGuardsAndMetrics drives the real server (run, with the
// built-in sandbox) over loopback: what a browser and a scraper see.
func TestRunningServerGuardsAndMetrics(t *testing.T) {
	cfg, err := loadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = 0 // an ephemeral port
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(a string) { addr <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run stopped before listening: %v", err)
	}
	send := func(method, path, contentType, body string, header map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	const query = `{"query":"query Vols { volumes(first: 2) { nodes { id } } }"}`

	if resp := send(http.MethodPost, "/query", "application/x-www-form-urlencoded", "query=%7B__typename%7D", map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a cross-site form POST answered %d, want 400", resp.StatusCode)
	}
	resp := send(http.MethodPost, "/query", "application/json", query, map[string]string{"Origin": "https://evil.example"})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("an unlisted origin got Access-Control-Allow-Origin %q", got)
	}
	resp = send(http.MethodPost, "/query", "application/json", query, map[string]string{"Origin": "http://localhost:5173", "X-Request-Id": "run-1"})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:5173" {
		t.Errorf("a local dev origin (allowed by default with the sandbox) got Access-Control-Allow-Origin %q", got)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "run-1" {
		t.Errorf("X-Request-Id = %q, want the caller's", got)
	}
	metrics, _ := io.ReadAll(send(http.MethodGet, "/metrics", "", "", nil).Body)
	for _, want := range []string{
		`oceangraph_upstream_requests_total{endpoint="GET /v2/volumes",status="200"} 2`, // one per query
		`oceangraph_graphql_requests_total{operation="Vols",outcome="ok"} 2`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
