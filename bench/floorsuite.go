package main

// The issue-12 suite: the three queries the peers (Tailcall, GraphQL Mesh)
// were measured with, verbatim, each run against the server and against the
// floor (floor.go) in the same run, so that the figures that matter are
// same-run ratios on a machine shared with other work.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// peerQuery is an issue-12 query: its text, the floor's route for it, and
// the target ratio of the server's CPU per query to the floor's.
type peerQuery struct {
	query
	// FloorPath is the floor handler's route.
	FloorPath string
	// UUIDs is how many invoice uuids the text takes ($a, $b, $c).
	UUIDs int
	// MaxRatio is the target: server CPU per query at most this times the floor's.
	MaxRatio float64
	// AboutMs is the absolute figure for this machine, for reference.
	AboutMs float64
}

var (
	peerVolumes = peerQuery{
		query:     query{Name: "peers: volumes(first: 20)", Text: queries.PeersVolumes, Floor: oneCall},
		FloorPath: "/volumes", MaxRatio: 1.25, AboutMs: 0.35,
	}
	peerInvoices = peerQuery{
		query:     query{Name: "peers: invoices(first: 12)", Text: queries.PeersInvoices, Floor: oneCall},
		FloorPath: "/invoices", MaxRatio: 1.25, AboutMs: 0.19,
	}
	peerDashboard = peerQuery{
		query:     query{Name: "peers: dashboard (7 calls)", Text: queries.PeersDashboard, Floor: oneCall},
		FloorPath: "/dashboard", UUIDs: 3, MaxRatio: 1.4, AboutMs: 0.75,
	}
	peerQueries = []peerQuery{peerVolumes, peerInvoices, peerDashboard}
	// dashboard27 is the canonical 27-call Dashboard, measured beside its
	// floor handler only in the one-client rows at 20 ms.
	dashboard27 = peerQuery{query: dashboard, FloorPath: "/dashboard27"}
)

// body renders the GraphQL request body, the first UUIDs invoices as $a, $b, $c.
func (q peerQuery) body(uuids []string) []byte {
	req := map[string]any{"query": q.Text}
	if q.UUIDs > 0 {
		vars := map[string]string{}
		for i, name := range []string{"a", "b", "c"}[:q.UUIDs] {
			vars[name] = uuids[i]
		}
		req["variables"] = vars
	}
	b, _ := json.Marshal(req)
	return b
}

// floorTarget is the same request sent to the floor's route for the query.
func (q peerQuery) floorTarget(floorURL, token string, uuids []string) vegeta.Target {
	t := graphqlTarget(floorURL, token, q.body(uuids))
	t.URL = floorURL + q.FloorPath
	if q.UUIDs > 0 {
		t.URL += "?uuid=" + strings.Join(uuids[:q.UUIDs], "&uuid=")
	}
	return t
}

// Systems measured side by side.
const (
	systemServer      = "server"
	systemFloorServer = "floor, server's JSON"
	systemFloorStd    = "floor, encoding/json"
)

var floorCodecOf = map[string]string{systemFloorServer: "server", systemFloorStd: "std"}

// floorRow is one measured load of the suite.
type floorRow struct {
	Round   int
	System  string
	Query   string
	Latency time.Duration
	row
}

// floorSuite is the suite's results.
type floorSuite struct {
	Rows []floorRow
	// AnswerProblems names the queries whose floor answer differs from the server's.
	AnswerProblems []string
	// Allocs is BenchmarkServerVolumesPage's allocations per request, 0 when not run.
	Allocs      int64
	AllocsBytes int64
	AllocsNote  string
}

// dashboardLatency is the upstream latency of the one-client latency rows.
const dashboardLatency = 20 * time.Millisecond

