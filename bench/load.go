package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// loadResult is what one closed-loop run of the load generator saw.
type loadResult struct {
	Requests  int
	Elapsed   time.Duration
	Latencies []time.Duration // sorted
	// Status counts HTTP statuses; 0 is a transport error (no response).
	Status map[int]int
	// WithErrors counts responses that carried GraphQL errors.
	WithErrors int
	// Codes counts errors[].extensions.code; "" is an error without a code.
	Codes map[string]int
	// RateLimitedWithoutRetryAfter counts RATE_LIMITED errors lacking retryAfter.
	RateLimitedWithoutRetryAfter int
	// Examples holds the first few problems seen, for the report.
	Examples []string
}

// gqlResponse is the part of a GraphQL response the checks read.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Path       []any  `json:"path"`
		Extensions struct {
			Code       string   `json:"code"`
			RetryAfter *float64 `json:"retryAfter"`
		} `json:"extensions"`
	} `json:"errors"`
}

// newLoadClient is an HTTP client that keeps one connection per load client alive.
func newLoadClient(clients int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        clients * 2,
			MaxIdleConnsPerHost: clients * 2,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// graphqlTarget is a POST /query the way a frontend sends it.
func graphqlTarget(serverURL, token string, body []byte) vegeta.Target {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return vegeta.Target{Method: http.MethodPost, URL: serverURL + "/query", Body: body, Header: h}
}

// freshTokenRuns numbers the runs of freshTokens, so that no two share a token.
var freshTokenRuns atomic.Int64

// freshTokens sends t each time with a bearer token never sent before. The
// sandbox (-account-token) serves every token as one account, so the requests
// and answers stay the same while the server's per-token cache never sees a
// token twice: it is on but cold, every query costing its full upstream calls.
func freshTokens(t vegeta.Target) vegeta.Targeter {
	prefix := fmt.Sprintf("cold-%d-%d", os.Getpid(), freshTokenRuns.Add(1))
	var n atomic.Int64
	return func(tgt *vegeta.Target) error {
		*tgt = t
		tgt.Header = t.Header.Clone()
		tgt.Header.Set("Authorization", fmt.Sprintf("Bearer %s-%d", prefix, n.Add(1)))
		return nil
	}
}

// runLoad drives targets (round robin) with `clients` closed-loop workers
// (each sends its next request when the previous answered) for dur.
func runLoad(ctx context.Context, client *http.Client, targets []vegeta.Target, clients int, dur time.Duration, name string) loadResult {
	return runTargeter(ctx, client, vegeta.NewStaticTargeter(targets...), clients, dur, name)
}

// runTargeter is runLoad with the requests made by tr.
func runTargeter(ctx context.Context, client *http.Client, tr vegeta.Targeter, clients int, dur time.Duration, name string) loadResult {
	attacker := vegeta.NewAttacker(
		vegeta.Client(client),
		vegeta.Workers(uint64(clients)),
		vegeta.MaxWorkers(uint64(clients)),
		vegeta.Redirects(vegeta.NoFollow),
	)
	stop := context.AfterFunc(ctx, func() { attacker.Stop() })
	defer stop()
	// Frequency 0: no pacing, each worker fires again as soon as it is answered.
	pacer := vegeta.ConstantPacer{Freq: 0, Per: time.Second}
	res := loadResult{Status: map[int]int{}, Codes: map[string]int{}}
	var first, last time.Time
	for r := range attacker.Attack(tr, pacer, dur, name) {
		res.Requests++
		res.Latencies = append(res.Latencies, r.Latency)
		if first.IsZero() || r.Timestamp.Before(first) {
			first = r.Timestamp
		}
		if r.End().After(last) {
			last = r.End()
		}
		res.check(r)
	}
	res.Elapsed = last.Sub(first)
	slices.Sort(res.Latencies)
	return res
}

// check records one response: its status, and every GraphQL error with its code.
func (res *loadResult) check(r *vegeta.Result) {
	code := int(r.Code)
	if r.Error != "" && code == 0 {
		res.Status[0]++
		res.example(fmt.Sprintf("transport error: %s", r.Error))
		return
	}
	res.Status[code]++
	if code >= 500 {
		res.example(fmt.Sprintf("HTTP %d: %s", code, truncate(string(r.Body), 300)))
	}
	// Most responses carry no errors; decode only the ones that might.
	if code == http.StatusOK && !bytes.Contains(r.Body, []byte(`"errors"`)) {
		return
	}
	var g gqlResponse
	if err := json.Unmarshal(r.Body, &g); err != nil {
		res.Codes["(body is not JSON)"]++
		res.example(fmt.Sprintf("HTTP %d, body is not JSON: %s", code, truncate(string(r.Body), 300)))
		return
	}
	if len(g.Errors) == 0 {
		return
	}
	res.WithErrors++
	for _, e := range g.Errors {
		res.Codes[e.Extensions.Code]++
		if e.Extensions.Code == "" {
			res.example(fmt.Sprintf("error without extensions.code at %v: %s", e.Path, e.Message))
		}
		if e.Extensions.Code == "RATE_LIMITED" && e.Extensions.RetryAfter == nil {
			res.RateLimitedWithoutRetryAfter++
			res.example(fmt.Sprintf("RATE_LIMITED without retryAfter at %v: %s", e.Path, e.Message))
		}
	}
	if len(res.Examples) < 3 {
		res.example(fmt.Sprintf("HTTP %d with errors: %s", code, truncate(string(r.Body), 300)))
	}
}

func (res *loadResult) example(s string) {
	if len(res.Examples) < 5 {
		res.Examples = append(res.Examples, s)
	}
}

// Clean reports whether every response was a 200 without GraphQL errors.
func (res loadResult) Clean() bool {
	return res.Requests > 0 && res.Status[http.StatusOK] == res.Requests && res.WithErrors == 0
}

// Quantile returns the q-quantile (0..1) of the latencies, nearest rank.
func (res loadResult) Quantile(q float64) time.Duration {
	n := len(res.Latencies)
	if n == 0 {
		return 0
	}
	i := int(q*float64(n)+0.5) - 1
	return res.Latencies[min(max(i, 0), n-1)]
}

// RPS is completed requests per second of wall time.
func (res loadResult) RPS() float64 {
	if res.Elapsed <= 0 {
		return 0
	}
	return float64(res.Requests) / res.Elapsed.Seconds()
}

// statusSummary renders the status counts as "200:1234 502:3".
func (res loadResult) statusSummary() string {
	return countsSummary(res.Status)
}

func countsSummary[K int | string](m map[K]int) string {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		name := fmt.Sprint(k)
		if name == "" {
			name = `""`
		}
		fmt.Fprintf(&b, "%s:%d", name, m[k])
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
