package sandbox

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/upstream"
)

// BenchmarkRound20ms times rounds of reads against a sandbox answering in
// 20 ms, through the server's HTTP client settings: one GET, and the peers'
// dashboard's 7 concurrent GETs. What a round costs over 20 ms is what every
// round of a query pays (README, One-client latency).
func BenchmarkRound20ms(b *testing.B) {
	srv := httptest.NewServer(New(Options{Latency: 20 * time.Millisecond}))
	defer srv.Close()
	client := upstream.NewHTTPClient()
	get := func(path string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer bench")
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	const list = "/v2/customers/my/invoices?page=1&per_page=12"
	seven := []string{list}
	for range 3 {
		seven = append(seven, "/v2/customers/my/invoices/preview/summary", "/v2/customers/my/invoices/preview?page=1&per_page=5")
	}
	for _, calls := range [][]string{{list}, seven} {
		b.Run(map[int]string{1: "1GET", 7: "7GETs"}[len(calls)], func(b *testing.B) {
			var rounds []time.Duration
			for b.Loop() {
				start := time.Now()
				var wg sync.WaitGroup
				for _, path := range calls {
					wg.Go(func() { get(path) })
				}
				wg.Wait()
				rounds = append(rounds, time.Since(start))
			}
			slices.Sort(rounds)
			b.ReportMetric(float64(rounds[len(rounds)/2])/1e6, "p50-ms")
		})
	}
}
