package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// report renders the benchmark's figures as a terminal table and as Markdown.
type report struct {
	Config  benchConfig
	Rows    []row
	Floor   floorSuite
	Cache   cacheSuite
	RSS     rssResult
	Warm    warmResult
	PDF     pdfResult
	Machine []string
	Took    time.Duration
}

// target is one figure the issue sets, beside what was measured.
type target struct {
	Name, Want, Got string
	// Command measures this figure alone.
	Command  string
	Met      bool
	Measured bool
}

func (rep report) find(lat time.Duration, mode, name string, clients int) (row, bool) {
	for _, r := range rep.Rows {
		if r.Latency == lat && r.Mode == mode && r.Query.Name == name && r.Clients == clients {
			return r, true
		}
	}
	return row{}, false
}

func (rep report) targets() []target {
	var rows []row
	for _, r := range rep.Rows {
		rows = append(rows, r)
	}
	for _, r := range rep.Floor.Rows {
		rows = append(rows, r.row)
	}
	ts := withCommand(rep.canonicalTargets(), "go run ./bench -only canonical")
	ts = append(ts, withCommand(rep.Floor.targets(rep.Config), "go run ./bench -only floor")...)
	if rep.Config.Cold && len(rows) > 0 {
		ts = append(ts, withCommand([]target{coldTarget(rows)}, "go run ./bench -only canonical,floor")...)
	}
	if rep.Config.runs("cache") {
		ts = append(ts, rep.Cache.targets(rep.Config)...)
	}
	if rep.Config.runs("cache-rss") {
		ts = append(ts, rep.RSS.targets()...)
	}
	if rep.Config.runs("warm") {
		ts = append(ts, rep.Warm.targets()...)
	}
	return ts
}

// withCommand names the command that measures targets which name none.
func withCommand(ts []target, command string) []target {
	for i := range ts {
		if ts[i].Command == "" {
			ts[i].Command = command
		}
	}
	return ts
}

// coldTarget checks that every load of the server ran with its cache on but
// cold: the cache's metrics were there, no lookup was answered from the cache,
// and a query under load cost what one query alone did.
func coldTarget(rows []row) target {
	t := target{Name: "every server load ran with the cache on but cold (fresh token per request)",
		Want: "cache metrics present, 0 cache hits, upstream calls per query under load = one query's"}
	var problems []string
	loads, misses := 0, 0.0
	for _, r := range rows {
		if r.Mode == systemFloorServer || r.Mode == systemFloorStd || r.Load.Requests == 0 {
			continue
		}
		loads++
		misses += r.Cache.Misses()
		name := fmt.Sprintf("%s %s %v c=%d", r.Mode, r.Query.Name, r.Latency, r.Clients)
		switch {
		case !r.Cache.On:
			problems = append(problems, name+": no cache metrics (cache off?)")
		case r.Cache.Hits() > 0:
			problems = append(problems, fmt.Sprintf("%s: %.0f cache hits", name, r.Cache.Hits()))
		case r.CallsUnderLoad > 0 && math.Abs(r.CallsUnderLoad-float64(r.Calls)) > 0.01:
			problems = append(problems, fmt.Sprintf("%s: %.2f calls per query under load, %d alone", name, r.CallsUnderLoad, r.Calls))
		}
	}
	if loads == 0 {
		return t
	}
	t.Measured, t.Met = true, len(problems) == 0
	t.Got = fmt.Sprintf("%d loads, 0 hits, %.0f misses (loads from DigitalOcean through the cache)", loads, misses)
	if !t.Met {
		t.Got = strings.Join(problems, "; ")
	}
	return t
}

