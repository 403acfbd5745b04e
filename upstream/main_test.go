package upstream

import (
	"context"
	"encoding/json"
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
	arrivals []time.Time
	conns    atomic.Int32 // connections accepted
}

func newFakeDO(t *testing.T) *fakeDO {
	t.Helper()
	f := &fakeDO{mux: http.NewServeMux()}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Clone(context.Background()))
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
}

// everyEndpoint lists every client method, for tests that must hold for all.
var everyEndpoint = []endpointCall{
	{"billing history", "GET /v2/customers/my/billing_history", func(ctx context.Context, c *Client) error {
		_, err := c.ListBillingHistory(ctx, ListOptions{})
		return err
	}},
	{"invoices", "GET /v2/customers/my/invoices", func(ctx context.Context, c *Client) error {
		_, err := c.ListInvoices(ctx, ListOptions{})
		return err
	}},
	{"invoice items", "GET /v2/customers/my/invoices/{uuid}", func(ctx context.Context, c *Client) error {
		_, err := c.ListInvoiceItems(ctx, "22737513-0ea7-4206-8ceb-98a575af7681", ListOptions{})
		return err
	}},
	{"invoice summary", "GET /v2/customers/my/invoices/{uuid}/summary", func(ctx context.Context, c *Client) error {
		_, err := c.GetInvoiceSummary(ctx, "22737513-0ea7-4206-8ceb-98a575af7681")
		return err
	}},
	{"invoice csv", "GET /v2/customers/my/invoices/{uuid}/csv", func(ctx context.Context, c *Client) error {
		return openAndClose(c.GetInvoiceFile(ctx, "22737513-0ea7-4206-8ceb-98a575af7681", FormatCSV))
	}},
	{"invoice pdf", "GET /v2/customers/my/invoices/{uuid}/pdf", func(ctx context.Context, c *Client) error {
		return openAndClose(c.GetInvoiceFile(ctx, "22737513-0ea7-4206-8ceb-98a575af7681", FormatPDF))
	}},
	{"balance", "GET /v2/customers/my/balance", func(ctx context.Context, c *Client) error {
		_, err := c.GetBalance(ctx)
		return err
	}},
	{"volumes", "GET /v2/volumes", func(ctx context.Context, c *Client) error {
		_, err := c.ListVolumes(ctx, VolumeListOptions{})
		return err
	}},
	{"volume", "GET /v2/volumes/{id}", func(ctx context.Context, c *Client) error {
		_, err := c.GetVolume(ctx, "506f78a4-e098-11e5-ad9f-000f53306ae1")
		return err
	}},
}

func openAndClose(f *File, err error) error {
	if f != nil {
		f.Body.Close()
	}
	return err
}
