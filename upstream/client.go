// Package upstream is the DigitalOcean REST client: one file per resource,
// and in this file the one place that sends a request.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
)

// Version is the client's version, sent in the User-Agent.
const Version = "0.1.0"

// UserAgent names the project and its version on every request.
const UserAgent = "oceangraph/" + Version + " (+https://github.com/oceangraph/oceangraph)"

// DefaultBaseURL is DigitalOcean's API.
const DefaultBaseURL = "https://api.digitalocean.com"

// The write endpoints' labels, by which calls are counted and errors named
// (the read endpoints' labels sit beside their paths in each resource's file).
const (
	EndpointCreateVolume         = "POST /v2/volumes"
	EndpointDeleteVolume         = "DELETE /v2/volumes/{id}"
	EndpointPostVolumeAction     = "POST /v2/volumes/{id}/actions"
	EndpointVolumeActions        = "GET /v2/volumes/{id}/actions"
	EndpointVolumeAction         = "GET /v2/volumes/{id}/actions/{action_id}"
	EndpointVolumeSnapshots      = "GET /v2/volumes/{id}/snapshots"
	EndpointCreateVolumeSnapshot = "POST /v2/volumes/{id}/snapshots"
	EndpointVolumeSnapshot       = "GET /v2/volumes/snapshots/{snapshot_id}"
	EndpointDeleteVolumeSnapshot = "DELETE /v2/volumes/snapshots/{snapshot_id}"
)

// Retry defaults, applied by New to a zero Config field.
const (
	DefaultMaxRetries   = 3
	DefaultRetryWaitMin = 100 * time.Millisecond
	DefaultRetryWaitMax = 5 * time.Second
)

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	// BaseURL is DigitalOcean's API root, possibly with a path prefix; default DefaultBaseURL.
	BaseURL string
	// Token is used when the call's context carries none (see WithToken).
	Token string
	// HTTPClient sends the requests; default a pooled client (go-cleanhttp's
	// transport, more idle connections per host).
	HTTPClient *http.Client
	// MaxRetries is how many times a GET is retried; default 3, -1 for none.
	// A POST or DELETE is retried within it only after a refused connection.
	MaxRetries int
	// RetryWaitMin and RetryWaitMax bound the exponential back-off; default
	// 100ms and 5s. A server asking for a longer wait than RetryWaitMax
	// (Retry-After, ratelimit-reset) is not retried: its error says how long.
	RetryWaitMin, RetryWaitMax time.Duration
	// Timeout bounds one call, retries included, as a deadline on the call's
	// context; for a file it bounds the wait for the headers and then each
	// silence while reading the body. 0 means no bound beyond the context.
	Timeout time.Duration
	// Observe, when set, is called once per HTTP attempt, retries included,
	// in the calling goroutine, after the answer's headers (or the failure).
	Observe func(ctx context.Context, c Call)
}

// Call describes one HTTP exchange with DigitalOcean, for metrics, logs and
// the rate-limit extension.
type Call struct {
	Endpoint string
	// URL is the path and query string (no host, never a token).
	URL      string
	Attempt  int
	Status   int // 0 when there was no answer
	Duration time.Duration
	// RateLimit is the zero value when the response carried no headers.
	RateLimit RateLimit
	// Err is the transport error when there was no answer.
	Err error
}

// Client calls DigitalOcean. It is safe for concurrent use.
type Client struct {
	base       string // scheme, host and path prefix, no trailing slash
	cfg        Config
	http       *http.Client
	retryHTTP  *http.Client // http behind keepPool, for go-retryablehttp
	maxRetries int
	auth       []string // the Authorization header of cfg.Token
	// retriers keep a call's retry state with its go-retryablehttp client and
	// hooks, made once rather than five objects a call.
	retriers sync.Pool
}

// keepPool hides the transport's CloseIdleConnections from go-retryablehttp,
// which calls it after every failed call: one caller's timeout must not drop
// the pooled connections of every other caller.
type keepPool struct{ http.RoundTripper }

