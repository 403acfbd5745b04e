package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// mode is a server configuration under test.
type mode struct {
	Name string
	Env  []string
}

// row is one measured scenario: a query at an upstream latency, in a mode,
// with a number of concurrent clients.
type row struct {
	Latency time.Duration
	Mode    string
	Query   query
	Clients int
	// Calls is the upstream requests one query caused, counted at the sandbox.
	Calls        int
	CallsByRoute map[string]int
	// CallsUnderLoad is the sandbox's count over the load run per response.
	CallsUnderLoad float64
	Load           loadResult
	CPU            float64       // server CPU in cores over the run
	SandboxCPU     float64       // the sandbox's CPU in cores over the run
	LoadGenCPU     float64       // this process's (vegeta's) CPU in cores over the run
	CPUPerRequest  time.Duration // server CPU time per request
	PeakRSS        int64         // server VmHWM over the run, bytes
	// Cache is the server's cache metrics after the load (warm-up included).
	Cache cacheUse
	// Answer is the body of one response, read before the load.
	Answer  []byte
	Problem string
}

func runBench(ctx context.Context, args []string) error {
	cfg, err := parseBenchFlags(args)
	if err != nil {
		return err
	}
	began := time.Now()
	loadBefore := loadAverage()
	// Every token is served as cfg.Token's account, so that each request can carry
	// a fresh token and find the server's cache cold (freshTokens).
	rg, err := newRig(ctx, "bench", "-account-token", cfg.Token)
	if err != nil {
		return err
	}
	defer rg.close()
	tmp, bin, sb, ctl := rg.dir, rg.bin, rg.sandbox, rg.ctl
	fmt.Printf("sandbox at %s; %d clients; %v per scenario after %v warm-up\n", sb.URL, cfg.Clients, cfg.Duration, cfg.Warmup)

	var rows []row
	if cfg.runs("canonical") {
		if rows, err = runCanonical(ctx, cfg, rg); err != nil {
			return err
		}
	}
	var suite floorSuite
	if cfg.runs("floor") || cfg.runs("floor-latency") {
		if suite, err = runFloorSuite(ctx, cfg, rg); err != nil {
			return err
		}
	}
	var cache cacheSuite
	if cfg.runs("cache") {
		if cache, err = runCacheSuite(ctx, cfg, rg); err != nil {
			return err
		}
	}
	var rss rssResult
	if cfg.runs("cache-rss") {
		rss = measureCacheRSS(ctx, cfg, rg)
	}
	var warm warmResult
	if cfg.runs("warm") {
		if warm, err = measureWarm(ctx, rg, cfg.WarmDuration); err != nil {
			return err
		}
	}
	var pdf pdfResult
	if cfg.PDFSize > 0 && cfg.runs("canonical") {
		pdf = measurePDF(ctx, cfg, bin, sb.URL, ctl, tmp)
	}
	machine := append(machineInfo(ctx), fmt.Sprintf("load average before the run %s, after %s (other work on the machine skews the figures)", loadBefore, loadAverage()))
	rep := report{Config: cfg, Rows: rows, Floor: suite, Cache: cache, RSS: rss, Warm: warm, PDF: pdf, Machine: machine, Took: time.Since(began)}
	fmt.Println()
	fmt.Print(rep.text())
	if cfg.Out != "" {
		out := cfg.Out
		if root, err := moduleRoot(ctx); err == nil && !filepath.IsAbs(out) {
			out = filepath.Join(root, out) // the same file from any working directory
		}
		if err := os.WriteFile(out, []byte(rep.markdown()), 0o644); err != nil {
			return err
		}
		fmt.Printf("\nwrote %s\n", out)
	}
	if n := rep.problems(); n > 0 {
		return fmt.Errorf("%d scenario(s) saw errors; see the table", n)
	}
	return nil
}