func (rep report) canonicalTargets() []target {
	var ts []target
	if len(rep.Rows) == 0 {
		return nil
	}
	for _, lat := range rep.Config.Latencies {
		t := target{Name: fmt.Sprintf("dashboard upstream calls at %v", lat), Want: fmt.Sprintf("= %d (distinct resources)", dashboardMinCalls)}
		if r, ok := rep.find(lat, "optimised", dashboard.Name, 1); ok {
			t.Measured, t.Met = true, r.Calls == dashboardMinCalls && r.Problem == ""
			t.Got = fmt.Sprintf("%d (%.2f per query under load)", r.Calls, r.CallsUnderLoad)
		}
		ts = append(ts, t)
	}
	const floorLatency = 20 * time.Millisecond
	floor, why := dashboard.Floor(floorLatency, rep.Config.Concurrency)
	t := target{Name: "dashboard p50 at 20ms, 1 client", Want: fmt.Sprintf("<= %v (floor %v: %s, + 10ms)", ms(floor+10*time.Millisecond), ms(floor), why)}
	if r, ok := rep.find(floorLatency, "optimised", dashboard.Name, 1); ok {
		p50 := r.Load.Quantile(0.5)
		t.Measured, t.Met = true, p50 <= floor+10*time.Millisecond && r.Problem == ""
		t.Got = fmt.Sprintf("%v (floor + %v)", ms(p50), ms(p50-floor))
		if r32, ok := rep.find(floorLatency, "optimised", dashboard.Name, rep.Config.Clients); ok {
			t.Got += fmt.Sprintf("; with %d clients %v", r32.Clients, ms(r32.Load.Quantile(0.5)))
		}
	}
	ts = append(ts, t)
	if r, ok := rep.find(0, "optimised", volumesPage.Name, rep.Config.Clients); ok {
		clean := r.Problem == ""
		ts = append(ts,
			target{Name: fmt.Sprintf("volumes(first:20) at 0ms, %d clients: throughput", r.Clients), Want: ">= 3000 req/s",
				Got: fmt.Sprintf("%.0f req/s (CPU: server %.2f + sandbox %.2f + load generator %.2f of %d cores; %v of server CPU per request, so %d cores for the server alone would serve ~%.0f req/s)",
					r.Load.RPS(), r.CPU, r.SandboxCPU, r.LoadGenCPU, runtime.NumCPU(), r.CPUPerRequest.Round(time.Microsecond),
					runtime.NumCPU(), float64(runtime.NumCPU())/max(r.CPUPerRequest.Seconds(), 1e-9)),
				Met: clean && r.Load.RPS() >= 3000, Measured: true},
			target{Name: "volumes(first:20) at 0ms: p99", Want: "<= 25ms",
				Got: ms(r.Load.Quantile(0.99)).String(), Met: clean && r.Load.Quantile(0.99) <= 25*time.Millisecond, Measured: true},
			target{Name: "volumes(first:20) at 0ms: server peak RSS", Want: "<= 100 MiB",
				Got: mib(r.PeakRSS), Met: r.PeakRSS > 0 && r.PeakRSS <= 100<<20, Measured: true},
		)
	}
	if rep.PDF.Size > 0 {
		t := target{Name: fmt.Sprintf("streaming a %s PDF: server RSS growth", mib(rep.PDF.Size)), Want: "<= 10 MiB"}
		if rep.PDF.Problem == "" {
			t.Measured, t.Met = true, rep.PDF.Growth() <= 10<<20
			t.Got = fmt.Sprintf("%s (RSS %s before, peak %s; %s in %v via %s)", mib(rep.PDF.Growth()),
				mib(rep.PDF.BaseRSS), mib(rep.PDF.PeakRSS), mib(rep.PDF.Bytes), rep.PDF.Took.Round(time.Millisecond), rep.PDF.Via)
		} else {
			t.Got = "not measured: " + rep.PDF.Problem
		}
		ts = append(ts, t)
	}
	return ts
}

func (t target) verdict() string {
	switch {
	case !t.Measured:
		return "NOT MEASURED"
	case t.Met:
		return "met"
	default:
		return "MISSED"
	}
}

