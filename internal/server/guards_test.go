package server

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/oceangraph/oceangraph/graph"
	"github.com/oceangraph/oceangraph/internal/httpguard"
)

func TestSettingsOfTheGuards(t *testing.T) {
	cfg, err := LoadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.CORSOrigins.Allows("http://localhost:5173") || cfg.CORSOrigins.Allows("https://example.com") {
		t.Errorf("sandbox default origins %v: want any localhost port and nothing else", cfg.CORSOrigins)
	}
	want := graph.GuardLimits{MaxComplexity: 20000, MaxDepth: 12, MaxUpstreamCalls: 60, APQCacheSize: 1000}
	if cfg.Guards != want || cfg.MaxBodyBytes != httpguard.DefaultMaxBodyBytes || cfg.OTLPEndpoint != "" {
		t.Errorf("defaults: guards %+v body %d otel %q; want %+v, %d and no tracing", cfg.Guards, cfg.MaxBodyBytes, cfg.OTLPEndpoint, want, httpguard.DefaultMaxBodyBytes)
	}

	prod, err := LoadConfig(nil, func(k string) string {
		return map[string]string{"DIGITALOCEAN_API_URL": "https://api.digitalocean.com"}[k]
	})
	if err != nil || len(prod.CORSOrigins) != 0 {
		t.Errorf("with a real API URL: origins %v (%v), want none by default", prod.CORSOrigins, err)
	}
	if none, _ := LoadConfig([]string{"-cors-allowed-origins", "none"}, func(string) string { return "" }); len(none.CORSOrigins) != 0 {
		t.Errorf("none: origins %v, want none", none.CORSOrigins)
	}

	set, err := LoadConfig(nil, func(k string) string {
		return map[string]string{
			"CORS_ALLOWED_ORIGINS": "https://app.example.com", "MAX_BODY_BYTES": "4096", "MAX_COMPLEXITY": "500",
			"MAX_DEPTH": "6", "MAX_UPSTREAM_CALLS": "30", "APQ_CACHE_SIZE": "10", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if !set.CORSOrigins.Allows("https://app.example.com") || set.CORSOrigins.Allows("http://localhost:5173") ||
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
		_, err := LoadConfig(nil, func(k string) string { return map[string]string{env: bad}[k] })
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%q: error %v, want one naming %s", env, bad, err, env)
		}
	}
}

// TestRunningServerGuardsAndMetrics drives the real server (run, with the
// built-in sandbox) over loopback: what a browser and a scraper see.
func TestRunningServerGuardsAndMetrics(t *testing.T) {
	base := startServer(t, serverOptions{}).url
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
