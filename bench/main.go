// Command bench measures oceangraph the way a user would run it: the server
// binary as a process, pointed at the sandbox running as another process on
// its own loopback port with added latency, driven by a real load generator
// (vegeta). It reports, per canonical query, the upstream calls per query
// (counted at the sandbox), p50/p95/p99 latency, requests per second, and the
// server's CPU and peak RSS, optimised and naive side by side, plus the RSS
// growth while streaming a large PDF. `bench soak` is the load-and-soak run.
//
//	go run ./bench                                 # the full benchmark (~4 min); writes bench/results.md
//	go run ./bench -quick                          # a short run (~1 min)
//	go run ./bench -only floor                     # the issue-12 queries beside the floor (~5 min)
//	go run ./bench -only floor-latency -rounds 4   # only its one-client 20 ms rows (light on CPU)
//	go run ./bench soak -duration 60s -clients 200 # 5% 5xx + 1% 429 injected upstream
//	go run ./bench floor -upstream URL             # the floor alone (the benchmark starts it itself)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "soak":
		err = runSoak(ctx, os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "floor":
		err = runFloor(ctx, os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "warm":
		err = runWarm(ctx, os.Args[2:])
	default:
		err = runBench(ctx, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// benchConfig is the benchmark's flags.
type benchConfig struct {
	Quick       bool
	Duration    time.Duration
	Warmup      time.Duration
	Clients     int
	Latencies   []time.Duration
	Concurrency int
	NaiveEnv    []string
	ServerEnv   []string
	PDFSize     int64
	Token       string
	Out         string
	Args        []string
	// Only is the suites to run, comma-separated (canonical, floor, cache, warm); "": all.
	Only string
	// RSSBudget is the cache's byte budget in the memory workload; RSSInvoices
	// its size; RSSFiles adds each invoice's CSV and PDF.
	RSSBudget   int64
	RSSInvoices int
	RSSFiles    bool
	// WarmDuration is how long the warm dashboard loads back to back (the last minute counted).
	WarmDuration time.Duration
	// FloorClients is the concurrent clients of the issue-12 CPU rows.
	FloorClients int
	// Rounds is how many times the issue-12 suite runs, alternating the systems; figures are medians.
	Rounds int
	// Allocs runs BenchmarkServerVolumesPage for its allocations per request.
	Allocs bool
	// Cold runs the server with its defaults (cache and rate budget on) and
	// sends every request with a fresh token, so the cache is on but cold;
	// false: one token, CACHE_BYTES=0 and no budget (the set-up before issue 11).
	Cold bool
}

// suites are what -only may name.
var suites = []string{"canonical", "floor", "floor-latency", "cache", "cache-rss", "warm"}

// runs reports whether the run includes the suite.
func (c benchConfig) runs(suite string) bool {
	return c.Only == "" || slices.Contains(strings.Split(c.Only, ","), suite)
}

// serverEnv is the server's environment in the scenarios that Cold governs.
func (c benchConfig) serverEnv() []string {
	if c.Cold {
		return slices.Clone(c.ServerEnv)
	}
	return append(slices.Clone(withoutSharedState), c.ServerEnv...)
}

func parseBenchFlags(args []string) (benchConfig, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	c := benchConfig{Args: args}
	fs.BoolVar(&c.Quick, "quick", false, "a short run: 2s per scenario")
	fs.DurationVar(&c.Duration, "duration", 8*time.Second, "load duration per scenario")
	fs.IntVar(&c.Clients, "clients", 32, "concurrent closed-loop clients for the throughput rows")
	lat := fs.String("latencies", "0ms,20ms", "upstream latencies to measure, comma-separated")
	fs.IntVar(&c.Concurrency, "concurrency", 8, "the server's MAX_CONCURRENCY (per-request upstream bound)")
	naive := fs.String("naive-env", "NAIVE_UPSTREAM=true,MAX_CONCURRENCY=1", "environment that switches the server to naive mode (loaders, de-duplication and concurrency off); empty: skip naive")
	serverEnv := fs.String("server-env", "", "extra environment for the server in every mode, comma-separated (e.g. GOGC=400)")
	fs.Int64Var(&c.PDFSize, "pdf-size", 50<<20, "PDF size for the streaming-memory measurement, bytes (0: skip)")
	fs.StringVar(&c.Token, "token", "bench-token", "bearer token the load sends (a sandbox account)")
	fs.StringVar(&c.Only, "only", "", "the suites to run, comma-separated: canonical (the canonical queries, naive beside, the PDF), floor (the issue-12 queries beside the floor), floor-latency (only its one-client 20 ms rows: the 7- and 27-call dashboards beside their floor), cache (the cache's CPU per cold query), cache-rss (its memory under a 10,000-invoice workload), warm (the warm dashboard); empty: all")
	fs.Int64Var(&c.RSSBudget, "rss-budget", 64<<20, "CACHE_BYTES of the cache's memory workload")
	fs.IntVar(&c.RSSInvoices, "rss-invoices", 10_000, "issued invoices the cache's memory workload loads (24 a token)")
	fs.BoolVar(&c.RSSFiles, "rss-files", true, "the memory workload also loads each invoice's CSV and PDF (their byteSize), which the cache keeps up to CACHE_FILE_MAX_BYTES")
	fs.DurationVar(&c.WarmDuration, "warm-duration", 2*time.Minute, "how long the warm dashboard loads back to back; the last minute is counted")
	fs.IntVar(&c.FloorClients, "floor-clients", 20, "concurrent clients for the CPU-per-query rows beside the floor")
	fs.IntVar(&c.Rounds, "rounds", 2, "rounds of the floor suite (medians are quoted)")
	fs.BoolVar(&c.Allocs, "allocs", true, "run BenchmarkServerVolumesPage for its allocations per request")
	fs.BoolVar(&c.Cold, "cold", true, "every feature on, the cache cold: server defaults (cache, rate budget) and a fresh token per request; false: one token, no cache, no budget")
	fs.StringVar(&c.Out, "out", "bench/results.md", "where to write the Markdown results, relative to the module root (empty: nowhere; with -only S the default is bench/S-results.md)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	outSet := false
	fs.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if c.Only != "" && !outSet {
		c.Out = "bench/" + strings.ReplaceAll(c.Only, ",", "+") + "-results.md"
	}
	if c.Quick {
		c.Duration = 2 * time.Second
	}
	c.Warmup = min(time.Second, c.Duration/4)
	for _, s := range strings.Split(*lat, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			return c, fmt.Errorf("-latencies: %q is not a duration", s)
		}
		c.Latencies = append(c.Latencies, d)
	}
	if *serverEnv != "" {
		c.ServerEnv = strings.Split(*serverEnv, ",")
	}
	if *naive != "" {
		c.NaiveEnv = strings.Split(*naive, ",")
	}
	if c.Clients < 1 || c.Concurrency < 1 || c.FloorClients < 1 || c.Rounds < 1 {
		return c, errors.New("-clients, -floor-clients, -rounds and -concurrency must be at least 1")
	}
	for _, s := range strings.Split(c.Only, ",") {
		if c.Only != "" && !slices.Contains(suites, s) {
			return c, fmt.Errorf("-only: %q is none of %s", s, strings.Join(suites, ", "))
		}
	}
	if c.WarmDuration < time.Minute || c.RSSBudget < 1 || c.RSSInvoices < 1 {
		return c, errors.New("-warm-duration must be at least 1m (the minute counted), -rss-budget and -rss-invoices at least 1")
	}
	return c, nil
}