// gains pairs each optimised row with its naive twin.
func (rep report) gains() [][]string {
	var out [][]string
	for _, o := range rep.Rows {
		if o.Mode != "optimised" {
			continue
		}
		n, ok := rep.find(o.Latency, "naive", o.Query.Name, o.Clients)
		if !ok {
			continue
		}
		out = append(out, []string{
			o.Latency.String(), o.Query.Name, fmt.Sprint(o.Clients),
			fmt.Sprintf("%d → %d (%s)", n.Calls, o.Calls, ratio(float64(n.Calls), float64(o.Calls))),
			fmt.Sprintf("%v → %v (%s)", ms(n.Load.Quantile(0.5)), ms(o.Load.Quantile(0.5)), ratio(float64(n.Load.Quantile(0.5)), float64(o.Load.Quantile(0.5)))),
			fmt.Sprintf("%.0f → %.0f (%s)", n.Load.RPS(), o.Load.RPS(), ratio(o.Load.RPS(), n.Load.RPS())),
		})
	}
	return out
}

var (
	tableHeader = []string{"latency", "mode", "query", "clients", "upstream calls/query", "p50", "p95", "p99", "req/s", "server CPU (cores)", "CPU/req", "peak RSS", "sandbox + load generator CPU", "errors", "cache after the load"}
	gainHeader  = []string{"latency", "query", "clients", "upstream calls naive → optimised", "p50 naive → optimised", "req/s naive → optimised"}
)