// runCanonical measures every canonical query at each latency, in each mode.
func runCanonical(ctx context.Context, cfg benchConfig, rg *rig) ([]row, error) {
	bin, sb, ctl, tmp := rg.bin, rg.sandbox, rg.ctl, rg.dir
	var rows []row
	modes := []mode{{Name: "optimised", Env: cfg.serverEnv()}}
	if len(cfg.NaiveEnv) > 0 {
		modes = append(modes, mode{Name: "naive", Env: append(cfg.serverEnv(), cfg.NaiveEnv...)})
	}
	for _, lat := range cfg.Latencies {
		if err := ctl.setFaults(ctx, sandbox.Faults{Latency: lat}); err != nil {
			return nil, err
		}
		for _, m := range modes {
			srv, err := startServer(ctx, bin, fmt.Sprintf("server-%s-%v", m.Name, lat), sb.URL, cfg.Concurrency, m.Env, tmp)
			if err != nil {
				return nil, err
			}
			gc := graphqlClient{url: srv.URL, token: cfg.Token, http: &http.Client{Timeout: 30 * time.Second}}
			uuid, _, err := gc.firstInvoice(ctx)
			if err != nil {
				srv.stop()
				return nil, err
			}
			for _, q := range canonical {
				counts := []int{cfg.Clients}
				if q.Name == dashboard.Name {
					// One client measures latency alone; many measure it under load.
					counts = []int{1, cfg.Clients}
				}
				for _, n := range counts {
					if ctx.Err() != nil {
						srv.stop()
						return nil, ctx.Err()
					}
					r := measure(ctx, cfg, srv, sb, ctl, q, uuid, n)
					r.Latency, r.Mode = lat, m.Name
					fmt.Println(r.progressLine())
					rows = append(rows, r)
				}
			}
			srv.stop()
		}
	}
	return rows, nil
}

// measure runs the load of one canonical query against the server.
func measure(ctx context.Context, cfg benchConfig, srv, sb *process, ctl sandboxControl, q query, uuid string, clients int) row {
	r := measureTarget(ctx, cfg, srv, sb, ctl, graphqlTarget(srv.URL, cfg.Token, q.body(uuid)), clients, q.Name)
	r.Query = q
	return r
}

// measureTarget warms a process (the server or a floor) up with the target,
// counts the upstream calls of one request and keeps its answer, then runs
// the load and reads the sandbox and /proc around it. With cfg.Cold every
// request carries a token of its own (freshTokens): the server's cache is on but cold.
func measureTarget(ctx context.Context, cfg benchConfig, p, sb *process, ctl sandboxControl, target vegeta.Target, clients int, name string) row {
	r := row{Clients: clients}
	client := newLoadClient(clients)
	defer client.CloseIdleConnections()
	tr := vegeta.NewStaticTargeter(target)
	if cfg.Cold {
		tr = freshTokens(target)
	}
	runTargeter(ctx, client, tr, clients, cfg.Warmup, "warm-up")

	if err := ctl.reset(ctx); err != nil {
		r.Problem = err.Error()
		return r
	}
	var one vegeta.Target
	tr(&one)
	var err error
	if r.Answer, err = oneRequest(ctx, client, one); err != nil {
		r.Problem = "one request: " + err.Error()
	}
	st, err := ctl.stats(ctx)
	if err != nil {
		r.Problem = err.Error()
		return r
	}
	r.Calls, r.CallsByRoute = st.Total, st.Counts

	if err := ctl.reset(ctx); err != nil {
		r.Problem = err.Error()
		return r
	}
	resetPeakRSS(p.pid())
	before, _ := readProc(p.pid())
	sbBefore, _ := readProc(sb.pid())
	selfBefore, _ := readProc(os.Getpid())
	r.Load = runTargeter(ctx, client, tr, clients, cfg.Duration, name)
	after, _ := readProc(p.pid())
	sbAfter, _ := readProc(sb.pid())
	selfAfter, _ := readProc(os.Getpid())
	if st, err := ctl.stats(ctx); err == nil && r.Load.Requests > 0 {
		r.CallsUnderLoad = float64(st.Total) / float64(r.Load.Requests)
	}
	cpu := after.CPU - before.CPU
	if r.Load.Elapsed > 0 && r.Load.Requests > 0 {
		r.CPU = cpu.Seconds() / r.Load.Elapsed.Seconds()
		r.SandboxCPU = (sbAfter.CPU - sbBefore.CPU).Seconds() / r.Load.Elapsed.Seconds()
		r.LoadGenCPU = (selfAfter.CPU - selfBefore.CPU).Seconds() / r.Load.Elapsed.Seconds()
		r.CPUPerRequest = cpu / time.Duration(r.Load.Requests)
	}
	r.PeakRSS = after.HWM
	r.Cache, _ = scrapeCache(ctx, p.URL) // a floor has no /metrics: not scraped
	if !r.Load.Clean() && r.Problem == "" {
		r.Problem = fmt.Sprintf("statuses %s, %d response(s) with errors %s; e.g. %v",
			r.Load.statusSummary(), r.Load.WithErrors, countsSummary(r.Load.Codes), r.Load.Examples)
	}
	return r
}

