package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: a call
// that returns must not leave its connection, timer or retry loop running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// specRateLimit is the spec's example of the ratelimit-* headers.
var specRateLimit = RateLimit{Limit: 5000, Remaining: 4816, Reset: time.Unix(1444931833, 0).UTC()}

// fakeDO is a stand-in for DigitalOcean: a mux per endpoint, recording the
// requests it receives.
type fakeDO struct {
	*httptest.Server
	mux *http.ServeMux

	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte // the requests' bodies, read before the mux sees them
	arrivals []time.Time
	conns    atomic.Int32 // connections accepted
}

func newFakeDO(t *testing.T) *fakeDO {
	t.Helper()
	f := &fakeDO{mux: http.NewServeMux()}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.requests = append(f.requests, r.Clone(context.Background()))
		f.bodies = append(f.bodies, body)
		f.arrivals = append(f.arrivals, time.Now())
		f.mu.Unlock()
		f.mux.ServeHTTP(w, r)
	}))
	f.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.Start()
	t.Cleanup(f.Close)
	return f
}

// seen returns the requests received so far.
func (f *fakeDO) seen() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...)
}

// sentJSON decodes the body of the i-th request received, failing the test
// when it is not JSON sent as such.
func (f *fakeDO) sentJSON(t *testing.T, i int) any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if ct := f.requests[i].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("request %d Content-Type = %q, want application/json", i, ct)
	}
	var v any
	if err := json.Unmarshal(f.bodies[i], &v); err != nil {
		t.Fatalf("request %d body %q: %v", i, f.bodies[i], err)
	}
	return v
}

// gaps returns the time between consecutive requests.
func (f *fakeDO) gaps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(f.arrivals); i++ {
		out = append(out, f.arrivals[i].Sub(f.arrivals[i-1]))
	}
	return out
}

// newTestClient builds a client for base with short retry waits, so that
// retry tests run fast unless they ask the server for a wait.
func newTestClient(t *testing.T, base string, cfg Config) *Client {
	t.Helper()
	cfg.BaseURL = base
	if cfg.RetryWaitMin == 0 {
		cfg.RetryWaitMin = time.Millisecond
	}
	if cfg.RetryWaitMax == 0 {
		cfg.RetryWaitMax = 5 * time.Second
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// fixture reads a file of testdata/.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeRateLimit sets the spec's example ratelimit-* headers.
func writeRateLimit(w http.ResponseWriter) {
	w.Header().Set("Ratelimit-Limit", "5000")
	w.Header().Set("Ratelimit-Remaining", "4816")
	w.Header().Set("Ratelimit-Reset", "1444931833")
}

// serveJSON answers with status and body as DigitalOcean does.
func serveJSON(status int, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeRateLimit(w)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		w.Write(body)
	}
}

// assertEqual fails with both values as JSON when they differ.
func assertEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("%s differs\n got: %s\nwant: %s", what, g, w)
	}
}

func ptr[T any](v T) *T { return &v }

// endpointCall is one client method, called with fixed arguments.
type endpointCall struct {
	name    string
	pattern string // the fakeDO mux pattern it requests
	call    func(ctx context.Context, c *Client) error
	// endpoint is the route template it reports, when pattern is not (a
	// literal id keeps the mux from seeing two patterns that overlap).
	endpoint string
}

// route is the Endpoint the call's errors name.
func (ep endpointCall) route() string {
	if ep.endpoint != "" {
		return ep.endpoint
	}
	return ep.pattern
}

// write reports whether the call is a POST or DELETE, never retried once sent.
func (ep endpointCall) write() bool { return !idempotent(ep.route()) }

