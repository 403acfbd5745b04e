package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// soakConfig is the soak run's flags.
type soakConfig struct {
	Duration    time.Duration
	Clients     int
	ServerError float64 // fraction of upstream requests answered 5xx
	RateLimited float64 // fraction answered 429 with Retry-After
	Latency     time.Duration
	Jitter      time.Duration
	MaxRSS      int64
	Settle      time.Duration
	Out         string
	Args        []string
}

func parseSoakFlags(args []string) (soakConfig, error) {
	fs := flag.NewFlagSet("bench soak", flag.ContinueOnError)
	c := soakConfig{Args: args}
	fs.DurationVar(&c.Duration, "duration", 60*time.Second, "how long the load runs")
	fs.IntVar(&c.Clients, "clients", 200, "concurrent closed-loop clients")
	fs.Float64Var(&c.ServerError, "upstream-5xx", 0.05, "fraction of upstream requests answered 500/502/503/504")
	fs.Float64Var(&c.RateLimited, "upstream-429", 0.01, "fraction of upstream requests answered 429 with Retry-After")
	fs.DurationVar(&c.Latency, "latency", 2*time.Millisecond, "added upstream latency")
	fs.DurationVar(&c.Jitter, "jitter", 8*time.Millisecond, "added random upstream latency, up to this much")
	maxRSS := fs.Int("max-rss-mb", 300, "the server's RSS may not exceed this many MiB")
	fs.DurationVar(&c.Settle, "settle", 20*time.Second, "how long goroutines may take to return to their baseline")
	fs.StringVar(&c.Out, "out", "", "also write the summary as Markdown here, relative to the module root")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.MaxRSS = int64(*maxRSS) << 20
	return c, nil
}

// soakTokens are two sandbox accounts the load alternates between.
var soakTokens = []string{"soak-token-a", "soak-token-b"}

