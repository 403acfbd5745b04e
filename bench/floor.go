package main

// The floor: what the issue-12 queries cost with no GraphQL at all. `bench
// floor` is a bare net/http server, a process of its own like the server, with
// one handler per query that makes the same upstream calls (same URLs and
// headers, the server's HTTP client settings, the same concurrency bound),
// decodes DigitalOcean's pages into the same wire types and writes the same
// answer, extensions.rateLimit included. The benchmark checks that its data
// equals the server's before it measures either.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/oceangraph/oceangraph/upstream"
)

// floorCodec is a JSON library the floor decodes DigitalOcean's pages and
// encodes its answers with.
type floorCodec struct {
	Name      string
	Unmarshal func([]byte, any) error
	Marshal   func(any) ([]byte, error)
}

// floorCodecs: the standard library's encoding/json, and what the server
// decodes DigitalOcean's pages with (upstream.DecodeJSON, on go-json-experiment).
var floorCodecs = map[string]floorCodec{
	"std":    {Name: "encoding/json", Unmarshal: json.Unmarshal, Marshal: json.Marshal},
	"server": {Name: "upstream.DecodeJSON + go-json-experiment (the server's)", Unmarshal: upstream.DecodeJSON, Marshal: jsonv1.Marshal},
}

// runFloor serves the floor handlers until ctx ends.
func runFloor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	base := fs.String("upstream", "", "DigitalOcean's base URL (the sandbox)")
	codecName := fs.String("codec", "server", "JSON library: std (encoding/json) or server (the server's)")
	concurrency := fs.Int("concurrency", 8, "upstream calls in flight per request, as the server's MAX_CONCURRENCY")
	if err := fs.Parse(args); err != nil {
		return err
	}
	codec, ok := floorCodecs[*codecName]
	if !ok || *base == "" || *concurrency < 1 {
		return errors.New("want -upstream URL, -codec std|server and -concurrency >= 1")
	}
	f := &floor{base: strings.TrimRight(*base, "/"), http: upstream.NewHTTPClient(), codec: codec, concurrency: *concurrency}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: f.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Fprintf(os.Stderr, "floor (%s) listening on http://%s\n", codec.Name, ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type floor struct {
	base        string
	http        *http.Client
	codec       floorCodec
	concurrency int
}

// handler routes each query to its floor handler.
func (f *floor) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /volumes", f.serve((*floorCall).volumes))
	mux.HandleFunc("POST /invoices", f.serve((*floorCall).invoices))
	mux.HandleFunc("POST /dashboard", f.serve((*floorCall).dashboard))
	mux.HandleFunc("POST /dashboard27", f.serve((*floorCall).dashboard27))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	return mux
}

// floorCall is one request's upstream side: its token, its concurrency bound
// and the newest rate-limit headers, as the server keeps them.
type floorCall struct {
	f     *floor
	ctx   context.Context
	token string
	uuids []string // the dashboard's invoices, from ?uuid=
	slots chan struct{}

	mu        sync.Mutex
	rateLimit *floorRateLimit
}

type floorRateLimit struct {
	Limit     int     `json:"limit"`
	Remaining int     `json:"remaining"`
	ResetAt   *string `json:"resetAt"`
}

type floorExtensions struct {
	RateLimit *floorRateLimit `json:"rateLimit"`
}