// runFloorSuite measures, for Rounds rounds, each issue-12 query at 0 ms
// upstream latency with FloorClients clients on the server and on both floors
// (each a fresh process, the order alternating by round), then the 7-call
// and the 27-call dashboards with one client at 20 ms.
func runFloorSuite(ctx context.Context, cfg benchConfig, rg *rig) (floorSuite, error) {
	var suite floorSuite
	self, err := os.Executable()
	if err != nil {
		return suite, err
	}
	uuids, err := invoiceUUIDs(ctx, rg.sandbox.URL, cfg.Token, 3)
	if err != nil {
		return suite, err
	}
	startSystem := func(system, name string) (*process, error) {
		if system == systemServer {
			return startServer(ctx, rg.bin, name, rg.sandbox.URL, cfg.Concurrency, cfg.serverEnv(), rg.dir)
		}
		return startFloor(ctx, self, name, rg.sandbox.URL, floorCodecOf[system], cfg.Concurrency, rg.dir)
	}
	measureOn := func(round int, system string, q peerQuery, lat time.Duration, clients int) error {
		p, err := startSystem(system, fmt.Sprintf("%s-%d-%s", strings.NewReplacer(" ", "", ",", "-", "/", "").Replace(system), round, q.FloorPath[1:]))
		if err != nil {
			return err
		}
		defer p.stop()
		t := graphqlTarget(p.URL, cfg.Token, q.body(uuids))
		if system != systemServer {
			t = q.floorTarget(p.URL, cfg.Token, uuids)
		}
		r := measureTarget(ctx, cfg, p, rg.sandbox, rg.ctl, t, clients, q.Name)
		r.Query, r.Latency, r.Mode = q.query, lat, system
		fmt.Println(r.progressLine())
		suite.Rows = append(suite.Rows, floorRow{Round: round, System: system, Query: q.Name, Latency: lat, row: r})
		return ctx.Err()
	}
	systems := []string{systemServer, systemFloorServer, systemFloorStd}
	for round := 1; round <= cfg.Rounds; round++ {
		if err := rg.ctl.setFaults(ctx, sandbox.Faults{}); err != nil {
			return suite, err
		}
		order := slices.Clone(systems)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, q := range peerQueries {
			if !cfg.runs("floor") { // -only floor-latency: the 20 ms rows alone
				break
			}
			for _, system := range order {
				if err := measureOn(round, system, q, 0, cfg.FloorClients); err != nil {
					return suite, err
				}
			}
		}
		if err := rg.ctl.setFaults(ctx, sandbox.Faults{Latency: dashboardLatency}); err != nil {
			return suite, err
		}
		pair := []string{systemServer, systemFloorServer}
		if round%2 == 0 {
			slices.Reverse(pair)
		}
		for _, q := range []peerQuery{peerDashboard, dashboard27} {
			for _, system := range pair {
				if err := measureOn(round, system, q, dashboardLatency, 1); err != nil {
					return suite, err
				}
			}
		}
	}
	suite.AnswerProblems = suite.compareAnswers()
	if cfg.Allocs && cfg.runs("floor") {
		suite.Allocs, suite.AllocsBytes, suite.AllocsNote = benchmarkAllocs(ctx)
	}
	return suite, rg.ctl.setFaults(ctx, sandbox.Faults{})
}

// startFloor runs `bench floor` (this program) against the sandbox.
func startFloor(ctx context.Context, self, name, upstreamURL, codec string, concurrency int, logDir string) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"floor", "-addr", addr, "-upstream", upstreamURL, "-codec", codec, "-concurrency", fmt.Sprint(concurrency)}
	return start(ctx, name, self, args, nil, addr, "/healthz", logDir)
}

// invoiceUUIDs asks the sandbox for the account's n newest invoices.
func invoiceUUIDs(ctx context.Context, sandboxURL, token string, n int) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v2/customers/my/invoices?page=1&per_page=%d", sandboxURL, n), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var page upstream.InvoicePage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, fmt.Errorf("invoice list: %w", err)
	}
	var uuids []string
	for _, inv := range page.Invoices {
		uuids = append(uuids, inv.InvoiceUUID)
	}
	if len(uuids) < n {
		return nil, fmt.Errorf("the sandbox account has %d invoices, want %d", len(uuids), n)
	}
	return uuids, nil
}

// compareAnswers checks, per query (the peers' at 0 ms, the 27-call
// dashboard at 20 ms), that every floor's data and upstream calls per query
// (counted at the sandbox) equal the server's, and that both carry
// extensions.rateLimit.
func (s floorSuite) compareAnswers() []string {
	type compared struct {
		name    string
		latency time.Duration
	}
	var checks []compared
	for _, q := range peerQueries {
		checks = append(checks, compared{q.Name, 0})
	}
	checks = append(checks, compared{dashboard27.Name, dashboardLatency})
	var problems []string
	for _, q := range checks {
		type answer struct {
			floorRow
			data any
		}
		var server *answer
		var floors []answer
		for _, r := range s.Rows {
			if r.Query != q.name || r.Latency != q.latency || r.Round != 1 {
				continue
			}
			var got struct {
				Data       any `json:"data"`
				Extensions struct {
					RateLimit map[string]any `json:"rateLimit"`
				} `json:"extensions"`
			}
			if err := json.Unmarshal(r.Answer, &got); err != nil || got.Data == nil {
				problems = append(problems, fmt.Sprintf("%s on %s: no data in %s", q.name, r.System, truncate(string(r.Answer), 200)))
				continue
			}
			if got.Extensions.RateLimit["limit"] == nil {
				problems = append(problems, fmt.Sprintf("%s on %s: no extensions.rateLimit", q.name, r.System))
			}
			if r.System == systemServer {
				server = &answer{r, got.Data}
			} else {
				floors = append(floors, answer{r, got.Data})
			}
		}
		for _, f := range floors {
			switch {
			case server == nil:
			case !reflect.DeepEqual(server.data, f.data):
				problems = append(problems, fmt.Sprintf("%s: the %s answer differs from the server's: %s", q.name, f.System, truncate(string(f.Answer), 300)))
			case f.Calls != server.Calls:
				problems = append(problems, fmt.Sprintf("%s: the %s made %d upstream calls, the server %d", q.name, f.System, f.Calls, server.Calls))
			}
		}
	}
	return problems
}

