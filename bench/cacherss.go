package main

// The cache's memory (issue 11): "RSS stays within the cache byte budget
// under a 10,000-invoice workload". Each of ~417 tokens (a sandbox account of
// 24 issued invoices each, so ~10,000 invoices) lists its invoices and loads
// every one's summary and whole items page, each entry loaded once, so the
// cache is offered far more than its budget and must evict. The same workload
// runs on a server without the cache, whose peak RSS is the baseline.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"
)

// The workload's two operations: a token's invoice list (which marks its
// invoices issued, so their data may be cached), and one invoice's summary,
// every item (one page of up to 200; the sandbox's have at most ~180) and,
// with -rss-files, its CSV and PDF.
const (
	rssListQuery    = `query RSSList { invoices(first: 24) { nodes { uuid } } }`
	rssInvoiceQuery = `query RSSInvoice($uuid: ID!) { invoice(uuid: $uuid) { summary { amount } items(first: 200) { totalCount nodes { amount } } } }`
	rssFilesQuery   = `query RSSInvoice($uuid: ID!) { invoice(uuid: $uuid) { summary { amount } items(first: 200) { totalCount nodes { amount } } files { csv { byteSize } pdf { byteSize } } } }`
)

// rssRun is one server's run of the workload.
type rssRun struct {
	Env      []string
	Requests int
	Calls    int   // counted at the sandbox
	HWM      int64 // peak RSS over the workload
	Base     int64 // RSS before it
	Cache    cacheUse
	Took     time.Duration
}

// rssResult is the memory measurement: the workload without and with the cache.
type rssResult struct {
	Budget    int64
	Tokens    int
	Invoices  int
	Workers   int
	Files     bool
	Off, On   rssRun
	FirstCost cost // the first token's first invoice loaded again after the workload
	LastCost  cost // the last token's
	Problem   string
}

// cost is a response's extensions.cost.
type cost struct {
	UpstreamCalls int `json:"upstreamCalls"`
	CacheHits     int `json:"cacheHits"`
}

// measureCacheRSS runs the workload against a sandbox of its own (one account
// per token: every invoice distinct) on a server without the cache, then on
// one with a budget of cfg.RSSBudget bytes.
func measureCacheRSS(ctx context.Context, cfg benchConfig, rg *rig) rssResult {
	res := rssResult{Budget: cfg.RSSBudget, Tokens: (cfg.RSSInvoices + 23) / 24, Workers: 8, Files: cfg.RSSFiles}
	res.Invoices = res.Tokens * 24
	sb, ctl, err := startSandbox(ctx, rg.bin, rg.dir)
	if err != nil {
		res.Problem = err.Error()
		return res
	}
	defer sb.stop()
	runID := fmt.Sprintf("rss-%d-%d", os.Getpid(), time.Now().UnixNano())
	for i, run := range []*rssRun{&res.Off, &res.On} {
		run.Env = append(append([]string{}, cfg.ServerEnv...), fmt.Sprintf("CACHE_BYTES=%d", cfg.RSSBudget))
		if i == 0 {
			run.Env = append(append([]string{}, cfg.ServerEnv...), "CACHE_BYTES=0")
		}
		// Fresh tokens per run, so that the sandbox's rate-limit windows start empty.
		tokens := make([]string, res.Tokens)
		for t := range tokens {
			tokens[t] = fmt.Sprintf("%s-%d-%d", runID, i, t)
		}
		srv, err := startServer(ctx, rg.bin, fmt.Sprintf("server-rss-%d", i), sb.URL, cfg.Concurrency, run.Env, rg.dir)
		if err != nil {
			res.Problem = err.Error()
			return res
		}
		if err := ctl.reset(ctx); err == nil {
			err = run.measure(ctx, srv, tokens, res.Workers, cfg.RSSFiles)
			if st, serr := ctl.stats(ctx); serr == nil {
				run.Calls = st.Total
			}
			if err == nil && i == 1 {
				res.FirstCost, err = loadInvoiceCost(ctx, srv.URL, tokens[0], sb.URL, cfg.RSSFiles)
				if err == nil {
					res.LastCost, err = loadInvoiceCost(ctx, srv.URL, tokens[len(tokens)-1], sb.URL, cfg.RSSFiles)
				}
			}
		}
		srv.stop()
		fmt.Printf("cache-rss %-14s %d requests, %d upstream calls in %v: peak RSS %.1f MiB (%.1f before); cache %s; Go heap in use %.1f MiB, goal %.1f MiB\n",
			map[int]string{0: "CACHE_BYTES=0", 1: "cache on"}[i], run.Requests, run.Calls, run.Took.Round(time.Second),
			float64(run.HWM)/(1<<20), float64(run.Base)/(1<<20), run.Cache, run.Cache.HeapInuse/(1<<20), run.Cache.NextGC/(1<<20))
		if err != nil {
			res.Problem = err.Error()
			return res
		}
	}
	return res
}