// serve reads the request (the GraphQL body goes unread by a bare handler,
// but it is received), runs the query's handler and writes its answer.
func (f *floor) serve(handle func(c *floorCall) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		c := &floorCall{f: f, ctx: r.Context(), token: token, uuids: r.URL.Query()["uuid"], slots: make(chan struct{}, f.concurrency)}
		data, err := handle(c)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		body, err := f.codec.Marshal(struct {
			Data       any             `json:"data"`
			Extensions floorExtensions `json:"extensions"`
		}{data, floorExtensions{c.rateLimit}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// get makes one upstream call, within the request's concurrency bound, and
// decodes its JSON body into out.
func (c *floorCall) get(pathAndQuery string, out any) error {
	c.slots <- struct{}{}
	defer func() { <-c.slots }()
	req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, c.f.base+pathAndQuery, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", upstream.UserAgent)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.f.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", pathAndQuery, resp.StatusCode)
	}
	c.observe(resp.Header)
	return c.f.codec.Unmarshal(body, out)
}

// observe keeps the rate-limit headers of the newest response.
func (c *floorCall) observe(h http.Header) {
	limit, err1 := strconv.Atoi(h.Get("Ratelimit-Limit"))
	remaining, err2 := strconv.Atoi(h.Get("Ratelimit-Remaining"))
	if err1 != nil || err2 != nil {
		return
	}
	rl := &floorRateLimit{Limit: limit, Remaining: remaining}
	if s, err := strconv.ParseInt(h.Get("Ratelimit-Reset"), 10, 64); err == nil && s > 0 {
		at := time.Unix(s, 0).UTC().Format(time.RFC3339)
		rl.ResetAt = &at
	}
	c.mu.Lock()
	c.rateLimit = rl
	c.mu.Unlock()
}

// all runs the calls concurrently and returns the first error.
func all(calls ...func() error) error {
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() { errs[i] = call() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// optional is a GraphQL null for a missing upstream string.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// { volumes(first: 20) { nodes { id name sizeGigabytes region { slug } } } }
func (c *floorCall) volumes() (any, error) {
	var page upstream.VolumePage
	if err := c.get("/v2/volumes?page=1&per_page=20", &page); err != nil {
		return nil, err
	}
	type region struct {
		Slug string `json:"slug"`
	}
	type volume struct {
		ID            string  `json:"id"`
		Name          string  `json:"name"`
		SizeGigabytes int     `json:"sizeGigabytes"`
		Region        *region `json:"region"`
	}
	nodes := make([]volume, len(page.Volumes))
	for i, v := range page.Volumes {
		nodes[i] = volume{ID: v.ID, Name: v.Name, SizeGigabytes: v.SizeGigabytes}
		if v.Region != nil {
			nodes[i].Region = &region{Slug: v.Region.Slug}
		}
	}
	type volumes struct {
		Nodes []volume `json:"nodes"`
	}
	return struct {
		Volumes volumes `json:"volumes"`
	}{volumes{nodes}}, nil
}

// floorInvoice is { uuid amount period }.
type floorInvoice struct {
	UUID   string  `json:"uuid"`
	Amount *string `json:"amount"`
	Period *string `json:"period"`
}

type floorInvoices struct {
	Nodes   []floorInvoice `json:"nodes"`
	Preview *floorInvoice  `json:"preview"`
}

// invoiceList reads invoices(first: 12) { nodes { uuid amount period } preview { uuid amount period } }.
func (c *floorCall) invoiceList() (floorInvoices, error) {
	var page upstream.InvoicePage
	if err := c.get("/v2/customers/my/invoices?page=1&per_page=12", &page); err != nil {
		return floorInvoices{}, err
	}
	out := floorInvoices{Nodes: make([]floorInvoice, len(page.Invoices))}
	for i, inv := range page.Invoices {
		out.Nodes[i] = floorInvoice{UUID: inv.InvoiceUUID, Amount: optional(inv.Amount), Period: optional(inv.InvoicePeriod)}
	}
	if p := page.InvoicePreview; p != nil {
		uuid := p.InvoiceUUID
		if uuid == "" {
			uuid = upstream.PreviewUUID
		}
		out.Preview = &floorInvoice{UUID: uuid, Amount: optional(p.Amount), Period: optional(p.InvoicePeriod)}
	}
	return out, nil
}

func (c *floorCall) invoices() (any, error) {
	list, err := c.invoiceList()
	if err != nil {
		return nil, err
	}
	return struct {
		Invoices floorInvoices `json:"invoices"`
	}{list}, nil
}

// floorInvoiceDetail is { summary { amount } items(first: 5) { nodes { product description amount } } }.
type floorInvoiceDetail struct {
	Summary struct {
		Amount *string `json:"amount"`
	} `json:"summary"`
	Items struct {
		Nodes []floorItem `json:"nodes"`
	} `json:"items"`
}

type floorItem struct {
	Product     *string `json:"product"`
	Description *string `json:"description"`
	Amount      *string `json:"amount"`
}

// dashboard is the invoice list and three invoices' summaries and first five
// items, the uuids taken from the URL (?uuid=a&uuid=b&uuid=c): seven calls at once.
func (c *floorCall) dashboard() (any, error) {
	uuids := c.uuids
	if len(uuids) != 3 {
		return nil, errors.New("want three ?uuid= parameters")
	}
	var list floorInvoices
	details := make([]floorInvoiceDetail, 3)
	calls := []func() error{func() (err error) { list, err = c.invoiceList(); return err }}
	for i, uuid := range uuids {
		d := &details[i]
		calls = append(calls,
			func() error {
				var s upstream.InvoiceSummary
				if err := c.get("/v2/customers/my/invoices/"+uuid+"/summary", &s); err != nil {
					return err
				}
				d.Summary.Amount = optional(s.Amount)
				return nil
			},
			func() error {
				var p upstream.InvoiceItemPage
				if err := c.get("/v2/customers/my/invoices/"+uuid+"?page=1&per_page=5", &p); err != nil {
					return err
				}
				d.Items.Nodes = make([]floorItem, len(p.InvoiceItems))
				for j, it := range p.InvoiceItems {
					d.Items.Nodes[j] = floorItem{Product: optional(it.Product), Description: optional(it.Description), Amount: optional(it.Amount)}
				}
				return nil
			})
	}
	if err := all(calls...); err != nil {
		return nil, err
	}
	return struct {
		Invoices floorInvoices      `json:"invoices"`
		A        floorInvoiceDetail `json:"a"`
		B        floorInvoiceDetail `json:"b"`
		C        floorInvoiceDetail `json:"c"`
	}{list, details[0], details[1], details[2]}, nil
}

// The canonical 27-call Dashboard (internal/queries: queries.Dashboard).

// floorTime is a DateTime as the server writes it: UTC RFC 3339, null when
// missing or not RFC 3339.
func floorTime(s string) *string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	out := t.UTC().Format(time.RFC3339Nano)
	return &out
}

// floorFloat is a number DigitalOcean sends as a string; null when it is not one.
func floorFloat(s string) *float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil
	}
	return &f
}

