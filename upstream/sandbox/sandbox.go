// Package sandbox is the built-in DigitalOcean stand-in: an http.Handler that
// serves the billing and volume endpoints in DigitalOcean's wire format, from
// deterministic accounts generated per token, with fault knobs for tests and
// benchmarks and counters of the requests it served.
package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/oceangraph/oceangraph/upstream"
)

// DemoToken is the token a server may use for callers who bring none, so the
// sandbox shows an account with no setup.
const DemoToken = "sandbox-demo-token"

// ControlPrefix starts the sandbox's own endpoints (stats, reset, faults),
// which need no token and cannot clash with DigitalOcean's /v2 paths.
const ControlPrefix = "/_sandbox/"

// Paging bounds, as DigitalOcean documents them.
const (
	DefaultPerPage = 20
	MaxPerPage     = 200
)

// Options configures a Sandbox. Zero values take the documented defaults;
// the fault fields are the initial Faults and can be changed with SetFaults.
type Options struct {
	// Now is the clock the data is relative to (the preview is Now's month);
	// default time.Now.
	Now func() time.Time
	// Seed varies every account and the fault dice; the same seed gives the
	// same data and the same sequence of injected faults.
	Seed int64
	// MaxAccounts bounds the cache of generated accounts (about 1.5 MB
	// each); default 16.
	MaxAccounts int
	// RequestLog is how many recent request URIs Requests keeps; default 10,000.
	RequestLog int

	// Latency is how long every DigitalOcean response takes from its arrival,
	// plus up to Jitter more (a read's page is built during that wait).
	Latency, Jitter time.Duration
	// ErrorRates maps a status to the fraction of requests answered with it,
	// e.g. {503: 0.05, 429: 0.01}.
	ErrorRates map[int]float64
	// RateLimitPerMinute, when > 0, enforces that many requests per token per
	// rolling minute (DigitalOcean: 250), answering 429 beyond it.
	RateLimitPerMinute int
	// PDFSize pads every PDF to at least this many bytes (streamed).
	PDFSize int64
	// Hang makes every DigitalOcean request wait until the client gives up.
	Hang bool
	// HangAfterWrite applies each write, then holds its answer until the
	// client gives up.
	HangAfterWrite bool
	// TruncateRate is the fraction of responses cut off halfway (connection closed).
	TruncateRate float64
	// GarbageRate is the fraction of responses answered 200 with an HTML body.
	GarbageRate float64

	// ActionDelay is how long a volume action stays in-progress: 0 takes
	// DefaultActionDelay (2 s); a negative value makes actions end at once
	// (what tests want). Changed at run time with SetActionKnobs.
	ActionDelay time.Duration
	// ActionErrorRate is the fraction of volume actions that end errored,
	// changing nothing.
	ActionErrorRate float64
	// MaxWrittenAccounts bounds how many tokens' accounts keep their writes
	// (least recently used forgotten first); default DefaultMaxWrittenAccounts.
	MaxWrittenAccounts int
	// AccountToken, when set, serves every request that carries a token as
	// if it carried this one (one account, rate-limit window and write state):
	// a benchmark can send a new token per request, so that a server's
	// per-token cache stays cold, without the sandbox generating an account each.
	AccountToken string
}

// Sandbox is the DigitalOcean stand-in. It is safe for concurrent use.
type Sandbox struct {
	now      func() time.Time
	seed     int64
	accounts *lru.Cache[accountKey, *Account]
	mux      *http.ServeMux
	faults   *faultState
	limiter  *limiter
	stats    *stats
	// generating de-duplicates concurrent generations of one account.
	generating singleflight.Group

	accountToken string

	routes       map[string]map[string]http.HandlerFunc // path template → method → handler
	states       *states
	limits       stateLimits
	actionDice   *actionDice
	nextActionID atomic.Int64
}

