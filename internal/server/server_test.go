package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

type graphQLResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	Extensions map[string]json.RawMessage `json:"extensions"`
}

func postQuery(t *testing.T, base, query string) graphQLResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	resp, err := http.Post(base+"/query", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("POST /query: %v", err)
	}
	defer resp.Body.Close()
	var out graphQLResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST /query: status %d, undecodable body: %v", resp.StatusCode, err)
	}
	return out
}

func TestIssueQueryReturnsSandboxVolumes(t *testing.T) {
	base := startServer(t, serverOptions{}).url
	resp := postQuery(t, base, `{ volumes(first: 3) { totalCount nodes { id name region { slug } } } }`)
	if len(resp.Errors) > 0 {
		t.Fatalf("errors: %+v", resp.Errors)
	}
	var data struct {
		Volumes struct {
			TotalCount int
			Nodes      []struct {
				ID, Name string
				Region   struct{ Slug string }
			}
		}
	}
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Volumes.TotalCount < 100 || len(data.Volumes.Nodes) != 3 {
		t.Fatalf("totalCount %d with %d nodes, want >= 100 sandbox volumes and a page of 3", data.Volumes.TotalCount, len(data.Volumes.Nodes))
	}
	for _, v := range data.Volumes.Nodes {
		if v.ID == "" || v.Name == "" || v.Region.Slug == "" {
			t.Errorf("volume %+v lacks id, name or region slug", v)
		}
	}
	var rl struct{ Limit, Remaining int }
	if err := json.Unmarshal(resp.Extensions["rateLimit"], &rl); err != nil || rl.Limit == 0 {
		t.Errorf("extensions.rateLimit = %s, want DigitalOcean's limits from the sandbox's headers", resp.Extensions["rateLimit"])
	}
}

func TestHealthAndReadiness(t *testing.T) {
	base := startServer(t, serverOptions{}).url
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
		}
	}
}

func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	// DigitalOcean (a sandbox) answers after 300ms; the server is told to stop
	// once the query has reached it, and the query must still get its data.
	arrived := make(chan struct{}, 1)
	sb := sandbox.New(sandbox.Options{Latency: 300 * time.Millisecond})
	do := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		sb.ServeHTTP(w, r)
	})
	srv := startServer(t, serverOptions{upstream: do, env: map[string]string{"DIGITALOCEAN_TOKEN": "shutdown-test"}, logs: io.Discard})
	base := srv.url

	var wg sync.WaitGroup
	var resp graphQLResponse
	wg.Go(func() { resp = postQuery(t, base, `{ balance { accountBalance } }`) })
	<-arrived
	stopped := make(chan error, 1)
	go func() { stopped <- srv.stop() }()
	wg.Wait()
	if err := <-stopped; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), "accountBalance") {
		t.Errorf("in-flight query during shutdown: data %s errors %+v, want its data", resp.Data, resp.Errors)
	}
}
