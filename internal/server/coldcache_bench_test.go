package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// BenchmarkServerColdDashboard sends the 27-call dashboard with a fresh token
// each time, the cache on (CACHE_BYTES) or off: the cache's cost for a cold
// query, for profiles (README, "The cache's figures").
//
//	go test -run '^$' -bench ServerColdDashboard -benchmem ./internal/server
func BenchmarkServerColdDashboard(b *testing.B) {
	for _, cacheBytes := range []string{"0", "67108864"} {
		b.Run("CACHE_BYTES="+cacheBytes, func(b *testing.B) {
			env := map[string]string{"DIGITALOCEAN_TOKEN": "bench", "LOG_FORMAT": "json", "RATE_LIMIT_PER_MINUTE": "0", "CACHE_BYTES": cacheBytes}
			srv := startServer(b, serverOptions{upstream: sandbox.New(sandbox.Options{AccountToken: "bench"}), logs: io.Discard, untraced: true, env: env})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			body, _ := json.Marshal(map[string]any{"query": queries.Dashboard})
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := coldPost(client, srv.url, body, fmt.Sprint("Bearer cold-", n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