// New builds a Sandbox.
func New(opts Options) *Sandbox {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAccounts <= 0 {
		opts.MaxAccounts = 16
	}
	if opts.RequestLog <= 0 {
		opts.RequestLog = 10_000
	}
	if opts.MaxWrittenAccounts <= 0 {
		opts.MaxWrittenAccounts = DefaultMaxWrittenAccounts
	}
	switch {
	case opts.ActionDelay == 0:
		opts.ActionDelay = DefaultActionDelay
	case opts.ActionDelay < 0:
		opts.ActionDelay = 0
	}
	accounts, _ := lru.New[accountKey, *Account](opts.MaxAccounts) // errors only on size <= 0
	s := &Sandbox{
		now:          opts.Now,
		seed:         opts.Seed,
		accounts:     accounts,
		accountToken: opts.AccountToken,
		faults:       newFaultState(opts),
		limiter:      newLimiter(),
		stats:        newStats(opts.RequestLog),
		states:       newStates(opts.MaxWrittenAccounts),
		limits:       stateLimits{volumes: DefaultMaxVolumes, actions: DefaultMaxActions, snapshots: DefaultMaxSnapshots},
		actionDice: &actionDice{
			knobs: ActionKnobs{Delay: opts.ActionDelay, ErrorRate: opts.ActionErrorRate},
			rng:   rand.New(rand.NewPCG(uint64(opts.Seed), 0xac7)),
		},
	}
	s.nextActionID.Store(100_000_000)
	s.routes = map[string]map[string]http.HandlerFunc{
		"/v2/customers/my/billing_history":         {"GET": s.billingHistory},
		"/v2/customers/my/invoices":                {"GET": s.invoices},
		"/v2/customers/my/invoices/{uuid}":         {"GET": s.invoiceItems},
		"/v2/customers/my/invoices/{uuid}/summary": {"GET": s.invoiceSummary},
		"/v2/customers/my/invoices/{uuid}/csv":     {"GET": s.invoiceCSV},
		"/v2/customers/my/invoices/{uuid}/pdf":     {"GET": s.invoicePDF},
		"/v2/customers/my/balance":                 {"GET": s.balance},
		"/v2/volumes":                              {"GET": s.volumes, "POST": s.createVolume, "DELETE": s.deleteVolumeByName},
		"/v2/volumes/{id}":                         {"GET": s.volume, "DELETE": s.deleteVolume},
		"/v2/volumes/actions":                      {"POST": s.postVolumeActionByName},
		"/v2/volumes/{id}/actions":                 {"GET": s.volumeActions, "POST": s.postVolumeAction},
		"/v2/volumes/{id}/actions/{action_id}":     {"GET": s.volumeAction},
		"/v2/volumes/{id}/snapshots":               {"GET": s.volumeSnapshots, "POST": s.createSnapshot},
		"/v2/volumes/snapshots/{snapshot_id}":      {"GET": s.snapshot, "DELETE": s.deleteSnapshot},
	}
	s.mux = http.NewServeMux()
	for template := range s.routes {
		if pattern := muxPattern(template); pattern == template {
			s.mux.HandleFunc(pattern, s.dispatch)
		}
	}
	s.mux.HandleFunc(volumeSubPattern, s.dispatch)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusNotFound, "not_found", "The resource you requested could not be found.")
	})
	return s
}

// volumeSubPattern serves /v2/volumes/{id}/actions and …/snapshots: Go's
// ServeMux refuses those two beside /v2/volumes/snapshots/{snapshot_id}
// (/v2/volumes/snapshots/actions would match two patterns), so one pattern
// takes both and the last segment picks the route.
const volumeSubPattern = "/v2/volumes/{id}/{sub}"

// muxPattern is the ServeMux pattern that serves a route's template.
func muxPattern(template string) string {
	switch template {
	case "/v2/volumes/{id}/actions", "/v2/volumes/{id}/snapshots":
		return volumeSubPattern
	}
	return template
}

// route returns the template of the route a request is for, as counted and
// documented ("/v2/volumes/{id}/actions"); "" for an unknown path.
func (s *Sandbox) route(r *http.Request) string {
	_, pattern := s.mux.Handler(r)
	if pattern == volumeSubPattern {
		pattern = "/v2/volumes/{id}/" + path.Base(r.URL.Path)
	}
	if _, ok := s.routes[pattern]; !ok {
		return ""
	}
	return pattern
}

// dispatch calls the handler of the request's route and method, both
// checked by ServeHTTP already.
func (s *Sandbox) dispatch(w http.ResponseWriter, r *http.Request) {
	if h := s.routes[s.route(r)][r.Method]; h != nil {
		h(w, r)
		return
	}
	s.writeError(w, r, http.StatusNotFound, "not_found", "The resource you requested could not be found.")
}

// allowed lists a route's methods for a 405's Allow header.
func (s *Sandbox) allowed(route string) string {
	return strings.Join(slices.Sorted(maps.Keys(s.routes[route])), ", ")
}

// Account returns the account a token sees today (generating it if needed),
// so tests elsewhere know the data to expect. It must not be modified. It is
// the generated data only: the token's writes lie over it, seen through the
// HTTP endpoints.
func (s *Sandbox) Account(token string) *Account {
	k := keyFor(token, s.now())
	if a, ok := s.accounts.Get(k); ok {
		return a
	}
	// A burst of first requests builds the account once (about 7 ms).
	v, _, _ := s.generating.Do(fmt.Sprintf("%x/%d", k.tokenHash, k.day.Unix()), func() (any, error) {
		if a, ok := s.accounts.Get(k); ok {
			return a, nil
		}
		a := generateAccount(k, s.seed)
		s.accounts.Add(k, a)
		return a, nil
	})
	return v.(*Account)
}