// measure runs the workload on srv with workers concurrent clients, each
// taking a token at a time: its list, then each invoice in turn.
func (run *rssRun) measure(ctx context.Context, srv *process, tokens []string, workers int, files bool) error {
	client := newLoadClient(workers)
	defer client.CloseIdleConnections()
	base, _ := readProc(srv.pid())
	run.Base = base.RSS
	resetPeakRSS(srv.pid())
	began := time.Now()
	jobs := make(chan string)
	var (
		mu       sync.Mutex
		firstErr error
		requests int
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for token := range jobs {
				n, err := loadAccount(ctx, client, srv.URL, token, files)
				mu.Lock()
				requests += n
				mu.Unlock()
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	for _, t := range tokens {
		if ctx.Err() != nil {
			break
		}
		jobs <- t
	}
	close(jobs)
	wg.Wait()
	run.Took = time.Since(began)
	after, _ := readProc(srv.pid())
	run.HWM, run.Requests = after.HWM, requests
	run.Cache, _ = scrapeCache(ctx, srv.URL)
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// loadAccount lists the token's invoices and loads each one's summary and items.
func loadAccount(ctx context.Context, client *http.Client, url, token string, files bool) (requests int, err error) {
	var list struct {
		Data struct {
			Invoices struct {
				Nodes []struct {
					UUID string `json:"uuid"`
				} `json:"nodes"`
			} `json:"invoices"`
		} `json:"data"`
	}
	if err := postQuery(ctx, client, url, token, rssListQuery, nil, &list); err != nil {
		return 1, err
	}
	requests = 1
	text := rssInvoiceQuery
	if files {
		text = rssFilesQuery
	}
	for _, n := range list.Data.Invoices.Nodes {
		requests++
		if err := postQuery(ctx, client, url, token, text, map[string]any{"uuid": n.UUID}, nil); err != nil {
			return requests, err
		}
	}
	return requests, nil
}

// loadInvoiceCost loads the token's newest invoice again and returns what that cost.
func loadInvoiceCost(ctx context.Context, url, token, sandboxURL string, files bool) (cost, error) {
	uuids, err := invoiceUUIDs(ctx, sandboxURL, token, 1)
	if err != nil {
		return cost{}, err
	}
	var out struct {
		Extensions struct {
			Cost cost `json:"cost"`
		} `json:"extensions"`
	}
	text := rssInvoiceQuery
	if files {
		text = rssFilesQuery
	}
	err = postQuery(ctx, http.DefaultClient, url, token, text, map[string]any{"uuid": uuids[0]}, &out)
	return out.Extensions.Cost, err
}

// postQuery sends one GraphQL request and decodes the whole response into
// out (may be nil); it fails on a status other than 200 or on errors.
func postQuery(ctx context.Context, client *http.Client, url, token, text string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": text, "variables": vars})
	b, err := postGraphQL(ctx, client, url, token, body)
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// targets: peak RSS with the cache within the baseline's plus the budget, the
// cache's own count within the budget, and proof that it evicted.
func (r rssResult) targets() []target {
	name := fmt.Sprintf("a %d-invoice workload (%d tokens × 24, summary + items of each", r.Invoices, r.Tokens)
	if r.Files {
		name += " + CSV and PDF"
	}
	name += fmt.Sprintf(", %d clients): server peak RSS with CACHE_BYTES=%s", r.Workers, mib(r.Budget))
	t := target{Name: name, Want: "<= the same workload's peak RSS with CACHE_BYTES=0 + the budget", Command: "go run ./bench -only cache-rss"}
	switch {
	case r.Problem != "":
		t.Got = "not measured: " + r.Problem
	case r.On.HWM > 0 && r.Off.HWM > 0:
		limit := r.Off.HWM + r.Budget
		t.Measured, t.Met = true, r.On.HWM <= limit
		t.Got = fmt.Sprintf("%s (limit %s = %s + %s); the cache held %s of its %s at the end (oceangraph_cache_bytes), %.0f entries loaded, %.0f hits; "+
			"loaded again afterwards, the first token's newest invoice cost %d upstream calls and %d cache hits, the last token's %d and %d; %d requests, %d upstream calls, %v (without the cache %d calls, %v)",
			mib(r.On.HWM), mib(limit), mib(r.Off.HWM), mib(r.Budget), mib(int64(r.On.Cache.Bytes)), mib(r.Budget), r.On.Cache.Misses(), r.On.Cache.Hits(),
			r.FirstCost.UpstreamCalls, r.FirstCost.CacheHits, r.LastCost.UpstreamCalls, r.LastCost.CacheHits,
			r.On.Requests, r.On.Calls, r.On.Took.Round(time.Second), r.Off.Calls, r.Off.Took.Round(time.Second))
	}
	return []target{t}
}
