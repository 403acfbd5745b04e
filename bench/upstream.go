package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// sandboxControl drives the sandbox process's control endpoints: its fault
// knobs and its request counters, which are the benchmark's "upstream calls".
type sandboxControl struct {
	url  string
	http *http.Client
}

func (c sandboxControl) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+sandbox.ControlPrefix+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("sandbox %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return fmt.Errorf("sandbox %s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// setFaults replaces every fault knob (latency, error rates, PDF size...).
func (c sandboxControl) setFaults(ctx context.Context, f sandbox.Faults) error {
	return c.do(ctx, http.MethodPut, "faults", f, nil)
}

// reset zeroes the request counters (the knobs stay).
func (c sandboxControl) reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "reset", nil, nil)
}

// stats reads the counters since the last reset.
func (c sandboxControl) stats(ctx context.Context) (sandbox.Stats, error) {
	var s sandbox.Stats
	err := c.do(ctx, http.MethodGet, "stats", nil, &s)
	return s, err
}

// startSandbox runs `oceangraph sandbox` on its own loopback port, with extra flags.
func startSandbox(ctx context.Context, bin, logDir string, args ...string) (*process, sandboxControl, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, sandboxControl{}, err
	}
	return startSandboxAt(ctx, bin, addr, logDir, args...)
}

// startSandboxAt runs `oceangraph sandbox` on addr (to restart it where the
// server expects it).
func startSandboxAt(ctx context.Context, bin, addr, logDir string, args ...string) (*process, sandboxControl, error) {
	p, err := start(ctx, "sandbox", bin, append([]string{"sandbox", "-addr", addr}, args...), nil, addr, sandbox.ControlPrefix+"stats", logDir)
	if err != nil {
		return nil, sandboxControl{}, err
	}
	return p, sandboxControl{url: p.URL, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// startServer runs the server against the sandbox at upstreamURL, with extra
// environment (the naive mode's settings), and waits for /healthz.
func startServer(ctx context.Context, bin, name, upstreamURL string, concurrency int, extraEnv []string, logDir string) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port := splitHostPort(addr)
	env := append([]string{
		"LISTEN_HOST=" + host,
		"PORT=" + port,
		"DIGITALOCEAN_API_URL=" + upstreamURL,
		"DIGITALOCEAN_TOKEN=",
		fmt.Sprintf("MAX_CONCURRENCY=%d", concurrency),
		"LOG_FORMAT=json",
		"SHUTDOWN_DRAIN=0s", // no load balancer to tell: stop at once
	}, extraEnv...)
	return start(ctx, name, bin, nil, env, addr, "/healthz", logDir)
}

// withoutSharedState is the environment of the scenarios that send one token
// from many clients and measure one request's economy: no cache across
// requests and no rate budget (their load is far past 250 calls a minute).
// The other scenarios run the server's defaults: cache (64 MiB) and budget on.
var withoutSharedState = []string{"CACHE_BYTES=0", "RATE_LIMIT_PER_MINUTE=0"}

func splitHostPort(addr string) (string, string) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:]
		}
	}
	return addr, ""
}

// graphqlClient sends single GraphQL requests (set-up and exact call counts).
type graphqlClient struct {
	url, token string
	http       *http.Client
}

// post sends one query and decodes the response's data into out (may be
// nil); it fails on a non-200 status or on GraphQL errors.
func (g graphqlClient) post(ctx context.Context, body []byte, out any) error {
	b, err := postGraphQL(ctx, g.http, g.url, g.token, body)
	if err != nil || out == nil {
		return err
	}
	var envelope struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &envelope); err != nil {
		return err
	}
	return json.Unmarshal(envelope.Data, out)
}

// postGraphQL sends one GraphQL request body with token and returns the
// response; it fails on a non-200 status or on GraphQL errors.
func postGraphQL(ctx context.Context, client *http.Client, url, token string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/query", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return graphQLAnswer(client, req)
}

// firstInvoice returns the uuid of the account's newest invoice and the URL
// of its PDF.
func (g graphqlClient) firstInvoice(ctx context.Context) (uuid, pdfURL string, err error) {
	var data struct {
		Invoices struct {
			Nodes []struct {
				UUID  string `json:"uuid"`
				Files struct {
					PDF struct {
						URL string `json:"url"`
					} `json:"pdf"`
				} `json:"files"`
			} `json:"nodes"`
		} `json:"invoices"`
	}
	body, _ := json.Marshal(map[string]string{"query": `{ invoices(first: 1) { nodes { uuid files { pdf { url } } } } }`})
	if err := g.post(ctx, body, &data); err != nil {
		return "", "", fmt.Errorf("first invoice: %w", err)
	}
	if len(data.Invoices.Nodes) == 0 {
		return "", "", fmt.Errorf("first invoice: the account has no invoices")
	}
	n := data.Invoices.Nodes[0]
	return n.UUID, n.Files.PDF.URL, nil
}