// ServeHTTP answers DigitalOcean's endpoints and the sandbox's control endpoints.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, ControlPrefix) {
		s.control(w, r)
		return
	}
	route := s.route(r)
	s.stats.record(r.Method, route, r.RequestURI, r.URL)

	token := bearerToken(r)
	// DigitalOcean limits each token on its own, so the rate window stays the
	// presented token's even when -account-token serves its data from one account.
	limited := s.setRateLimitHeaders(w, token)
	if token != "" && s.accountToken != "" {
		token = s.accountToken
		r.Header.Set("Authorization", "Bearer "+token) // what the handlers read
	}
	w.Header().Set("X-Request-Id", s.newRequestID())

	if route != "" && s.routes[route][r.Method] == nil {
		w.Header().Set("Allow", s.allowed(route))
		s.writeError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "The "+r.Method+" method is not supported by this sandbox.")
		return
	}
	if token == "" {
		s.writeError(w, r, http.StatusUnauthorized, "unauthorized", "Unable to authenticate you.")
		return
	}
	if limited {
		s.writeError(w, r, http.StatusTooManyRequests, "too_many_requests", "API rate limit exceeded.")
		return
	}
	w, ok := s.inject(w, r)
	if !ok {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// bearerToken reads "Authorization: Bearer <token>"; "" when absent.
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// newRequestID is random, not seeded: ids must stay unique across restarts
// for logs to be correlated, and no test depends on their value.
func (s *Sandbox) newRequestID() string { return uuid.NewString() }

// setRateLimitHeaders sets ratelimit-limit/-remaining/-reset for the token's
// rolling minute, counting this request, and reports whether rate-limit mode
// refuses it (then with Retry-After).
func (s *Sandbox) setRateLimitHeaders(w http.ResponseWriter, token string) (refused bool) {
	st := s.limiter.count(token, s.now(), s.faults.get().RateLimitPerMinute)
	h := w.Header()
	h.Set("Ratelimit-Limit", strconv.Itoa(st.limit))
	h.Set("Ratelimit-Remaining", strconv.Itoa(st.remaining))
	h.Set("Ratelimit-Reset", strconv.FormatInt(st.reset.Unix(), 10))
	if st.refused {
		h.Set("Retry-After", strconv.Itoa(st.retryAfter))
	}
	return st.refused
}

func (s *Sandbox) writeError(w http.ResponseWriter, r *http.Request, status int, id, message string) {
	writeJSON(w, status, upstream.ErrorBody{ID: id, Message: message, RequestID: w.Header().Get("X-Request-Id")})
}

// writeJSON writes v with DigitalOcean's content type and an exact Content-Length.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only the sandbox's own types are encoded; this is a bug.
		panic(fmt.Sprintf("sandbox: encode %T: %v", v, err))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// pageWindow is a validated page request over a list of total items.
type pageWindow struct {
	page, perPage int
	total         int
	query         url.Values // the request's query, parsed once for the page and its links
}

// parsePage reads page and per_page, answering 400 for invalid values.
func (s *Sandbox) parsePage(w http.ResponseWriter, r *http.Request) (pageWindow, bool) {
	q := r.URL.Query()
	p := pageWindow{page: 1, perPage: DefaultPerPage, query: q}
	for _, f := range []struct {
		name string
		dst  *int
		max  int
	}{{"page", &p.page, 0}, {"per_page", &p.perPage, MaxPerPage}} {
		if !q.Has(f.name) {
			continue
		}
		n, err := strconv.Atoi(q.Get(f.name))
		if err != nil || n < 1 || (f.max > 0 && n > f.max) {
			msg := fmt.Sprintf("invalid %s %q: must be an integer of at least 1", f.name, q.Get(f.name))
			if f.max > 0 {
				msg = fmt.Sprintf("invalid %s %q: must be an integer from 1 to %d", f.name, q.Get(f.name), f.max)
			}
			s.writeError(w, r, http.StatusBadRequest, "bad_request", msg)
			return p, false
		}
		*f.dst = n
	}
	return p, true
}

// bounds returns the slice [lo, hi) of the list this page covers; a page
// past the end is empty (checked first, so a huge page cannot overflow).
func (p pageWindow) bounds() (lo, hi int) {
	if p.page-1 >= (p.total+p.perPage-1)/p.perPage {
		return p.total, p.total
	}
	lo = (p.page - 1) * p.perPage
	return lo, min(lo+p.perPage, p.total)
}

// links builds DigitalOcean's absolute links.pages for the page: nil when the
// whole list fits on page 1 (DigitalOcean sends no links then); otherwise only
// the links that make sense, keeping the request's other query parameters.
func (p pageWindow) links(r *http.Request) *upstream.Links {
	last := max(1, (p.total+p.perPage-1)/p.perPage)
	if last == 1 && p.page == 1 {
		return nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	q := maps.Clone(p.query) // its values are not written, only replaced
	at := func(page int) string {
		q.Set("page", strconv.Itoa(page))
		q.Set("per_page", strconv.Itoa(p.perPage))
		u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return u.String()
	}
	pages := &upstream.Pages{}
	if p.page > 1 {
		pages.First = at(1)
		pages.Prev = at(min(p.page-1, last))
	}
	if p.page < last {
		pages.Next = at(p.page + 1)
		pages.Last = at(last)
	}
	return &upstream.Links{Pages: pages}
}

func (p pageWindow) meta() upstream.Meta {
	total := p.total
	return upstream.Meta{Total: &total}
}

func (s *Sandbox) account(r *http.Request) *Account {
	return s.Account(bearerToken(r))
}

func (s *Sandbox) billingHistory(w http.ResponseWriter, r *http.Request) {
	p, ok := s.parsePage(w, r)
	if !ok {
		return
	}
	all := s.account(r).BillingHistory
	p.total = len(all)
	lo, hi := p.bounds()
	writeJSON(w, http.StatusOK, upstream.BillingHistoryPage{
		BillingHistory: nonNil(all[lo:hi]), Links: p.links(r), Meta: p.meta(),
	})
}

func (s *Sandbox) invoices(w http.ResponseWriter, r *http.Request) {
	p, ok := s.parsePage(w, r)
	if !ok {
		return
	}
	a := s.account(r)
	p.total = len(a.Invoices)
	lo, hi := p.bounds()
	list := make([]upstream.Invoice, 0, hi-lo)
	for _, inv := range a.Invoices[lo:hi] {
		list = append(list, inv.Wire())
	}
	preview := a.Preview.Wire()
	writeJSON(w, http.StatusOK, upstream.InvoicePage{
		Invoices: list, InvoicePreview: &preview, Links: p.links(r), Meta: p.meta(),
	})
}

// invoice finds the path's invoice, answering 404 when it is unknown.
func (s *Sandbox) invoice(w http.ResponseWriter, r *http.Request) (*Invoice, bool) {
	inv := s.account(r).Invoice(r.PathValue("uuid"))
	if inv == nil {
		s.writeError(w, r, http.StatusNotFound, "not_found", "The resource you requested could not be found.")
		return nil, false
	}
	return inv, true
}

func (s *Sandbox) invoiceItems(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.invoice(w, r)
	if !ok {
		return
	}
	p, ok := s.parsePage(w, r)
	if !ok {
		return
	}
	p.total = len(inv.Items)
	lo, hi := p.bounds()
	writeJSON(w, http.StatusOK, upstream.InvoiceItemPage{
		InvoiceItems: nonNil(inv.Items[lo:hi]), Links: p.links(r), Meta: p.meta(),
	})
}

func (s *Sandbox) invoiceSummary(w http.ResponseWriter, r *http.Request) {
	if inv, ok := s.invoice(w, r); ok {
		writeJSON(w, http.StatusOK, inv.Summary)
	}
}

func (s *Sandbox) balance(w http.ResponseWriter, r *http.Request) {
	b := s.account(r).Balance
	b.GeneratedAt = s.now().UTC().Format(time.RFC3339)
	writeJSON(w, http.StatusOK, b)
}

func (s *Sandbox) volumes(w http.ResponseWriter, r *http.Request) {
	p, ok := s.parsePage(w, r)
	if !ok {
		return
	}
	q := p.query
	s.read(w, r, func(a *Account, st *accountState) answer {
		var all []upstream.Volume
		if st == nil {
			all = a.FilterVolumes(q.Get("name"), q.Get("region"))
		} else {
			all = st.volumes(a, q.Get("name"), q.Get("region"))
		}
		p.total = len(all)
		lo, hi := p.bounds()
		return reply(http.StatusOK, upstream.VolumePage{Volumes: nonNil(all[lo:hi]), Links: p.links(r), Meta: p.meta()})
	})
}

func (s *Sandbox) volume(w http.ResponseWriter, r *http.Request) {
	s.read(w, r, func(a *Account, st *accountState) answer {
		v := currentVolume(a, st, r.PathValue("id"))
		if v == nil {
			return refused(errNotFound)
		}
		out := *v // v may change under the lock once it is released
		return reply(http.StatusOK, upstream.VolumeResponse{Volume: &out})
	})
}

// nonNil makes an empty page encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