// floorBillingTypes are the BillingHistoryType enum's names for DigitalOcean's types.
var floorBillingTypes = map[string]string{
	"ACHFailure": "ACH_FAILURE", "Adjustment": "ADJUSTMENT", "AttemptFailed": "ATTEMPT_FAILED",
	"Chargeback": "CHARGEBACK", "Credit": "CREDIT", "CreditExpiration": "CREDIT_EXPIRATION",
	"Invoice": "INVOICE", "Payment": "PAYMENT", "Refund": "REFUND", "Reversal": "REVERSAL",
}

type (
	floorContentType struct {
		ContentType string `json:"contentType"`
	}
	floorFullItem struct {
		Product     *string  `json:"product"`
		Description *string  `json:"description"`
		Amount      *string  `json:"amount"`
		Duration    *float64 `json:"duration"`
		StartTime   *string  `json:"startTime"`
		EndTime     *string  `json:"endTime"`
	}
	// floorListedInvoice is an invoice node of the Dashboard, its summary and items included.
	floorListedInvoice struct {
		UUID      string  `json:"uuid"`
		InvoiceID *string `json:"invoiceId"`
		Period    *string `json:"period"`
		Amount    *string `json:"amount"`
		Summary   struct {
			Amount *string `json:"amount"`
		} `json:"summary"`
		Items struct {
			TotalCount int             `json:"totalCount"`
			Nodes      []floorFullItem `json:"nodes"`
		} `json:"items"`
		Files struct {
			CSV floorContentType `json:"csv"`
			PDF floorContentType `json:"pdf"`
		} `json:"files"`
	}
	floorPreview struct {
		UUID      string  `json:"uuid"`
		Amount    *string `json:"amount"`
		Period    *string `json:"period"`
		UpdatedAt *string `json:"updatedAt"`
	}
	floorFullVolume struct {
		ID            string `json:"id"`
		Name          string `json:"name"`
		SizeGigabytes int    `json:"sizeGigabytes"`
		Region        *struct {
			Slug string `json:"slug"`
		} `json:"region"`
		DropletIDs []int    `json:"dropletIds"`
		Tags       []string `json:"tags"`
	}
	floorBillingEntry struct {
		Type        string  `json:"type"`
		Description *string `json:"description"`
		Amount      *string `json:"amount"`
		Date        *string `json:"date"`
		InvoiceID   *string `json:"invoiceId"`
		InvoiceUUID *string `json:"invoiceUuid"`
	}
	floorDashboard27 struct {
		Invoices struct {
			TotalCount int                  `json:"totalCount"`
			Preview    *floorPreview        `json:"preview"`
			Nodes      []floorListedInvoice `json:"nodes"`
		} `json:"invoices"`
		Volumes struct {
			TotalCount int               `json:"totalCount"`
			Nodes      []floorFullVolume `json:"nodes"`
		} `json:"volumes"`
		BillingHistory struct {
			TotalCount *int                `json:"totalCount"`
			Nodes      []floorBillingEntry `json:"nodes"`
		} `json:"billingHistory"`
	}
)

