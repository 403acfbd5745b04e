package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// TestFreshTokensNeverRepeat: every request of a load, and of two loads,
// carries a token of its own, and the target is otherwise unchanged.
func TestFreshTokensNeverRepeat(t *testing.T) {
	base := graphqlTarget("http://127.0.0.1:1", "fixed", []byte(`{"query":"{ x }"}`))
	seen := map[string]bool{}
	for range 2 {
		tr := freshTokens(base)
		for range 100 {
			var got vegeta.Target
			if err := tr(&got); err != nil {
				t.Fatal(err)
			}
			auth := got.Header.Get("Authorization")
			if !strings.HasPrefix(auth, "Bearer cold-") || seen[auth] {
				t.Fatalf("Authorization %q: want a fresh Bearer token", auth)
			}
			seen[auth] = true
			if got.URL != base.URL || string(got.Body) != string(base.Body) || got.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("target changed beyond its token: %+v", got)
			}
		}
	}
	if base.Header.Get("Authorization") != "Bearer fixed" {
		t.Errorf("the base target's header was changed: %q", base.Header.Get("Authorization"))
	}
}

// TestScrapeCache reads the cache's lookups, bytes and the heap figures from
// a Prometheus text page; a server without the cache's metrics is "off".
func TestScrapeCache(t *testing.T) {
	page := `# HELP oceangraph_cache_lookups_total x
# TYPE oceangraph_cache_lookups_total counter
oceangraph_cache_lookups_total{source="memory"} 3
oceangraph_cache_lookups_total{source="upstream"} 1.5e+06
oceangraph_cache_bytes 6.7108864e+07
go_memstats_heap_inuse_bytes 1.048576e+08
go_memstats_next_gc_bytes 2.097152e+08
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			w.Write([]byte(page))
		}
	}))
	defer srv.Close()
	c, err := scrapeCache(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !c.On || c.Hits() != 3 || c.Misses() != 1.5e6 || c.Bytes != 64<<20 || c.HeapInuse != 100<<20 || c.NextGC != 200<<20 {
		t.Errorf("scrapeCache = %+v", c)
	}
	page = "go_memstats_heap_inuse_bytes 1\n"
	if c, _ := scrapeCache(context.Background(), srv.URL); c.On || c.String() != "off" {
		t.Errorf("without the cache's metrics: %+v, want off", c)
	}
}

// TestColdTarget: one hit, a missing cache or more calls under load than
// alone fail the check; floors are not servers and are not checked.
func TestColdTarget(t *testing.T) {
	cold := row{Mode: "optimised", Calls: 7, CallsUnderLoad: 7, Load: loadResult{Requests: 10},
		Cache: cacheUse{On: true, Lookups: map[string]float64{"upstream": 60}}}
	floor := row{Mode: systemFloorServer, Load: loadResult{Requests: 10}}
	if tg := coldTarget([]row{cold, floor}); !tg.Measured || !tg.Met {
		t.Errorf("cold rows: %+v, want met", tg)
	}
	hit := cold
	hit.Cache = cacheUse{On: true, Lookups: map[string]float64{"memory": 1}}
	off := cold
	off.Cache = cacheUse{}
	more := cold
	more.CallsUnderLoad = 6.5
	for name, r := range map[string]row{"a hit": hit, "cache off": off, "fewer calls under load": more} {
		if tg := coldTarget([]row{cold, r}); !tg.Measured || tg.Met {
			t.Errorf("%s: %+v, want MISSED", name, tg)
		}
	}
}

// TestRSSRule: peak RSS with the cache may reach the baseline's plus the budget, no more.
func TestRSSRule(t *testing.T) {
	r := rssResult{Budget: 64 << 20, Tokens: 417, Invoices: 10_008, Workers: 8,
		Off: rssRun{HWM: 50 << 20}, On: rssRun{HWM: 114 << 20}}
	if tg := r.targets()[0]; !tg.Met || !tg.Measured {
		t.Errorf("at the limit: %+v, want met", tg)
	}
	r.On.HWM++
	if tg := r.targets()[0]; tg.Met {
		t.Errorf("a byte over: %+v, want MISSED", tg)
	}
	r.Problem = "sandbox down"
	if tg := r.targets()[0]; tg.Measured {
		t.Errorf("with a problem: %+v, want not measured", tg)
	}
}

// TestOnlyPicksSuitesAndTheirFile: -only takes a list of known suites and
// writes bench/<suites>-results.md unless -out says otherwise.
func TestOnlyPicksSuitesAndTheirFile(t *testing.T) {
	c, err := parseBenchFlags([]string{"-only", "cache,warm"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.runs("cache") || !c.runs("warm") || c.runs("floor") || c.Out != "bench/cache+warm-results.md" {
		t.Errorf("-only cache,warm: runs cache %v warm %v floor %v, out %q", c.runs("cache"), c.runs("warm"), c.runs("floor"), c.Out)
	}
	if c, _ := parseBenchFlags(nil); !c.runs("canonical") || !c.runs("cache-rss") || c.Out != "bench/results.md" || !c.Cold {
		t.Errorf("no flags: %+v, want every suite, cold, into bench/results.md", c)
	}
	if c, _ := parseBenchFlags([]string{"-only", "floor-latency"}); !c.runs("floor-latency") || c.runs("floor") || c.Out != "bench/floor-latency-results.md" {
		t.Errorf("-only floor-latency: runs floor-latency %v floor %v, out %q; want only the floor suite's 20 ms rows", c.runs("floor-latency"), c.runs("floor"), c.Out)
	}
	if _, err := parseBenchFlags([]string{"-only", "flor"}); err == nil {
		t.Error("-only flor: no error")
	}
	if c, _ := parseBenchFlags([]string{"-cold=false"}); !strings.Contains(strings.Join(c.serverEnv(), " "), "CACHE_BYTES=0") {
		t.Errorf("-cold=false: server env %q, want CACHE_BYTES=0", c.serverEnv())
	}
}

// RSS figures are computed in MiB (2^20 bytes) and must say so: printed as
// "MB" they read as met against a MiB target they had missed.
func TestRSSFiguresSayMiB(t *testing.T) {
	if got := mib(48 << 20); got != "48.0 MiB" {
		t.Errorf("mib(48 MiB) = %q", got)
	}
	if got := rssTrend([]int64{20 << 20, 50 << 20}); got != "20 → 50 MiB" {
		t.Errorf("rssTrend = %q", got)
	}
}
