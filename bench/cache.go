package main

// The cache of issued invoices' data (issue 11) as the benchmark sees it: the
// server's own metrics of it, read after a load, prove that a load was cold
// (no lookup answered from the cache) and say how many bytes it held.

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// cacheUse is the server's cache metrics after a load.
type cacheUse struct {
	// Lookups counts oceangraph_cache_lookups_total by source (upstream: a miss).
	Lookups map[string]float64
	// Bytes is oceangraph_cache_bytes, what the in-process tier holds.
	Bytes float64
	// HeapInuse and NextGC are the Go runtime's go_memstats_heap_inuse_bytes
	// and go_memstats_next_gc_bytes (the heap goal) when scraped.
	HeapInuse, NextGC float64
	// On: the server exports the cache's metrics, so its cache is on. False
	// also where the process has no /metrics (a floor).
	On bool
}

// Hits counts the lookups answered without an upstream call.
func (c cacheUse) Hits() float64 {
	return c.Lookups["memory"] + c.Lookups["shared"] + c.Lookups["joined"]
}

// Misses counts the lookups that called DigitalOcean.
func (c cacheUse) Misses() float64 { return c.Lookups["upstream"] }

func (c cacheUse) String() string {
	if !c.On {
		return "off"
	}
	return fmt.Sprintf("%.0f hits, %.0f misses, %.1f MiB held", c.Hits(), c.Misses(), c.Bytes/(1<<20))
}

// scrapeCache reads the cache's metrics from the server at url. A server
// without a cache (CACHE_BYTES=0) exports none: On is false.
func scrapeCache(ctx context.Context, url string) (cacheUse, error) {
	c := cacheUse{Lookups: map[string]float64{}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return c, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name, labels, _ := strings.Cut(series, "{"); name {
		case "oceangraph_cache_bytes":
			c.Bytes, c.On = v, true
		case "go_memstats_heap_inuse_bytes":
			c.HeapInuse = v
		case "go_memstats_next_gc_bytes":
			c.NextGC = v
		case "oceangraph_cache_lookups_total":
			_, source, _ := strings.Cut(labels, `source="`)
			source, _, _ = strings.Cut(source, `"`)
			c.Lookups[source] = v
		}
	}
	return c, sc.Err()
}

// The cache suite (issue 11): what the cache costs a cold query in CPU, and
// whether memory stays within its byte budget when it is offered far more.

// Systems of the CPU rows: the same server without and with its cache.
const (
	systemCacheOff = "server, CACHE_BYTES=0"
	systemCacheOn  = "server, cache on (cold)"
)

// maxCacheCPURatio is issue 11's target: the cache adds at most 5% CPU to a cold query.
const maxCacheCPURatio = 1.05

// cacheSuite is the suite's results.
type cacheSuite struct {
	// CPU holds the CPU rows of both systems (Round, System, Query, row).
	CPU floorSuite
	// Queries names the queries measured, in order.
	Queries []string
}

// cacheLoad is one query of the CPU rows.
type cacheLoad struct {
	name string
	body []byte
}

// runCacheSuite measures, for cfg.Rounds rounds, each query's server CPU per
// query at 0 ms upstream latency with cfg.FloorClients clients, each request
// with a fresh token, on a fresh server without and with its cache (the order
// alternating).
func runCacheSuite(ctx context.Context, cfg benchConfig, rg *rig) (cacheSuite, error) {
	var s cacheSuite
	uuids, err := invoiceUUIDs(ctx, rg.sandbox.URL, cfg.Token, 3)
	if err != nil {
		return s, err
	}
	// The 27-call dashboard exercises the cache most (24 entries a query); the
	// peers' invoices mark 12 invoices issued; their volumes only derive the token's keys.
	loads := []cacheLoad{
		{dashboard.Name, dashboard.body(uuids[0])},
		{peerDashboard.Name, peerDashboard.body(uuids)},
		{peerInvoices.Name, peerInvoices.body(uuids)},
		{peerVolumes.Name, peerVolumes.body(uuids)},
	}
	cold := cfg
	cold.Cold = true // measureTarget sends a fresh token per request
	// The rate budget is off in both, so that the difference is the cache's alone.
	env := map[string][]string{
		systemCacheOff: append(slices.Clone(cfg.ServerEnv), "CACHE_BYTES=0", "RATE_LIMIT_PER_MINUTE=0"),
		systemCacheOn:  append(slices.Clone(cfg.ServerEnv), "RATE_LIMIT_PER_MINUTE=0"),
	}
	if err := rg.ctl.setFaults(ctx, sandbox.Faults{}); err != nil {
		return s, err
	}
	for round := 1; round <= cfg.Rounds; round++ {
		order := []string{systemCacheOff, systemCacheOn}
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, l := range loads {
			if round == 1 {
				s.Queries = append(s.Queries, l.name)
			}
			for _, system := range order {
				name := fmt.Sprintf("cache-%s-%d", map[string]string{systemCacheOff: "off", systemCacheOn: "on"}[system], round)
				srv, err := startServer(ctx, rg.bin, name, rg.sandbox.URL, cfg.Concurrency, env[system], rg.dir)
				if err != nil {
					return s, err
				}
				r := measureTarget(ctx, cold, srv, rg.sandbox, rg.ctl, graphqlTarget(srv.URL, "", l.body), cfg.FloorClients, l.name)
				srv.stop()
				r.Query, r.Mode = query{Name: l.name}, system
				fmt.Println(r.progressLine())
				s.CPU.Rows = append(s.CPU.Rows, floorRow{Round: round, System: system, Query: l.name, row: r})
				if ctx.Err() != nil {
					return s, ctx.Err()
				}
			}
		}
	}
	return s, nil
}