// New builds a Client, checking the configuration.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("base URL %q: want an absolute http(s) URL without query", cfg.BaseURL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient()
	}
	if cfg.RetryWaitMin <= 0 {
		cfg.RetryWaitMin = DefaultRetryWaitMin
	}
	if cfg.RetryWaitMax <= 0 {
		cfg.RetryWaitMax = DefaultRetryWaitMax
	}
	cfg.RetryWaitMax = max(cfg.RetryWaitMax, cfg.RetryWaitMin)
	maxRetries := cfg.MaxRetries
	switch {
	case maxRetries == 0:
		maxRetries = DefaultMaxRetries
	case maxRetries < 0:
		maxRetries = 0
	}
	retryHTTP := *cfg.HTTPClient
	if retryHTTP.Transport == nil {
		retryHTTP.Transport = http.DefaultTransport
	}
	retryHTTP.Transport = keepPool{retryHTTP.Transport}
	// DigitalOcean does not redirect. Following one would send the token to
	// wherever the Location says (another port, plain http, another host) and
	// serve that host's body as DigitalOcean's: a 3xx is returned as an error.
	retryHTTP.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{
		base:       strings.TrimRight(base.String(), "/"),
		cfg:        cfg,
		http:       cfg.HTTPClient,
		retryHTTP:  &retryHTTP,
		maxRetries: maxRetries,
		auth:       []string{bearer + cfg.Token},
	}
	c.retriers.New = func() any { return c.newRetrier() }
	return c, nil
}

// NewHTTPClient is the HTTP client New uses when Config.HTTPClient is nil:
// go-cleanhttp's pooled transport with more idle connections per host. The
// benchmark's floor (bench/) sends its calls with the same settings.
func NewHTTPClient() *http.Client {
	t := cleanhttp.DefaultPooledTransport()
	// One GraphQL request fans out to several concurrent calls, all to one host.
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: t}
}

// CloseIdleConnections closes the pooled connections no call is using, at shutdown.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

type tokenKey struct{}

const bearer = "Bearer "

// authorization is a token's Authorization header value, made once a
// request rather than once a call; the token is its tail.
type authorization struct{ header [1]string }

// WithToken returns a context whose calls authenticate with token instead of
// the client's configured one.
func WithToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, tokenKey{}, &authorization{header: [1]string{bearer + token}})
}

// TokenFrom returns the token WithToken stored, or "".
func TokenFrom(ctx context.Context) string {
	if a, _ := ctx.Value(tokenKey{}).(*authorization); a != nil {
		return a.header[0][len(bearer):]
	}
	return ""
}

// authHeader is the call's Authorization header value, nil without a token.
func (c *Client) authHeader(ctx context.Context) []string {
	if a, _ := ctx.Value(tokenKey{}).(*authorization); a != nil && len(a.header[0]) > len(bearer) {
		return a.header[:]
	}
	if c.cfg.Token != "" {
		return c.auth
	}
	return nil
}

// callContext applies Config.Timeout to one call.
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.cfg.Timeout > 0 {
		return context.WithTimeout(ctx, c.cfg.Timeout)
	}
	return ctx, func() {}
}

// getJSON sends a GET and decodes a 2xx JSON body into out.
func (c *Client) getJSON(ctx context.Context, endpoint, path string, query url.Values, out any) error {
	return c.call(ctx, endpoint, path, query, nil, out)
}

// call sends the endpoint's method with in (if not nil) as its JSON body and
// decodes a 2xx JSON body into out; a nil out wants no body (a 204).
func (c *Client) call(ctx context.Context, endpoint, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return &Error{Endpoint: endpoint, Kind: KindRequest, Err: fmt.Errorf("encode request body: %w", err)}
		}
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, attempts, err := c.send(ctx, endpoint, path, query, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fail := func(kind ErrorKind, err error) *Error {
		e := responseError(endpoint, kind, resp, time.Now())
		e.Attempts, e.Err = attempts, err
		if !idempotent(endpoint) {
			// DigitalOcean said 2xx: the write happened, whatever became of its answer.
			e.Outcome = OutcomeApplied
		}
		return e
	}
	if out == nil {
		// A 204 has no body; whatever else comes is not read into memory.
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); !jsonContentType(ct) {
		return fail(KindDecode, fmt.Errorf("content type %q, want application/json", ct))
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	if n := resp.ContentLength; n > 0 && n <= maxJSONBody {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead free to see the end
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxJSONBody+1)); err != nil {
		return fail(KindTransport, fmt.Errorf("read body: %w", err))
	}
	raw := buf.Bytes()
	if len(raw) > maxJSONBody {
		return fail(KindDecode, fmt.Errorf("body larger than %d bytes", maxJSONBody))
	}
	if err := chargeBody(ctx, len(raw)); err != nil {
		return fail(KindDecode, err)
	}
	if err := DecodeJSON(raw, out); err != nil {
		return fail(KindDecode, err)
	}
	return nil
}