// runSoak drives every canonical query for two accounts with many clients
// while the sandbox injects 5xx and 429, and checks what a user must never
// see: an HTTP 5xx from the server, an error without a code, goroutines that
// do not come back to their baseline, memory that keeps growing.
func runSoak(ctx context.Context, args []string) error {
	cfg, err := parseSoakFlags(args)
	if err != nil {
		return err
	}
	rg, err := newRig(ctx, "soak")
	if err != nil {
		return err
	}
	defer rg.close()
	tmp, bin, sb, ctl := rg.dir, rg.bin, rg.sandbox, rg.ctl
	sandboxAddr := strings.TrimPrefix(sb.URL, "http://")
	srv, err := startServer(ctx, bin, "server-soak", sb.URL, 8, withoutSharedState, tmp)
	if err != nil {
		return err
	}
	defer srv.stop()

	var targets []vegeta.Target
	for _, token := range soakTokens {
		gc := graphqlClient{url: srv.URL, token: token, http: &http.Client{Timeout: 30 * time.Second}}
		uuid, _, err := gc.firstInvoice(ctx)
		if err != nil {
			return err
		}
		for _, q := range canonical {
			targets = append(targets, graphqlTarget(srv.URL, token, q.body(uuid)))
		}
	}
	probe := &http.Client{Timeout: 10 * time.Second}
	load := newLoadClient(cfg.Clients)

	// Warm up without faults, then let everything settle to measure the baseline.
	fmt.Println("warming up...")
	runLoad(ctx, load, targets, 8, 2*time.Second, "warm-up")
	// quiesce closes every idle connection into and out of the server, so
	// the goroutine count holds no keep-alive readers, only what should stay.
	quiesce := func() error {
		load.CloseIdleConnections()
		sb.stop()
		sb, ctl, err = startSandboxAt(ctx, bin, sandboxAddr, tmp)
		rg.sandbox, rg.ctl = sb, ctl
		return err
	}
	if err := quiesce(); err != nil {
		return err
	}
	baseline, gerr := settleGoroutines(ctx, probe, srv.URL, -1, 3*time.Second)
	if gerr != nil {
		fmt.Println("goroutines: not measurable:", gerr)
	}
	base, _ := readProc(srv.pid())

	faults := sandbox.Faults{
		Latency: cfg.Latency, Jitter: cfg.Jitter,
		ErrorRates: map[int]float64{
			500: cfg.ServerError * 0.4, 502: cfg.ServerError * 0.2, 503: cfg.ServerError * 0.2, 504: cfg.ServerError * 0.2,
			429: cfg.RateLimited,
		},
	}
	if err := ctl.setFaults(ctx, faults); err != nil {
		return err
	}
	fmt.Printf("soak: %d clients for %v, upstream %.0f%% 5xx and %.0f%% 429 (latency %v + up to %v)\n",
		cfg.Clients, cfg.Duration, cfg.ServerError*100, cfg.RateLimited*100, cfg.Latency, cfg.Jitter)

	// Sample the server's RSS and goroutines while the load runs.
	var (
		mu            sync.Mutex
		peakRSS       int64
		peakG         int
		rssSamples    []int64
		samplerCtx, c = context.WithCancel(ctx)
		sampled       = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-samplerCtx.Done():
				return
			case <-t.C:
			}
			st, _ := readProc(srv.pid())
			g, _ := goroutines(samplerCtx, probe, srv.URL)
			mu.Lock()
			peakRSS, peakG = max(peakRSS, st.RSS), max(peakG, g)
			rssSamples = append(rssSamples, st.RSS)
			mu.Unlock()
		}
	}()
	stats0, _ := ctl.stats(ctx)
	res := runLoad(ctx, load, targets, cfg.Clients, cfg.Duration, "soak")
	c()
	<-sampled
	stats1, _ := ctl.stats(ctx)
	end, _ := readProc(srv.pid())

	if err := ctl.setFaults(ctx, sandbox.Faults{}); err != nil {
		return err
	}
	if err := quiesce(); err != nil {
		return err
	}
	after := -1
	if gerr == nil {
		after, gerr = settleGoroutines(ctx, probe, srv.URL, baseline, cfg.Settle)
	}

	// The verdicts.
	var failures []string
	fail := func(format string, a ...any) { failures = append(failures, fmt.Sprintf(format, a...)) }
	server5xx, transport := 0, res.Status[0]
	for status, n := range res.Status {
		if status >= 500 {
			server5xx += n
		}
	}
	if res.Requests == 0 {
		fail("no request completed")
	}
	if server5xx > 0 {
		fail("%d HTTP 5xx responses from the server", server5xx)
	}
	if transport > 0 {
		fail("%d requests got no HTTP response", transport)
	}
	if n := res.Codes[""] + res.Codes["(body is not JSON)"]; n > 0 {
		fail("%d errors without extensions.code", n)
	}
	if res.RateLimitedWithoutRetryAfter > 0 {
		fail("%d RATE_LIMITED errors without retryAfter", res.RateLimitedWithoutRetryAfter)
	}
	if end.HWM > cfg.MaxRSS {
		fail("server peak RSS %s exceeds %s", mib(end.HWM), mib(cfg.MaxRSS))
	}
	goroutineLine := "not measurable: " + fmt.Sprint(gerr)
	if gerr == nil {
		goroutineLine = fmt.Sprintf("baseline %d, peak %d under load, %d after (settled within %v)", baseline, peakG, after, cfg.Settle)
		if after > baseline {
			fail("goroutines did not return to baseline: %d after, %d before", after, baseline)
		}
	} else if !errors.Is(gerr, errNoGoroutineEndpoint) {
		fail("goroutines: %v", gerr)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "soak: `go run ./bench soak %s`\n\n", strings.Join(cfg.Args, " "))
	fmt.Fprintf(&b, "- load: %d clients, %v, two accounts, the four canonical queries round robin: %d requests, %.0f req/s, p50 %v, p99 %v\n",
		cfg.Clients, cfg.Duration, res.Requests, res.RPS(), ms(res.Quantile(0.5)), ms(res.Quantile(0.99)))
	fmt.Fprintf(&b, "- upstream: %d requests with %.0f%% 5xx and %.0f%% 429 injected\n", stats1.Total-stats0.Total, cfg.ServerError*100, cfg.RateLimited*100)
	fmt.Fprintf(&b, "- server HTTP statuses: %s\n", res.statusSummary())
	fmt.Fprintf(&b, "- responses with GraphQL errors: %d (%.2f%%); error codes: %s\n", res.WithErrors, pct(res.WithErrors, res.Requests), countsSummary(res.Codes))
	fmt.Fprintf(&b, "- server RSS: %s before, peak %s, %s at the end (samples: %s)\n", mib(base.RSS), mib(max(peakRSS, end.HWM)), mib(end.RSS), rssTrend(rssSamples))
	fmt.Fprintf(&b, "- goroutines: %s\n", goroutineLine)
	if len(res.Examples) > 0 {
		fmt.Fprintf(&b, "- examples: %s\n", truncate(strings.Join(res.Examples, " | "), 1500))
	}
	if len(failures) == 0 {
		checked := "no HTTP 5xx, every error coded, RSS bounded"
		if gerr == nil {
			checked += ", goroutines back to baseline"
		} else {
			checked += "; goroutines NOT CHECKED (" + gerr.Error() + ")"
		}
		b.WriteString("\nPASS: " + checked + "\n")
	} else {
		b.WriteString("\nFAIL:\n- " + strings.Join(failures, "\n- ") + "\n")
	}
	fmt.Print("\n" + b.String())
	if cfg.Out != "" {
		if root, err := moduleRoot(ctx); err == nil && !filepath.IsAbs(cfg.Out) {
			cfg.Out = filepath.Join(root, cfg.Out)
		}
		if err := os.WriteFile(cfg.Out, []byte("# Soak results\n\nMachine: "+strings.Join(machineInfo(ctx), "; ")+"\n\n"+b.String()), 0o644); err != nil {
			return err
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("soak failed: %s (server log: kept at %s)", strings.Join(failures, "; "), keepLog(srv))
	}
	return nil
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// rssTrend shows a few RSS samples, start to end, to tell a plateau from a leak.
func rssTrend(samples []int64) string {
	if len(samples) == 0 {
		return "none"
	}
	var parts []string
	step := max(1, len(samples)/6)
	for i := 0; i < len(samples); i += step {
		parts = append(parts, fmt.Sprintf("%.0f", float64(samples[i])/(1<<20)))
	}
	return strings.Join(parts, " → ") + " MiB"
}

// keepLog copies the server's log out of the temporary directory.
func keepLog(p *process) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(unreadable)"
	}
	f, err := os.CreateTemp("", "oceangraph-soak-server-*.log")
	if err != nil {
		return "(unsaved)"
	}
	defer f.Close()
	f.Write(b)
	return f.Name()
}