// total is a page's meta.total, 0 when missing (as the server's connections).
func total(m upstream.Meta) int {
	if m.Total == nil {
		return 0
	}
	return *m.Total
}

// dashboard27 is the canonical Dashboard: the invoice list, 50 volumes and
// 10 billing events at once, and, as soon as the invoice list arrives, each
// listed invoice's summary and first 5 items (2 calls an invoice), every call
// waiting for one of the request's slots as the server's do.
func (c *floorCall) dashboard27() (any, error) {
	var d floorDashboard27
	err := all(c.dashboardInvoices(&d), func() error {
		var page upstream.VolumePage
		if err := c.get("/v2/volumes?page=1&per_page=50", &page); err != nil {
			return err
		}
		d.Volumes.TotalCount = total(page.Meta)
		d.Volumes.Nodes = make([]floorFullVolume, len(page.Volumes))
		for i, v := range page.Volumes {
			n := &d.Volumes.Nodes[i]
			n.ID, n.Name, n.SizeGigabytes, n.DropletIDs, n.Tags = v.ID, v.Name, v.SizeGigabytes, v.DropletIDs, v.Tags
			if n.DropletIDs == nil {
				n.DropletIDs = []int{}
			}
			if n.Tags == nil {
				n.Tags = []string{}
			}
			if v.Region != nil {
				n.Region = &struct {
					Slug string `json:"slug"`
				}{v.Region.Slug}
			}
		}
		return nil
	}, func() error {
		var page upstream.BillingHistoryPage
		if err := c.get("/v2/customers/my/billing_history?page=1&per_page=10", &page); err != nil {
			return err
		}
		d.BillingHistory.TotalCount = page.Meta.Total
		d.BillingHistory.Nodes = make([]floorBillingEntry, len(page.BillingHistory))
		for i, e := range page.BillingHistory {
			t, ok := floorBillingTypes[e.Type]
			if !ok {
				t = "UNKNOWN"
			}
			d.BillingHistory.Nodes[i] = floorBillingEntry{Type: t, Description: optional(e.Description), Amount: optional(e.Amount),
				Date: floorTime(e.Date), InvoiceID: optional(e.InvoiceID), InvoiceUUID: optional(e.InvoiceUUID)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// dashboardInvoices reads invoices(first: 12) with the preview, then each
// invoice's summary and items page.
func (c *floorCall) dashboardInvoices(d *floorDashboard27) func() error {
	return func() error {
		var page upstream.InvoicePage
		if err := c.get("/v2/customers/my/invoices?page=1&per_page=12", &page); err != nil {
			return err
		}
		inv := &d.Invoices
		inv.TotalCount = total(page.Meta)
		if p := page.InvoicePreview; p != nil {
			uuid := p.InvoiceUUID
			if uuid == "" {
				uuid = upstream.PreviewUUID
			}
			inv.Preview = &floorPreview{UUID: uuid, Amount: optional(p.Amount), Period: optional(p.InvoicePeriod), UpdatedAt: floorTime(p.UpdatedAt)}
		}
		inv.Nodes = make([]floorListedInvoice, len(page.Invoices))
		calls := make([]func() error, 0, 2*len(page.Invoices))
		for i, listed := range page.Invoices {
			n := &inv.Nodes[i]
			n.UUID, n.InvoiceID, n.Period, n.Amount = listed.InvoiceUUID, optional(listed.InvoiceID), optional(listed.InvoicePeriod), optional(listed.Amount)
			n.Files.CSV.ContentType, n.Files.PDF.ContentType = "text/csv", "application/pdf"
			path := "/v2/customers/my/invoices/" + listed.InvoiceUUID
			calls = append(calls, func() error {
				var s upstream.InvoiceSummary
				if err := c.get(path+"/summary", &s); err != nil {
					return err
				}
				n.Summary.Amount = optional(s.Amount)
				return nil
			}, func() error {
				var p upstream.InvoiceItemPage
				if err := c.get(path+"?page=1&per_page=5", &p); err != nil {
					return err
				}
				n.Items.TotalCount = total(p.Meta)
				n.Items.Nodes = make([]floorFullItem, len(p.InvoiceItems))
				for j, it := range p.InvoiceItems {
					n.Items.Nodes[j] = floorFullItem{Product: optional(it.Product), Description: optional(it.Description), Amount: optional(it.Amount),
						Duration: floorFloat(it.Duration), StartTime: floorTime(it.StartTime), EndTime: floorTime(it.EndTime)}
				}
				return nil
			})
		}
		return all(calls...)
	}
}