// bodyBuffers hold JSON bodies while they are decoded (DecodeJSON keeps no
// reference to them): a 10 KB page read with io.ReadAll cost 20 allocations
// and three times its size in garbage.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBodyBuffer(b *bytes.Buffer) {
	if b.Cap() <= 512<<10 { // the rare larger body is not kept
		b.Reset()
		bodyBuffers.Put(b)
	}
}

// getStream sends a GET and hands back the unread 2xx body of a file.
// Config.Timeout bounds the wait for the headers (retries included) and then
// each silence while reading the body, not the whole body: a 50 MB PDF may take
// minutes to reach a slow browser, a stalled one may not hold a connection.
func (c *Client) getStream(ctx context.Context, endpoint, path string, format FileFormat) (*File, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	stall := newStallTimer(c.cfg.Timeout, cancel)
	done := func() { stall.stop(); cancel(nil) }
	resp, attempts, err := c.send(ctx, endpoint, path, nil, nil, format.ContentType()+", application/json;q=0.5")
	if err != nil {
		done()
		return nil, stalled(ctx, err)
	}
	contentType, ok := fileContentType(resp.Header.Get("Content-Type"), format)
	if !ok {
		resp.Body.Close()
		done()
		e := responseError(endpoint, KindDecode, resp, time.Now())
		e.Attempts = attempts
		e.Err = fmt.Errorf("content type %q, want %s", resp.Header.Get("Content-Type"), format.ContentType())
		return nil, e
	}
	return &File{
		Body:          &streamBody{ReadCloser: resp.Body, ctx: ctx, stall: stall, done: done},
		ContentType:   contentType,
		ContentLength: resp.ContentLength,
		Filename:      filenameFrom(resp.Header.Get("Content-Disposition")),
		RateLimit:     parseRateLimit(resp.Header, time.Now()),
	}, nil
}

// errStalled ends a file call that waited Config.Timeout for its headers or
// for its next bytes; it is a deadline, for errors.Is.
var errStalled = fmt.Errorf("no data from DigitalOcean within the upstream timeout: %w", context.DeadlineExceeded)

// stallTimer cancels a call's context after a silence of d; reset restarts it.
type stallTimer struct {
	d time.Duration
	t *time.Timer
}

func newStallTimer(d time.Duration, cancel context.CancelCauseFunc) *stallTimer {
	s := &stallTimer{d: d}
	if d > 0 {
		s.t = time.AfterFunc(d, func() { cancel(errStalled) })
	}
	return s
}

func (s *stallTimer) reset() {
	if s.t != nil {
		s.t.Reset(s.d)
	}
}

func (s *stallTimer) stop() {
	if s.t != nil {
		s.t.Stop()
	}
}

// stalled names the stall as the cause of err when the stall timer ended ctx.
func stalled(ctx context.Context, err error) error {
	if context.Cause(ctx) != errStalled {
		return err
	}
	var e *Error
	if errors.As(err, &e) && e.Kind == KindTransport {
		e.Err = errStalled
		return e
	}
	return errStalled
}

// streamBody is a file's body: every read restarts the stall timer, and Close
// ends the call's context.
type streamBody struct {
	io.ReadCloser
	ctx   context.Context
	stall *stallTimer
	done  func()
}

func (b *streamBody) Read(p []byte) (int, error) {
	b.stall.reset()
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && context.Cause(b.ctx) == errStalled {
		err = errStalled
	}
	return n, err
}

