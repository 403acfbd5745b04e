package server

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// BenchmarkServerVolumesPage drives volumes(first: 20) through the whole
// server (access log, metrics, CORS/CSRF guards, query guards, loaders,
// client) against a sandbox in the same process, from parallel clients. The
// load benchmark in bench/ measures the same across processes; this one is
// for profiles (README, Benchmark). No rate budget: a benchmark is far past
// DigitalOcean's 250 calls a minute.
func BenchmarkServerVolumesPage(b *testing.B) {
	srv := startServer(b, serverOptions{upstream: sandbox.New(sandbox.Options{}), logs: io.Discard, untraced: true, env: map[string]string{"DIGITALOCEAN_TOKEN": "bench", "LOG_FORMAT": "json", "RATE_LIMIT_PER_MINUTE": "0"}})
	url := srv.url + "/query"
	const body = `{"query":"{ volumes(first: 20) { totalCount nodes { id name sizeGigabytes region { slug name } dropletIds tags createdAt } } }"}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.Contains(string(out), `"errors"`) {
				b.Errorf("status %d: %s", resp.StatusCode, out)
				return
			}
		}
	})
}