// sameRoundRatios are the per-round on/off ratios of a query's CPU per query.
func (s cacheSuite) sameRoundRatios(name string) []float64 {
	var out []float64
	for _, on := range s.CPU.Rows {
		if on.System != systemCacheOn || on.Query != name {
			continue
		}
		for _, off := range s.CPU.Rows {
			if off.System == systemCacheOff && off.Query == name && off.Round == on.Round && off.CPUPerRequest > 0 {
				out = append(out, cpuMs(on.row)/cpuMs(off.row))
			}
		}
	}
	return out
}

const cacheCommand = "go run ./bench -only cache"

// targets are issue 11's cache figures beside what the suite measured.
func (s cacheSuite) targets(cfg benchConfig) []target {
	var ts []target
	for _, name := range s.Queries {
		on, ons := s.CPU.median(systemCacheOn, name, 0, cpuMs)
		off, offs := s.CPU.median(systemCacheOff, name, 0, cpuMs)
		t := target{Name: fmt.Sprintf("%s: server CPU per cold query, cache on vs CACHE_BYTES=0, 0 ms, %d clients", name, cfg.FloorClients),
			Want: fmt.Sprintf("<= %.2f× (the cache adds <= 5%%)", maxCacheCPURatio), Command: cacheCommand}
		if len(ons) > 0 && off > 0 {
			ratio := on / off
			rssOn, _ := s.CPU.median(systemCacheOn, name, 0, rssMiB)
			rssOff, _ := s.CPU.median(systemCacheOff, name, 0, rssMiB)
			t.Measured, t.Met = true, ratio <= maxCacheCPURatio && s.CPU.clean(name) && s.cold(name)
			t.Got = fmt.Sprintf("%.3f ms vs %.3f ms = %.2f× (rounds: on %s, off %s ms; same-round ratios %s); peak RSS %.1f vs %.1f MiB; %s",
				on, off, ratio, fmtList(ons, "%.3f"), fmtList(offs, "%.3f"), fmtList(s.sameRoundRatios(name), "%.2f"), rssOn, rssOff, s.cacheNote(name))
		}
		ts = append(ts, t)
	}
	return ts
}

// cold reports whether every cache-on load of the query saw no hit and cost
// what one query alone did.
func (s cacheSuite) cold(name string) bool {
	for _, r := range s.CPU.Rows {
		if r.Query != name {
			continue
		}
		if r.System == systemCacheOn && (!r.Cache.On || r.Cache.Hits() > 0) || r.CallsUnderLoad > 0 && math.Abs(r.CallsUnderLoad-float64(r.Calls)) > 0.01 {
			return false
		}
	}
	return true
}

// cacheNote says what the cache did in the query's cache-on loads.
func (s cacheSuite) cacheNote(name string) string {
	var notes []string
	for _, r := range s.CPU.Rows {
		if r.Query == name && r.System == systemCacheOn {
			notes = append(notes, r.Cache.String())
		}
	}
	return fmt.Sprintf("upstream calls %d a query in both; cache after each on-load: %s", s.calls(name), strings.Join(notes, "; "))
}

func (s cacheSuite) calls(name string) int {
	for _, r := range s.CPU.Rows {
		if r.Query == name {
			return r.Calls
		}
	}
	return 0
}