func (b *streamBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

// send is the one request path: it returns a 2xx response with its body
// unread, or an *Error. The method is the endpoint's; retries follow retry.go's
// policy, which never sends a write twice once it may have reached DigitalOcean.
func (c *Client) send(ctx context.Context, endpoint, path string, query url.Values, body []byte, accept string) (*http.Response, int, error) {
	if err := checkPath(path); err != nil {
		return nil, 0, &Error{Endpoint: endpoint, Kind: KindRequest, Err: err}
	}
	target := c.base + path
	if len(query) > 0 {
		// %20 rather than +: both mean a space in a query, %20 everywhere.
		target = c.base + path + "?" + strings.ReplaceAll(query.Encode(), "+", "%20")
	}
	r := c.retriers.Get().(*retrier)
	defer c.retriers.Put(r)
	r.reset(endpoint)
	var reqBody any // nil, not a nil []byte: a GET carries no body at all
	if body != nil {
		reqBody = body
	}
	reqCtx := ctx
	if !r.idempotent {
		// Only a write needs to know whether an attempt had a connection.
		reqCtx = httptrace.WithClientTrace(ctx, r.trace())
	}
	req, err := retryablehttp.NewRequestWithContext(reqCtx, method(endpoint), target, reqBody)
	if err != nil {
		return nil, 0, &Error{Endpoint: endpoint, Kind: KindRequest, Err: err}
	}
	// Shared values, canonical keys: net/http only reads a request's headers.
	if accept == jsonMediaType {
		req.Header["Accept"] = jsonHeaderValue
	} else {
		req.Header.Set("Accept", accept)
	}
	req.Header["User-Agent"] = userAgentHeaderValue
	if body != nil {
		req.Header["Content-Type"] = jsonHeaderValue
	}
	if auth := c.authHeader(ctx); auth != nil {
		req.Header["Authorization"] = auth
	}
	// No Idempotency-Key header, ever: with one, net/http itself would resend
	// a POST on a broken keep-alive connection.
	r.url = req.URL.RequestURI()
	resp, err := r.rc.Do(req)
	switch {
	case r.waiting:
		// The context ended while waiting to retry: the last answer is the news.
		e := *r.last
		e.Attempts = r.attempt
		if e.Err == nil {
			e.Err = err
		} else {
			e.Err = fmt.Errorf("%w (after %w)", err, e.Err)
		}
		return nil, r.attempt, &e
	case r.last != nil:
		r.last.Attempts = r.attempt
		return nil, r.attempt, r.last
	case err != nil: // not expected: check saw every outcome
		e := &Error{Endpoint: endpoint, Kind: KindTransport, Attempts: r.attempt, Err: err}
		if !r.idempotent {
			e.Outcome = OutcomeUnknown
		}
		return nil, r.attempt, e
	}
	return resp, r.attempt, nil
}

const jsonMediaType = "application/json"

// Header values every request shares (never written to).
var (
	jsonHeaderValue      = []string{jsonMediaType}
	userAgentHeaderValue = []string{UserAgent}
)

// method is the HTTP method an endpoint's route template starts with.
func method(endpoint string) string {
	m, _, _ := strings.Cut(endpoint, " ")
	return m
}

// idempotent reports whether the endpoint's request may be sent again: true
// for reads; false for POST (a second volume, action or snapshot) and DELETE
// (whose repeat answers 404 for what the first one did).
func idempotent(endpoint string) bool {
	m := method(endpoint)
	return m == http.MethodGet || m == http.MethodHead
}

// maxIDLength bounds one id in a path: DigitalOcean's are uuids or numbers.
const maxIDLength = 256

// ErrInvalidID is wrapped by the KindRequest error of a call refused before
// sending because an id in its path is empty, too long or outside
// [A-Za-z0-9-_.]: no DigitalOcean id looks like that, and a path segment of
// "..", "/" or 900 KB would address something else or flood the logs.
var ErrInvalidID = errors.New("not a DigitalOcean id")

// checkPath refuses a path with an empty, ".", ".." or over-long segment or
// with a character outside [A-Za-z0-9-_.] (an escaped one included): an empty
// uuid would otherwise list invoices instead of failing. The fixed segments of
// every endpoint pass, so this checks exactly the ids.
func checkPath(path string) error {
	for _, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > maxIDLength || strings.IndexFunc(seg, notIDChar) >= 0 {
			return fmt.Errorf("path segment %q: %w", shorten(seg, 64), ErrInvalidID)
		}
	}
	return nil
}

func notIDChar(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.')
}

func (c *Client) observe(ctx context.Context, call Call) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(ctx, call)
	}
}