var errNoGoroutineEndpoint = errors.New("the server exposes neither go_goroutines at /metrics nor /debug/pprof/goroutine")

// goroutines reads the server's goroutine count from its Prometheus metrics,
// or failing that from its pprof endpoint.
func goroutines(ctx context.Context, client *http.Client, serverURL string) (int, error) {
	if n, err := scrapeLine(ctx, client, serverURL+"/metrics", "go_goroutines "); err == nil {
		return n, nil
	}
	if n, err := scrapeLine(ctx, client, serverURL+"/debug/pprof/goroutine?debug=1", "goroutine profile: total "); err == nil {
		return n, nil
	}
	return 0, errNoGoroutineEndpoint
}

func scrapeLine(ctx context.Context, client *http.Client, url, prefix string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	defer io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("%s: no line %q", url, prefix)
}

// settleGoroutines polls the goroutine count until it is at most target
// (target < 0: until it stops falling), for at most wait; it returns the last count.
func settleGoroutines(ctx context.Context, client *http.Client, serverURL string, target int, wait time.Duration) (int, error) {
	deadline := time.Now().Add(wait)
	last := -1
	for {
		n, err := goroutines(ctx, client, serverURL)
		if err != nil {
			return 0, err
		}
		if target >= 0 && n <= target {
			return n, nil
		}
		if target < 0 && n == last {
			return n, nil
		}
		last = n
		if time.Now().After(deadline) {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
