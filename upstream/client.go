// Package upstream is the DigitalOcean REST client: one file per resource,
// and in this file the one place that sends a request, decodes errors and
// reads rate-limit headers.
package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Version is the client's version, sent in the User-Agent.
const Version = "0.1.0"

// UserAgent names the project and its version on every request.
const UserAgent = "oceangraph/" + Version + " (+https://github.com/oceangraph/oceangraph)"

// DefaultBaseURL is DigitalOcean's API.
const DefaultBaseURL = "https://api.digitalocean.com"

// Endpoint route templates: the label by which calls are counted and errors named.
const (
	EndpointBillingHistory = "GET /v2/customers/my/billing_history"
	EndpointInvoices       = "GET /v2/customers/my/invoices"
	EndpointInvoiceItems   = "GET /v2/customers/my/invoices/{uuid}"
	EndpointInvoiceSummary = "GET /v2/customers/my/invoices/{uuid}/summary"
	EndpointInvoiceCSV     = "GET /v2/customers/my/invoices/{uuid}/csv"
	EndpointInvoicePDF     = "GET /v2/customers/my/invoices/{uuid}/pdf"
	EndpointBalance        = "GET /v2/customers/my/balance"
	EndpointVolumes        = "GET /v2/volumes"
	EndpointVolume         = "GET /v2/volumes/{id}"
)

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	// BaseURL is DigitalOcean's API root; default DefaultBaseURL.
	BaseURL string
	// Token is used when the call's context carries none (see WithToken).
	Token string
	// HTTPClient sends the requests; default a client with sane transport timeouts.
	HTTPClient *http.Client
	// MaxRetries is how many times an idempotent GET is retried; default 3, -1 for none.
	MaxRetries int
	// RetryWaitMin and RetryWaitMax bound the exponential back-off; default 100ms and 5s.
	RetryWaitMin, RetryWaitMax time.Duration
	// Timeout bounds one call, retries included, when the caller's context has no
	// earlier deadline; 0 means no bound beyond the context.
	Timeout time.Duration
	// Observe, when set, is told of every HTTP exchange, retries included.
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
	Err       error
}

// RateLimit is DigitalOcean's ratelimit-* headers.
type RateLimit struct {
	Limit     int
	Remaining int
	// Reset is when the oldest counted request expires; zero when unknown.
	Reset time.Time
}

// IsZero reports whether no rate-limit header was seen.
func (r RateLimit) IsZero() bool { return r.Limit == 0 && r.Remaining == 0 && r.Reset.IsZero() }

// Client calls DigitalOcean. It is safe for concurrent use.
type Client struct {
	base *url.URL
	cfg  Config
	http *http.Client
}

// New builds a Client, checking the configuration.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("base URL %q: want an absolute http(s) URL", cfg.BaseURL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	return &Client{base: base, cfg: cfg, http: cfg.HTTPClient}, nil
}

type tokenKey struct{}

// WithToken returns a context whose calls authenticate with token instead of
// the client's configured one.
func WithToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, tokenKey{}, token)
}

// TokenFrom returns the token WithToken stored, or "".
func TokenFrom(ctx context.Context) string {
	t, _ := ctx.Value(tokenKey{}).(string)
	return t
}

func (c *Client) token(ctx context.Context) string {
	if t := TokenFrom(ctx); t != "" {
		return t
	}
	return c.cfg.Token
}

// getJSON sends a GET and decodes a 2xx JSON body into out.
func (c *Client) getJSON(ctx context.Context, endpoint, path string, query url.Values, out any) error {
	resp, err := c.send(ctx, endpoint, path, query, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &Error{Endpoint: endpoint, Kind: KindDecode, Status: resp.StatusCode, RateLimit: parseRateLimit(resp.Header), Err: err}
	}
	return nil
}

// getStream sends a GET and hands back the unread 2xx body.
func (c *Client) getStream(ctx context.Context, endpoint, path string) (*File, error) {
	resp, err := c.send(ctx, endpoint, path, nil, "*/*")
	if err != nil {
		return nil, err
	}
	return &File{
		Body:          resp.Body,
		ContentType:   resp.Header.Get("Content-Type"),
		ContentLength: resp.ContentLength,
		Filename:      filenameFrom(resp.Header.Get("Content-Disposition")),
		RateLimit:     parseRateLimit(resp.Header),
	}, nil
}

// send is the one request path: it returns a 2xx response or an *Error.
// TODO(upstream): retries with back-off, Retry-After, deadline handling.
func (c *Client) send(ctx context.Context, endpoint, path string, query url.Values, accept string) (*http.Response, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &Error{Endpoint: endpoint, Kind: KindTransport, Err: err}
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", UserAgent)
	if t := c.token(ctx); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	call := Call{Endpoint: endpoint, URL: u.RequestURI(), Attempt: 1, Duration: time.Since(start), Err: err}
	if err != nil {
		c.observe(ctx, call)
		return nil, &Error{Endpoint: endpoint, Kind: KindTransport, Err: err}
	}
	call.Status, call.RateLimit = resp.StatusCode, parseRateLimit(resp.Header)
	c.observe(ctx, call)
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, errorFrom(endpoint, resp)
	}
	return resp, nil
}

func (c *Client) observe(ctx context.Context, call Call) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(ctx, call)
	}
}

// errorFrom reads DigitalOcean's error body and headers into an *Error.
func errorFrom(endpoint string, resp *http.Response) *Error {
	e := &Error{Endpoint: endpoint, Kind: KindHTTP, Status: resp.StatusCode, RateLimit: parseRateLimit(resp.Header)}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var wire struct {
		ID        string `json:"id"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(body, &wire) == nil {
		e.ID, e.Message, e.RequestID = wire.ID, wire.Message, wire.RequestID
	} else {
		e.Message = strings.TrimSpace(string(body))
	}
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("X-Request-Id")
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	} else if !e.RateLimit.Reset.IsZero() && resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = max(time.Until(e.RateLimit.Reset).Round(time.Second), 0)
	}
	return e
}

func parseRateLimit(h http.Header) RateLimit {
	var r RateLimit
	r.Limit, _ = strconv.Atoi(h.Get("Ratelimit-Limit"))
	r.Remaining, _ = strconv.Atoi(h.Get("Ratelimit-Remaining"))
	if s, err := strconv.ParseInt(h.Get("Ratelimit-Reset"), 10, 64); err == nil {
		r.Reset = time.Unix(s, 0).UTC()
	}
	return r
}

func filenameFrom(disposition string) string {
	if disposition == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(disposition)
	if err != nil {
		return ""
	}
	return params["filename"]
}