func (r row) cells() []string {
	calls := fmt.Sprint(r.Calls)
	if r.CallsUnderLoad > 0 && fmt.Sprintf("%.2f", r.CallsUnderLoad) != fmt.Sprintf("%d.00", r.Calls) {
		calls += fmt.Sprintf(" (%.2f under load)", r.CallsUnderLoad)
	}
	errs := "none"
	if r.Problem != "" {
		errs = truncate(r.Problem, 120)
	}
	return []string{
		r.Latency.String(), r.Mode, r.Query.Name, fmt.Sprint(r.Clients), calls,
		ms(r.Load.Quantile(0.5)).String(), ms(r.Load.Quantile(0.95)).String(), ms(r.Load.Quantile(0.99)).String(),
		fmt.Sprintf("%.0f", r.Load.RPS()), fmt.Sprintf("%.2f", r.CPU), r.CPUPerRequest.Round(time.Microsecond).String(),
		mib(r.PeakRSS), fmt.Sprintf("%.2f + %.2f", r.SandboxCPU, r.LoadGenCPU), errs, r.Cache.String(),
	}
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func (rep report) text() string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(rep.Rows) > 0 {
		fmt.Fprintln(tw, strings.Join(tableHeader, "\t"))
		for _, r := range rep.Rows {
			fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
		}
		tw.Flush()
	}
	if g := rep.gains(); len(g) > 0 {
		b.WriteString("\nnaive → optimised, side by side:\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(gainHeader, "\t"))
		for _, c := range g {
			fmt.Fprintln(tw, strings.Join(c, "\t"))
		}
		tw.Flush()
	}
	for _, suite := range []struct {
		title string
		rows  []floorRow
	}{{"issue-12 queries beside the floor", rep.Floor.sortedRows()}, {"the cache's CPU per cold query", rep.Cache.CPU.sortedRows()}} {
		if len(suite.rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", suite.title)
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(floorHeader, "\t"))
		for _, r := range suite.rows {
			fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
		}
		tw.Flush()
	}
	b.WriteString("\ntargets:\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, t := range rep.targets() {
		fmt.Fprintf(tw, "%s\t%s\twant %s\tgot %s\n", t.verdict(), t.Name, t.Want, t.Got)
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nmachine: %s\nrun took %v\n", strings.Join(rep.Machine, "; "), rep.Took.Round(time.Second))
	return b.String()
}

func (rep report) markdown() string {
	var b bytes.Buffer
	b.WriteString("# Benchmark results\n\n")
	fmt.Fprintf(&b, "Command: `%s` (took %v).\n\n", strings.TrimSpace("go run ./bench "+strings.Join(rep.Config.Args, " ")), rep.Took.Round(time.Second))
	b.WriteString("Machine:\n\n")
	for _, m := range rep.Machine {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	fmt.Fprintf(&b, "\nSet-up: the server binary and the sandbox (`oceangraph sandbox`) each run as a process on loopback; "+
		"vegeta drives closed-loop clients (each sends its next request when the last one answered) from a third process on the same machine. "+
		"Upstream calls are counted at the sandbox; CPU and peak RSS (VmHWM, reset per scenario) are the server's, from /proc. %s"+
		"%v of load per scenario after %v of warm-up; MAX_CONCURRENCY=%d; naive mode: `%s`; extra server environment: `%s`. "+
		"The cache's suites and the warm dashboard say their own set-up below.\n\n",
		rep.Config.features(), rep.Config.Duration, rep.Config.Warmup, rep.Config.Concurrency, strings.Join(rep.Config.NaiveEnv, " "), cmp.Or(strings.Join(rep.Config.serverEnv(), " "), "none"))
	b.WriteString("## Targets\n\n| | target | wanted | measured | command |\n|---|---|---|---|---|\n")
	for _, t := range rep.targets() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s` |\n", t.verdict(), t.Name, t.Want, t.Got, t.Command)
	}
	if len(rep.Rows) > 0 {
		b.WriteString("\n## Every scenario\n\n")
		mdTable(&b, tableHeader, func(yield func([]string)) {
			for _, r := range rep.Rows {
				yield(r.cells())
			}
		})
	}
	if rows := rep.Floor.sortedRows(); len(rows) > 0 {
		fmt.Fprintf(&b, "\n## The issue-12 queries beside the floor\n\nThe floor (`go run ./bench floor`) is a bare net/http program, a process of its own, making the same upstream calls with the server's HTTP client settings and concurrency bound and writing the same answer (checked) with no GraphQL; it runs with the server's JSON library and with encoding/json. Each load runs on a fresh process, %d rounds, the order of the systems alternating; targets quote medians and same-round ratios.\n\n", rep.Config.Rounds)
		mdTable(&b, floorHeader, func(yield func([]string)) {
			for _, r := range rows {
				yield(r.cells())
			}
		})
	}
	if rows := rep.Cache.CPU.sortedRows(); len(rows) > 0 {
		fmt.Fprintf(&b, "\n## The cache's CPU per cold query\n\nThe same server without its cache (`CACHE_BYTES=0`) and with it (default 64 MiB), the rate budget off in both, "+
			"each request with a token of its own (so the cache is on but cold: it derives the token's keys, looks up, loads and stores, and never answers); "+
			"each load on a fresh process, %d rounds, the order alternating. The \"cache after the load\" column is the server's own cache metrics (warm-up included).\n\n", rep.Config.Rounds)
		mdTable(&b, floorHeader, func(yield func([]string)) {
			for _, r := range rows {
				yield(r.cells())
			}
		})
	}
	if r := rep.RSS; r.Invoices > 0 {
		fmt.Fprintf(&b, "\n## The cache's memory under a %d-invoice workload\n\n"+
			"A sandbox of its own generates an account per token (24 issued invoices each, every one distinct). %d tokens, %d clients each taking a token at a time: "+
			"its invoice list (which marks the invoices issued, so their data may be cached), then each invoice's summary and whole items page (`items(first: 200)`)%s, "+
			"each entry loaded once, so the cache is offered all of it. The same workload runs on a fresh server with `CACHE_BYTES=0` (the baseline) and with `CACHE_BYTES=%d`; "+
			"peak RSS is VmHWM, reset when the workload starts. The rule: peak RSS with the cache <= peak RSS without it + the budget.\n\n"+
			"| server | requests | upstream calls | took | RSS before | peak RSS | cache at the end | Go heap in use, heap goal at the end |\n|---|---|---|---|---|---|---|---|\n",
			r.Invoices, r.Tokens, r.Workers, map[bool]string{true: " and its CSV and PDF", false: ""}[r.Files], r.Budget)
		for _, run := range []struct {
			name string
			rssRun
		}{{"CACHE_BYTES=0", r.Off}, {fmt.Sprintf("CACHE_BYTES=%d", r.Budget), r.On}} {
			fmt.Fprintf(&b, "| %s | %d | %d | %v | %s | %s | %s | %s, %s |\n", run.name, run.Requests, run.Calls, run.Took.Round(time.Second), mib(run.Base), mib(run.HWM), run.Cache,
				mib(int64(run.Cache.HeapInuse)), mib(int64(run.Cache.NextGC)))
		}
	}
	if rep.Warm.Duration > 0 {
		fmt.Fprintf(&b, "\n## Warm dashboard\n\n%s The dashboard is loaded once cold and once warm (upstream calls counted at the sandbox), "+
			"then back to back for %v; the loads of the last minute are counted. `go run ./bench warm` runs it alone (into bench/warm-results.md).\n",
			warmSetup, rep.Warm.Duration)
	}
	if g := rep.gains(); len(g) > 0 {
		b.WriteString("\n## Naive → optimised, side by side\n\n")
		mdTable(&b, gainHeader, func(yield func([]string)) {
			for _, c := range g {
				yield(c)
			}
		})
	}
	b.WriteString("\n## Upstream calls of one query, by route (optimised)\n\n")
	seen := map[string]bool{}
	for _, r := range rep.Rows {
		if r.Mode != "optimised" || seen[r.Query.Name] {
			continue
		}
		seen[r.Query.Name] = true
		fmt.Fprintf(&b, "- %s: %d: %s\n", r.Query.Name, r.Calls, countsSummary(r.CallsByRoute))
	}
	return b.String()
}

func mdTable(b *bytes.Buffer, header []string, rows func(yield func([]string))) {
	fmt.Fprintf(b, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	rows(func(c []string) {
		fmt.Fprintf(b, "| %s |\n", strings.ReplaceAll(strings.Join(c, " | "), "\n", " "))
	})
}

func (rep report) problems() int {
	n := 0
	for _, r := range rep.Rows {
		if r.Problem != "" {
			n++
		}
	}
	if rep.PDF.Problem != "" {
		n++
	}
	if rep.RSS.Problem != "" {
		n++
	}
	return n + rep.Floor.problems() + rep.Cache.CPU.problems()
}

// machineInfo names what the figures came from.
func machineInfo(ctx context.Context) []string {
	info := []string{fmt.Sprintf("nproc %d", runtime.NumCPU())}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				info = append(info, "CPU "+strings.TrimSpace(v))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		info = append(info, strings.Join(strings.Fields(line), " "))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		info = append(info, "Linux "+strings.TrimSpace(string(b)))
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		info = append(info, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		info = append(info, "commit "+strings.TrimSpace(string(out)))
	}
	info = append(info, "finished "+time.Now().UTC().Format(time.RFC3339))
	return info
}

// features says which of the server's features the scenarios ran with.
func (c benchConfig) features() string {
	if !c.runs("canonical") && !c.runs("floor") && !c.runs("floor-latency") {
		return ""
	}
	if !c.Cold {
		return "The server runs with one token for every request, without the cache (CACHE_BYTES=0) and without the rate budget (`-cold=false`). "
	}
	return "The server runs with its defaults, every feature on: JSON access log, metrics, the cache of issued invoices' data (CACHE_BYTES 64 MiB), " +
		"the per-token rate budget (250 a minute), token rechecks. Each request carries a token of its own, which the sandbox (`-account-token`) serves as one account, " +
		"so the requests and answers are the same while the cache is on but cold: the cache's own metrics, read after each load, show no hit " +
		"(the row \"every server load ran with the cache on but cold\"); `-cold=false` runs the set-up before issue 11 (one token, no cache, no budget). "
}

// ms rounds a latency for display.
func ms(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

// mib shows a byte count in MiB (2^20 bytes), the unit every RSS target here is compared in.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("×%.1f", a/b)
}
