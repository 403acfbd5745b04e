package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// benchEnv is the server's settings in the benchmarks: no rate budget (a
// benchmark is far past DigitalOcean's 250 calls a minute) and no cache
// across requests (each request's own work is measured).
var benchEnv = map[string]string{"DIGITALOCEAN_TOKEN": "bench", "LOG_FORMAT": "json", "RATE_LIMIT_PER_MINUTE": "0", "CACHE_BYTES": "0"}

// BenchmarkServerVolumesPage drives volumes(first: 20) through the whole
// server (access log, metrics, CORS/CSRF guards, query guards, loaders,
// client) against a sandbox in the same process, from parallel clients. The
// load benchmark in bench/ measures the same across processes; this one is
// for profiles (README, Benchmark).
func BenchmarkServerVolumesPage(b *testing.B) {
	srv := startServer(b, serverOptions{upstream: sandbox.New(sandbox.Options{}), logs: io.Discard, untraced: true, env: benchEnv})
	const body = `{"query":"{ volumes(first: 20) { totalCount nodes { id name sizeGigabytes region { slug name } dropletIds tags createdAt } } }"}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := benchPost(client, srv.url, body); err != nil {
				b.Error(err) // not Fatal: this is not the benchmark's goroutine
				return
			}
		}
	})
}

// BenchmarkServerPeersDashboard sends the peers' 7-call dashboard
// (queries.PeersDashboard) from one client, one after the other: the path
// whose wall time the one-client latency target measures.
func BenchmarkServerPeersDashboard(b *testing.B) {
	srv := startServer(b, serverOptions{upstream: sandbox.New(sandbox.Options{}), logs: io.Discard, untraced: true, env: benchEnv})
	client := &http.Client{}
	var page struct {
		Data struct {
			Invoices struct{ Nodes []struct{ UUID string } }
		}
	}
	out, err := benchPost(client, srv.url, `{"query":"{ invoices(first: 3) { nodes { uuid } } }"}`)
	if err == nil {
		err = json.Unmarshal(out, &page)
	}
	if err != nil || len(page.Data.Invoices.Nodes) < 3 {
		b.Fatalf("three invoices: %v %s", err, out)
	}
	n := page.Data.Invoices.Nodes
	body, _ := json.Marshal(map[string]any{"query": queries.PeersDashboard, "variables": map[string]string{"a": n[0].UUID, "b": n[1].UUID, "c": n[2].UUID}})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := benchPost(client, srv.url, string(body)); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPost sends one query; a non-200 or an answer with errors is an error.
func benchPost(client *http.Client, url, body string) ([]byte, error) {
	resp, err := client.Post(url+"/query", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && (resp.StatusCode != 200 || strings.Contains(string(out), `"errors"`)) {
		err = fmt.Errorf("status %d: %s", resp.StatusCode, out)
	}
	return out, err
}
