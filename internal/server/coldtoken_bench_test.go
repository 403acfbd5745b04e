package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// BenchmarkServerColdTokenMemory sends the peers' three queries as the bench's
// cold loads do, a fresh token a request, every feature on (cache, rate budget),
// and reports the heap each token leaves behind (retained-B/token: the live heap
// after a collection, less the one before the load, over the tokens). Under the
// GC's goal of 5× the live heap outside the cache, each byte here is about five
// of peak RSS. The sandbox sees one token (a fresh token's own view of
// DigitalOcean's limit is put back on its answers), so its per-token state is not counted.
//
//	go test -run '^$' -bench ServerColdTokenMemory -benchtime 5000x ./internal/server
func BenchmarkServerColdTokenMemory(b *testing.B) {
	for _, q := range []struct {
		name, query string
		uuids       bool
	}{
		{"PeersVolumes", queries.PeersVolumes, false},
		{"PeersInvoices", queries.PeersInvoices, false},
		{"PeersDashboard", queries.PeersDashboard, true},
	} {
		b.Run(q.name, func(b *testing.B) {
			env := map[string]string{"LOG_FORMAT": "json"}
			up := oneTokenUpstream{sandbox.New(sandbox.Options{AccountToken: "bench", RequestLog: 1})}
			srv := startServer(b, serverOptions{upstream: up, logs: io.Discard, untraced: true, env: env})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			req := map[string]any{"query": q.query}
			if q.uuids {
				req["variables"] = threeInvoices(b, srv.url, client)
			}
			body, _ := json.Marshal(req)
			send := func(phase string, count int) {
				var n atomic.Int64
				var wg sync.WaitGroup
				for range 20 { // the bench's clients
					wg.Go(func() {
						for i := n.Add(1); i <= int64(count); i = n.Add(1) {
							if err := coldPost(client, srv.url, body, fmt.Sprint("Bearer ", phase, "-", i)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			}
			send("warm-up", 500) // connections, pools, gqlgen's query cache: paid once, not per token
			before := liveHeap()
			b.ResetTimer()
			send("cold", b.N)
			b.StopTimer()
			b.ReportMetric(float64(int64(liveHeap())-int64(before))/float64(b.N), "retained-B/token")

		})
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func coldPost(client *http.Client, url string, body []byte, authorization string) error {
	req, _ := http.NewRequest("POST", url+"/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", authorization)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(out), `"errors"`) {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, out)
	}
	return nil
}

// threeInvoices is the PeersDashboard's $a, $b, $c: three of the account's invoices.
func threeInvoices(b *testing.B, url string, client *http.Client) map[string]string {
	req, _ := http.NewRequest("POST", url+"/query", strings.NewReader(`{"query":"{ invoices(first: 3) { nodes { uuid } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer bench")
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Invoices struct{ Nodes []struct{ UUID string } }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Data.Invoices.Nodes) < 3 {
		b.Fatalf("three invoices: %v %+v", err, out)
	}
	n := out.Data.Invoices.Nodes
	return map[string]string{"a": n[0].UUID, "b": n[1].UUID, "c": n[2].UUID}
}

// oneTokenUpstream is the sandbox seen through one token, whatever the request
// carries, answering each with the rate-limit headers of a fresh token's first call.
type oneTokenUpstream struct{ sb *sandbox.Sandbox }

func (u oneTokenUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Header.Set("Authorization", "Bearer bench")
	u.sb.ServeHTTP(&freshLimit{ResponseWriter: w}, r)
}

type freshLimit struct {
	http.ResponseWriter
	wrote bool
}

func (f *freshLimit) WriteHeader(code int) {
	if !f.wrote {
		f.wrote = true
		if h := f.Header(); h.Get("Ratelimit-Remaining") != "" {
			h.Set("Ratelimit-Remaining", strconv.Itoa(5000-1))
			h.Set("Ratelimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
		}
	}
	f.ResponseWriter.WriteHeader(code)
}

func (f *freshLimit) Write(p []byte) (int, error) {
	if !f.wrote {
		f.WriteHeader(http.StatusOK)
	}
	return f.ResponseWriter.Write(p)
}
