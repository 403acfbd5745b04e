package main

// The warm-dashboard scenario (issue 11): what the cache across requests buys
// against DigitalOcean's 250 calls a minute, with the server as a user runs it
// (cache and rate budget on) and the sandbox in its 250-a-minute mode.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

type warmResult struct {
	ColdCalls, WarmCalls       int
	Answered, Refused, Partial int
	Window                     time.Duration
}

func runWarm(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench warm", flag.ContinueOnError)
	duration := fs.Duration("duration", 2*time.Minute, "how long to load the dashboard back to back; the loads of the last minute are counted")
	out := fs.String("out", "bench/warm-results.md", "where to write the Markdown results, relative to the module root (empty: nowhere)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration < time.Minute {
		return fmt.Errorf("-duration: at least 1m, the minute whose loads are counted")
	}
	rg, err := newRig(ctx, "warm")
	if err != nil {
		return err
	}
	defer rg.close()
	if err := rg.ctl.setFaults(ctx, sandbox.Faults{RateLimitPerMinute: 250}); err != nil {
		return err
	}
	srv, err := startServer(ctx, rg.bin, "server-warm", rg.sandbox.URL, 8, []string{"CACHE_BYTES=67108864", "RATE_LIMIT_PER_MINUTE=250"}, rg.dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	client := &http.Client{Timeout: 30 * time.Second}
	body, _ := json.Marshal(map[string]any{"query": queries.Dashboard})
	load := func() (dashboardAnswer, error) { return postDashboard(ctx, client, srv.URL, body) }

	var r warmResult
	for i, calls := range []*int{&r.ColdCalls, &r.WarmCalls} {
		before, err := rg.ctl.stats(ctx)
		if err != nil {
			return err
		}
		if a, err := load(); err != nil || a.kind != answered {
			return fmt.Errorf("dashboard %d: %v (%s)", i+1, err, a.kind)
		}
		after, err := rg.ctl.stats(ctx)
		if err != nil {
			return err
		}
		*calls = after.Total - before.Total
	}
	fmt.Printf("dashboard upstream calls: cold %d, warm %d\n", r.ColdCalls, r.WarmCalls)

	start := time.Now()
	countFrom := start.Add(*duration - time.Minute)
	r.Window = time.Minute
	for time.Since(start) < *duration && ctx.Err() == nil {
		a, err := load()
		if err != nil {
			return err
		}
		if time.Now().Before(countFrom) {
			continue
		}
		switch a.kind {
		case answered:
			r.Answered++
		case refusedWhole:
			r.Refused++
			time.Sleep(100 * time.Millisecond) // pace the client as retryAfter asks, in short steps
		default:
			r.Partial++
		}
	}
	fmt.Printf("last minute: %d dashboards answered whole, %d refused whole, %d partial\n", r.Answered, r.Refused, r.Partial)
	if *out == "" {
		return nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	text := fmt.Sprintf(`# Warm dashboard: the cache across requests against DigitalOcean's 250 calls a minute

`+"`go run ./bench warm`"+` (%s back to back; the last minute counted), %s. One token, one server with
its defaults (64 MiB cache, rate budget 250 a minute, 5 kept for single-call queries), the sandbox in
its 250-requests-a-minute mode, no latency.

| figure | target | measured |
|---|---|---|
| upstream calls, cold dashboard | 27 | %d |
| upstream calls, warm dashboard | ≤ 3 | %d |
| dashboards answered per token-minute (warm) | ≥ 80 (about 9 without the cache) | %d |
| dashboards refused whole (RATE_LIMITED + retryAfter, no call made) in that minute | | %d |
| dashboards answered in part (a 429 mid-query) | 0 | %d |
`, *duration, time.Now().UTC().Format("2006-01-02"), r.ColdCalls, r.WarmCalls, r.Answered, r.Refused, r.Partial)
	return os.WriteFile(filepath.Join(root, *out), []byte(text), 0o644)
}

type answerKind string

const (
	answered     answerKind = "answered whole"
	refusedWhole answerKind = "refused whole"
	partial      answerKind = "answered in part"
)

type dashboardAnswer struct{ kind answerKind }

// postDashboard sends the dashboard and says how it was answered.
func postDashboard(ctx context.Context, client *http.Client, url string, body []byte) (dashboardAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/query", bytes.NewReader(body))
	if err != nil {
		return dashboardAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer dop_v1_bench_warm")
	resp, err := client.Do(req)
	if err != nil {
		return dashboardAnswer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Path       []any          `json:"path"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || resp.StatusCode >= 500 {
		return dashboardAnswer{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, truncate(string(raw), 300))
	}
	switch {
	case len(r.Errors) == 0:
		return dashboardAnswer{answered}, nil
	case len(r.Errors) == 1 && len(r.Errors[0].Path) == 0 && r.Errors[0].Extensions["code"] == "RATE_LIMITED":
		return dashboardAnswer{refusedWhole}, nil
	}
	return dashboardAnswer{partial}, nil
}