// median of the figures of the rows that match.
func (s floorSuite) median(system, name string, lat time.Duration, figure func(row) float64) (float64, []float64) {
	var xs []float64
	for _, r := range s.Rows {
		if r.System == system && r.Query == name && r.Latency == lat {
			xs = append(xs, figure(r.row))
		}
	}
	if len(xs) == 0 {
		return 0, nil
	}
	sorted := slices.Sorted(slices.Values(xs))
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2], xs
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2, xs
}

func cpuMs(r row) float64  { return r.CPUPerRequest.Seconds() * 1000 }
func rssMiB(r row) float64 { return float64(r.PeakRSS) / (1 << 20) }
func p50Ms(r row) float64  { return r.Load.Quantile(0.5).Seconds() * 1000 }

// ratios are the per-round server/floor ratios of CPU per query.
func (s floorSuite) ratios(name string) []float64 {
	var out []float64
	for _, r := range s.Rows {
		if r.System != systemServer || r.Query != name || r.Latency != 0 {
			continue
		}
		for _, f := range s.Rows {
			if f.System == systemFloorServer && f.Query == name && f.Latency == 0 && f.Round == r.Round && f.CPUPerRequest > 0 {
				out = append(out, cpuMs(r.row)/cpuMs(f.row))
			}
		}
	}
	return out
}

func fmtList(xs []float64, format string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ", ")
}

// targets are the figures beside what the suite measured.
func (s floorSuite) targets(cfg benchConfig) []target {
	var ts []target
	if len(s.Rows) == 0 {
		return nil
	}
	cpuRows := slices.ContainsFunc(s.Rows, func(r floorRow) bool { return r.Latency == 0 })
	for _, q := range peerQueries {
		if !cpuRows {
			break
		}
		srv, srvs := s.median(systemServer, q.Name, 0, cpuMs)
		fl, _ := s.median(systemFloorServer, q.Name, 0, cpuMs)
		std, _ := s.median(systemFloorStd, q.Name, 0, cpuMs)
		t := target{Name: fmt.Sprintf("%s: server CPU per query, 0 ms, %d clients", q.Name, cfg.FloorClients),
			Want: fmt.Sprintf("<= %.2f× the floor (about %.2f ms here)", q.MaxRatio, q.AboutMs)}
		if len(srvs) > 0 && fl > 0 {
			ratio := srv / fl
			t.Measured, t.Met = true, ratio <= q.MaxRatio && s.clean(q.Name)
			t.Got = fmt.Sprintf("%.3f ms = %.2f× the floor's %.3f ms (rounds: server %s ms, ratios %s); floor with encoding/json %.3f ms",
				srv, ratio, fl, fmtList(srvs, "%.3f"), fmtList(s.ratios(q.Name), "%.2f"), std)
		}
		ts = append(ts, t)
	}
	for _, q := range peerQueries {
		if !cpuRows {
			break
		}
		rss, rsss := s.median(systemServer, q.Name, 0, rssMiB)
		fl, _ := s.median(systemFloorServer, q.Name, 0, rssMiB)
		t := target{Name: fmt.Sprintf("%s: server peak RSS under that load", q.Name), Want: "<= 48 MiB"}
		if len(rsss) > 0 {
			t.Measured, t.Met = true, rss <= 48
			t.Got = fmt.Sprintf("%.1f MiB (rounds %s; floor %.1f MiB)", rss, fmtList(rsss, "%.1f"), fl)
		}
		ts = append(ts, t)
	}
	for _, d := range []struct {
		name   string
		q      query
		within time.Duration
		floor  bool
	}{{peerDashboard.Name, peerDashboard.query, time.Millisecond, true}, {dashboard27.Name, dashboard, 2 * time.Millisecond, true}} {
		floor, why := d.q.Floor(dashboardLatency, cfg.Concurrency)
		if d.q.Name == peerDashboard.Name {
			why = "the 7 calls in one round at MAX_CONCURRENCY=" + fmt.Sprint(cfg.Concurrency)
		}
		p50, p50s := s.median(systemServer, d.name, dashboardLatency, p50Ms)
		t := target{Name: fmt.Sprintf("%s: p50 at %v upstream latency, 1 client", d.name, dashboardLatency),
			Want: fmt.Sprintf("<= floor + %v (floor %v: %s)", d.within, floor, why)}
		if len(p50s) > 0 {
			over := time.Duration(p50*float64(time.Millisecond)) - floor
			t.Measured, t.Met = true, over <= d.within && s.clean(d.name)
			t.Got = fmt.Sprintf("%.2f ms (floor + %.2f ms; rounds %s ms)", p50, float64(over)/float64(time.Millisecond), fmtList(p50s, "%.2f"))
			if d.floor {
				bare, _ := s.median(systemFloorServer, d.name, dashboardLatency, p50Ms)
				t.Got += fmt.Sprintf("; the bare floor program %.2f ms", bare)
			}
		}
		ts = append(ts, t)
	}
	if cpuRows {
		t := target{Name: "BenchmarkServerVolumesPage allocations per request", Want: "<= 1156 (a third of 3,468)"}
		if s.Allocs > 0 {
			t.Measured, t.Met = true, s.Allocs <= 1156
			t.Got = fmt.Sprintf("%d allocs/op, %d B/op", s.Allocs, s.AllocsBytes)
		} else if s.AllocsNote != "" {
			t.Got = s.AllocsNote
		}
		ts = append(ts, t)
	}
	t := target{Name: "floor answers equal the server's (data, upstream calls; extensions.rateLimit present)", Want: "all equal", Measured: true, Met: len(s.AnswerProblems) == 0}
	t.Got = "equal"
	if !t.Met {
		t.Got = strings.Join(s.AnswerProblems, "; ")
	}
	return append(ts, t)
}