// everyEndpoint lists every client method, for tests that must hold for all.
var everyEndpoint = []endpointCall{
	{"billing history", "GET /v2/customers/my/billing_history", func(ctx context.Context, c *Client) error {
		_, err := c.ListBillingHistory(ctx, ListOptions{})
		return err
	}, ""},
	{"invoices", "GET /v2/customers/my/invoices", func(ctx context.Context, c *Client) error {
		_, err := c.ListInvoices(ctx, ListOptions{})
		return err
	}, ""},
	{"invoice items", "GET /v2/customers/my/invoices/{uuid}", func(ctx context.Context, c *Client) error {
		_, err := c.ListInvoiceItems(ctx, "22737513-0ea7-4206-8ceb-98a575af7681", ListOptions{})
		return err
	}, ""},
	{"invoice summary", "GET /v2/customers/my/invoices/{uuid}/summary", func(ctx context.Context, c *Client) error {
		_, err := c.GetInvoiceSummary(ctx, "22737513-0ea7-4206-8ceb-98a575af7681")
		return err
	}, ""},
	{"invoice csv", "GET /v2/customers/my/invoices/{uuid}/csv", func(ctx context.Context, c *Client) error {
		return openAndClose(c.GetInvoiceFile(ctx, "22737513-0ea7-4206-8ceb-98a575af7681", FormatCSV))
	}, ""},
	{"invoice pdf", "GET /v2/customers/my/invoices/{uuid}/pdf", func(ctx context.Context, c *Client) error {
		return openAndClose(c.GetInvoiceFile(ctx, "22737513-0ea7-4206-8ceb-98a575af7681", FormatPDF))
	}, ""},
	{"balance", "GET /v2/customers/my/balance", func(ctx context.Context, c *Client) error {
		_, err := c.GetBalance(ctx)
		return err
	}, ""},
	{"volumes", "GET /v2/volumes", func(ctx context.Context, c *Client) error {
		_, err := c.ListVolumes(ctx, VolumeListOptions{})
		return err
	}, ""},
	{"volume", "GET /v2/volumes/{id}", func(ctx context.Context, c *Client) error {
		_, err := c.GetVolume(ctx, "506f78a4-e098-11e5-ad9f-000f53306ae1")
		return err
	}, ""},
	{"volume actions", "GET /v2/volumes/{id}/actions", func(ctx context.Context, c *Client) error {
		_, err := c.ListVolumeActions(ctx, "7724db7c-e098-11e5-b522-000f53304e51", ListOptions{})
		return err
	}, ""},
	{"volume action", "GET /v2/volumes/{id}/actions/{action_id}", func(ctx context.Context, c *Client) error {
		_, err := c.GetVolumeAction(ctx, "7724db7c-e098-11e5-b522-000f53304e51", 36804636)
		return err
	}, ""},
	{"volume snapshots", "GET /v2/volumes/{id}/snapshots", func(ctx context.Context, c *Client) error {
		_, err := c.ListVolumeSnapshots(ctx, "7724db7c-e098-11e5-b522-000f53304e51", ListOptions{})
		return err
	}, ""},
	{"volume snapshot", "GET /v2/volumes/snapshots/fbe805e8-866b-11e6-96bf-000f53315a41", func(ctx context.Context, c *Client) error {
		_, err := c.GetVolumeSnapshot(ctx, "fbe805e8-866b-11e6-96bf-000f53315a41")
		return err
	}, EndpointVolumeSnapshot},
}

// everyWrite lists every client method that changes the account.
var everyWrite = []endpointCall{
	{"create volume", "POST /v2/volumes", func(ctx context.Context, c *Client) error {
		_, err := c.CreateVolume(ctx, VolumeCreateRequest{Name: "example", Region: "nyc1", SizeGigabytes: 10})
		return err
	}, ""},
	{"delete volume", "DELETE /v2/volumes/{id}", func(ctx context.Context, c *Client) error {
		return c.DeleteVolume(ctx, "7724db7c-e098-11e5-b522-000f53304e51")
	}, ""},
	{"attach volume", "POST /v2/volumes/{id}/actions", func(ctx context.Context, c *Client) error {
		_, err := c.AttachVolume(ctx, "7724db7c-e098-11e5-b522-000f53304e51", 11612190, "nyc1")
		return err
	}, ""},
	{"detach volume", "POST /v2/volumes/{id}/actions", func(ctx context.Context, c *Client) error {
		_, err := c.DetachVolume(ctx, "7724db7c-e098-11e5-b522-000f53304e51", 11612190, "nyc1")
		return err
	}, ""},
	{"resize volume", "POST /v2/volumes/{id}/actions", func(ctx context.Context, c *Client) error {
		_, err := c.ResizeVolume(ctx, "7724db7c-e098-11e5-b522-000f53304e51", 100, "nyc1")
		return err
	}, ""},
	{"create volume snapshot", "POST /v2/volumes/{id}/snapshots", func(ctx context.Context, c *Client) error {
		_, err := c.CreateVolumeSnapshot(ctx, "7724db7c-e098-11e5-b522-000f53304e51", SnapshotCreateRequest{Name: "big-data-snapshot1475261774"})
		return err
	}, ""},
	{"delete volume snapshot", "DELETE /v2/volumes/snapshots/{snapshot_id}", func(ctx context.Context, c *Client) error {
		return c.DeleteVolumeSnapshot(ctx, "fbe805e8-866b-11e6-96bf-000f53315a41")
	}, ""},
}

func openAndClose(f *File, err error) error {
	if f != nil {
		f.Body.Close()
	}
	return err
}