// oneRequest sends the target once and returns the answer; it fails on a
// status other than 200 or on GraphQL errors.
func oneRequest(ctx context.Context, client *http.Client, t vegeta.Target) ([]byte, error) {
	req, err := t.Request()
	if err != nil {
		return nil, err
	}
	return graphQLAnswer(client, req.WithContext(ctx))
}

// graphQLAnswer sends one GraphQL request and returns the response body; it fails
// on a non-200 status or on GraphQL errors.
func graphQLAnswer(client *http.Client, req *http.Request) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var envelope struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(b, &envelope); err != nil || resp.StatusCode != http.StatusOK || len(envelope.Errors) > 0 {
		return b, fmt.Errorf("HTTP %d: %s", resp.StatusCode, truncate(string(b), 500))
	}
	return b, nil
}

func (r row) progressLine() string {
	s := fmt.Sprintf("%-9s %-5v %-25s c=%-3d calls=%-3d p50=%-8v p99=%-8v %7.0f req/s  cpu=%.2f  rss=%dMB",
		r.Mode, r.Latency, r.Query.Name, r.Clients, r.Calls, ms(r.Load.Quantile(0.5)), ms(r.Load.Quantile(0.99)),
		r.Load.RPS(), r.CPU, r.PeakRSS>>20)
	if r.Problem != "" {
		s += "  PROBLEM: " + truncate(r.Problem, 400)
	}
	return s
}

// pdfResult is the memory cost of streaming one large PDF through the server.
type pdfResult struct {
	Size        int64 // the sandbox's PDF size knob
	Bytes       int64 // bytes received
	ContentType string
	Took        time.Duration
	BaseRSS     int64 // server VmRSS before the download
	PeakRSS     int64 // server VmHWM during the download
	Via         string
	Problem     string
}

// Growth is how much the server's resident memory peaked above its level
// before the download.
func (p pdfResult) Growth() int64 { return p.PeakRSS - p.BaseRSS }

// measurePDF streams one PDF of cfg.PDFSize bytes through a fresh server (by
// its signed link, as a browser would) and reads the server's RSS around it.
func measurePDF(ctx context.Context, cfg benchConfig, bin, upstreamURL string, ctl sandboxControl, logDir string) pdfResult {
	res := pdfResult{Size: cfg.PDFSize}
	if err := ctl.setFaults(ctx, sandbox.Faults{PDFSize: cfg.PDFSize}); err != nil {
		res.Problem = err.Error()
		return res
	}
	srv, err := startServer(ctx, bin, "server-pdf", upstreamURL, cfg.Concurrency, cfg.serverEnv(), logDir)
	if err != nil {
		res.Problem = err.Error()
		return res
	}
	defer srv.stop()
	gc := graphqlClient{url: srv.URL, token: cfg.Token, http: &http.Client{Timeout: 30 * time.Second}}
	uuid, link, err := gc.firstInvoice(ctx)
	if err != nil {
		res.Problem = err.Error()
		return res
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	res.Via = "signed link (no headers)"
	if link == "" {
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/invoices/"+uuid+"/pdf", nil)
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
		res.Via = "download route with Authorization"
	}
	base, _ := readProc(srv.pid())
	resetPeakRSS(srv.pid())
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		res.Problem = err.Error()
		return res
	}
	defer resp.Body.Close()
	res.ContentType = resp.Header.Get("Content-Type")
	res.Bytes, err = io.Copy(io.Discard, resp.Body)
	res.Took = time.Since(start)
	after, _ := readProc(srv.pid())
	res.BaseRSS, res.PeakRSS = base.RSS, after.HWM
	switch {
	case err != nil:
		res.Problem = "download: " + err.Error()
	case resp.StatusCode != http.StatusOK:
		res.Problem = fmt.Sprintf("download: HTTP %d", resp.StatusCode)
	case res.Bytes < cfg.PDFSize:
		res.Problem = fmt.Sprintf("download: %d bytes, want at least %d", res.Bytes, cfg.PDFSize)
	}
	return res
}