// clean reports whether every row of the query ran without problems.
func (s floorSuite) clean(name string) bool {
	for _, r := range s.Rows {
		if r.Query == name && r.Problem != "" {
			return false
		}
	}
	return true
}

// problems counts the rows that saw errors.
func (s floorSuite) problems() int {
	n := len(s.AnswerProblems)
	for _, r := range s.Rows {
		if r.Problem != "" {
			n++
		}
	}
	return n
}

var floorHeader = []string{"round", "system", "query", "latency", "clients", "upstream calls/query", "p50", "p99", "req/s", "CPU (cores)", "CPU/query", "peak RSS", "sandbox + load generator CPU", "errors", "cache after the load"}

func (r floorRow) cells() []string {
	c := r.row.cells()
	// row.cells: latency, mode, query, clients, calls, p50, p95, p99, req/s, CPU, CPU/req, RSS, others, errors, cache
	return []string{fmt.Sprint(r.Round), r.System, r.Query, c[0], c[3], c[4], c[5], c[7], c[8], c[9], c[10], c[11], c[12], c[13], c[14]}
}

// benchmarkAllocs runs BenchmarkServerVolumesPage in the package that holds
// it and returns its allocs/op and B/op.
func benchmarkAllocs(ctx context.Context) (allocs, bytes int64, note string) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return 0, 0, err.Error()
	}
	dir := ""
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil
		case d.IsDir() && path != root && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")):
			return filepath.SkipDir
		case strings.HasSuffix(path, "_test.go"):
			if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), "func BenchmarkServerVolumesPage(") {
				dir = filepath.Dir(path)
				return filepath.SkipAll
			}
		}
		return nil
	})
	if dir == "" {
		return 0, 0, "BenchmarkServerVolumesPage not found"
	}
	fmt.Println("running BenchmarkServerVolumesPage for its allocations...")
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkServerVolumesPage$", "-benchmem", "-benchtime", "3000x", ".")
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		return 0, 0, fmt.Sprintf("go test: %v: %s", err, strings.Join(strings.Fields(truncate(out, 400)), " "))
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 1; i < len(f); i++ {
			switch f[i] {
			case "allocs/op":
				fmt.Sscan(f[i-1], &allocs)
			case "B/op":
				fmt.Sscan(f[i-1], &bytes)
			}
		}
	}
	if allocs == 0 {
		return 0, 0, "no allocs/op in: " + truncate(out, 300)
	}
	return allocs, bytes, ""
}

// sortedRows orders the suite's rows for the tables: by latency, query, system, round.
func (s floorSuite) sortedRows() []floorRow {
	rows := slices.Clone(s.Rows)
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Latency != b.Latency {
			return a.Latency < b.Latency
		}
		if a.Query != b.Query {
			return a.Query < b.Query
		}
		if a.System != b.System {
			return a.System < b.System
		}
		return a.Round < b.Round
	})
	return rows
}
