package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// panicWatch is a log sink that keeps only what the fuzzer needs: whether
// the server ever logged a panic (a recovered resolver, or net/http's own).
type panicWatch struct {
	mu    sync.Mutex
	lines []string
}

func (p *panicWatch) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("panic in resolver")) || bytes.Contains(b, []byte("http: panic serving")) {
		p.mu.Lock()
		p.lines = append(p.lines, string(b))
		p.mu.Unlock()
	}
	return len(b), nil
}

func (p *panicWatch) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lines
	p.lines = nil
	return l
}

// FuzzServerRequest sends arbitrary HTTP requests through the whole running
// server (CORS, CSRF prevention, the body limit, logs and metrics, the guards,
// the GraphQL handler, the downloads): nothing panics, nothing answers 5xx,
// and /query always answers a JSON GraphQL response whose errors carry codes.
//
//	go test -run '^$' -fuzz '^FuzzServerRequest$' -fuzztime 30s .
func FuzzServerRequest(f *testing.F) {
	watch := &panicWatch{}
	s := startRunningServerLogging(f, watch)
	volumesBody := `{"query":"{ volumes(first: 2) { nodes { id } } }"}`
	f.Add("POST", "/query", "application/json", volumesBody, "")
	f.Add("POST", "/query", "application/json; charset=utf-8", `{"query":"query Q($n: Int) { invoices(first: $n) { nodes { uuid } } }","variables":{"n":3},"operationName":"Q"}`, listedOrigin)
	f.Add("POST", "/query", "application/json", `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"00"}}}`, "")
	f.Add("POST", "/query", "application/json", `{"query":"{ balance { accountBalance } }","variables":"x"}`, "")
	f.Add("POST", "/query", "application/json", `not json`, "")
	f.Add("POST", "/query", "text/plain", volumesBody, unlistedOrigin)
	f.Add("POST", "/query", "application/x-www-form-urlencoded", "query=%7B+volumes+%7B+nodes+%7B+id+%7D+%7D+%7D", unlistedOrigin)
	f.Add("GET", "/query?query=%7B+volumes+%7B+nodes+%7B+id+%7D+%7D+%7D", "", "", "preflight")
	f.Add("GET", "/query?query=%7B+volumes+%7B+nodes+%7B+id+%7D+%7D+%7D&variables=x", "", "", "preflight")
	f.Add("OPTIONS", "/query", "", "", listedOrigin)
	f.Add("PUT", "/query", "application/json", volumesBody, "")
	f.Add("0", "query? ", "", "0", "0") // a request line net/http itself refuses
	f.Add("POST", "query", "AppliCAtion/json", `{"eXtensions":{"persistedQuery":"" }}`, "")
	f.Add("POST", "/query", "application/json", strings.Repeat(`{"query":"`, 1000), "")
	f.Add("GET", "/files/AQ/invoice.pdf", "", "", "")
	f.Add("GET", "/invoices/preview/pdf", "", "", "")
	f.Add("GET", "/invoices/../../v2/volumes/csv", "", "", "")
	f.Add("GET", "/metrics", "", "", "")
	f.Add("GET", "/healthz", "", "", "")
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	f.Fuzz(func(t *testing.T, method, path, contentType, body, origin string) {
		target, err := url.Parse(s.url + "/" + strings.TrimPrefix(path, "/"))
		if err != nil || target.Host != strings.TrimPrefix(s.url, "http://") {
			return
		}
		req, err := http.NewRequest(method, target.String(), strings.NewReader(body))
		if err != nil {
			return
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		switch origin {
		case "":
		case "preflight":
			req.Header.Set("Apollo-Require-Preflight", "true")
		default:
			req.Header.Set("Origin", origin)
		}
		req.Header.Set("Authorization", "Bearer "+serverTokenAlice)
		resp, err := client.Do(req)
		if err != nil {
			if strings.Contains(err.Error(), "invalid") || strings.Contains(err.Error(), "malformed") {
				return // the client refused to send it (a bad method or header value)
			}
			t.Fatalf("%s %s: %v", method, target, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		panics := watch.take()
		if len(panics) > 0 {
			t.Fatalf("%s %s (content type %q, body %q) made the server log a panic: %s", method, target, contentType, body, panics[0])
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s (content type %q, body %q): HTTP %d: %s", method, target, contentType, body, resp.StatusCode, raw)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			return // net/http refused a request line it could not parse ("0 /query?  HTTP/1.1") before any handler of ours
		}
		if target.Path != "/query" || method == http.MethodOptions || method == http.MethodHead || resp.StatusCode/100 == 3 {
			return
		}
		var gql struct {
			Errors []struct {
				Message    string
				Extensions map[string]any
			}
		}
		if err := json.Unmarshal(raw, &gql); err != nil {
			t.Fatalf("%s %s: HTTP %d, body is not JSON: %s", method, target, resp.StatusCode, raw)
		}
		for _, e := range gql.Errors {
			code, _ := e.Extensions["code"].(string)
			if code == "" || code == "INTERNAL_SERVER_ERROR" {
				t.Fatalf("%s %s (content type %q, body %q): error with code %q: %s", method, target, contentType, body, code, e.Message)
			}
		}
	})
}
