package upstream

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// retrier is one call's retry state. go-retryablehttp runs the loop; these
// hooks decide, because the decision needs what the library does not keep:
// the caller's deadline, the server's requested wait, and the last answer.
type retrier struct {
	rc         retryablehttp.Client // its hooks are this retrier's methods
	client     *Client
	endpoint   string
	url        string
	idempotent bool // a GET: may be sent again; a POST or DELETE may not once it may have arrived

	// Set by the transport (httptrace) during an attempt, possibly from its goroutines.
	askedConn atomic.Bool // the transport reports its connections (GetConn fired)
	gotConn   atomic.Bool // the attempt had a connection: bytes may have been sent

	endedEarly bool // the caller's context had ended before the attempt began
	attempt    int
	start      time.Time
	wait       time.Duration // the wait check chose for the next attempt
	waiting    bool          // between check choosing to retry and the next attempt
	last       *Error        // the failure of the latest attempt; nil after a 2xx
}

// begin runs before every attempt (go-retryablehttp's RequestLogHook).
// newRetrier makes a retrier for c's pool, its go-retryablehttp client bound to it.
func (c *Client) newRetrier() *retrier {
	r := &retrier{client: c}
	r.rc = retryablehttp.Client{
		HTTPClient:     c.retryHTTP,
		Logger:         nil, // errors are returned, not logged
		RetryMax:       c.maxRetries,
		CheckRetry:     r.check,
		Backoff:        r.backoff,
		ErrorHandler:   retryablehttp.PassthroughErrorHandler,
		RequestLogHook: r.begin,
	}
	return r
}

// reset readies a pooled retrier for a call to endpoint.
func (r *retrier) reset(endpoint string) {
	r.endpoint, r.url, r.idempotent = endpoint, "", idempotent(endpoint)
	r.askedConn.Store(false)
	r.gotConn.Store(false)
	r.endedEarly, r.attempt, r.start, r.wait, r.waiting, r.last = false, 0, time.Time{}, 0, false, nil
}

func (r *retrier) begin(_ retryablehttp.Logger, req *http.Request, _ int) {
	r.start, r.waiting = time.Now(), false
	r.endedEarly = req.Context().Err() != nil
	r.askedConn.Store(false)
	r.gotConn.Store(false)
}

// trace tells the retrier whether an attempt got as far as a connection.
func (r *retrier) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) { r.askedConn.Store(true) },
		GotConn: func(httptrace.GotConnInfo) { r.gotConn.Store(true) },
	}
}

// unsent reports whether an attempt that failed with err certainly sent
// nothing: the caller had given up before it began, it failed to dial, or
// the transport (which reports its connections) never had one. A transport
// that reports nothing gets no benefit of the doubt.
func (r *retrier) unsent(err error) bool {
	if r.endedEarly {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect") {
		return true
	}
	return r.askedConn.Load() && !r.gotConn.Load()
}

// check runs after every attempt: it reports the attempt to Config.Observe,
// records its failure, and says whether to try again.
func (r *retrier) check(ctx context.Context, resp *http.Response, err error) (bool, error) {
	r.attempt++
	now := time.Now()
	call := Call{Endpoint: r.endpoint, URL: r.url, Attempt: r.attempt, Duration: now.Sub(r.start), Err: err}
	if err != nil {
		r.last = &Error{Endpoint: r.endpoint, Kind: KindTransport, Err: err}
	} else {
		call.Status, call.RateLimit = resp.StatusCode, parseRateLimit(resp.Header, now)
		r.last = nil
	}
	r.client.observe(ctx, call)
	if err == nil && resp.StatusCode/100 == 2 {
		return false, nil
	}
	if err == nil {
		r.last = errorFrom(r.endpoint, resp, now)
	}
	var again bool
	if r.idempotent {
		again = retryable(resp, err)
	} else {
		r.last.Outcome = writeOutcome(resp, err, r.unsent(err))
		// Only a connection refused before anything was sent is safe to send again.
		again = err != nil && r.last.Outcome == OutcomeNotApplied && errors.Is(err, syscall.ECONNREFUSED)
	}
	if ctx.Err() != nil || r.attempt > r.client.maxRetries || !again {
		return false, nil
	}
	wait, ok := retryWait(resp, r.attempt, r.client.cfg.RetryWaitMin, r.client.cfg.RetryWaitMax, now)
	if !ok {
		return false, nil
	}
	if deadline, has := ctx.Deadline(); has && now.Add(wait).After(deadline) {
		// Waiting would outlive the caller: give them the answer we have.
		return false, nil
	}
	r.wait, r.waiting = wait, true
	return true, nil
}

// writeOutcome says whether a failed POST or DELETE may have been carried out.
// A 4xx is DigitalOcean's refusal; a 5xx (its own error, or a gateway's that
// may have passed the request on), a 3xx (someone in between) and a failure
// once a connection was had leave it unknown.
func writeOutcome(resp *http.Response, err error, unsent bool) Outcome {
	switch {
	case err != nil && unsent:
		return OutcomeNotApplied
	case err != nil:
		return OutcomeUnknown
	case resp.StatusCode/100 == 4:
		return OutcomeNotApplied
	}
	return OutcomeUnknown
}

// backoff hands go-retryablehttp the wait check chose.
func (r *retrier) backoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return r.wait
}

// retryable reports whether a failed GET may succeed if sent again: rate
// limiting, a gateway's transient failure, or a connection that broke or was
// refused. A 500 is DigitalOcean's own error and is not retried.
func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return transientTransport(err)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// transientTransport reports whether a transport error is worth another
// attempt: not the caller's own deadline or cancellation, not a bad URL or
// certificate, but a reset, refused or dropped connection or a network timeout.
func transientTransport(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var netErr net.Error
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		(errors.As(err, &netErr) && netErr.Timeout())
}

// retryWait is how long to wait before attempt number attempt+1. It is
// exponential back-off from waitMin, capped at waitMax, with equal jitter
// (between half and all of the step); a wait the server asks for (Retry-After,
// or ratelimit-reset on a 429) is a floor, plus jitter up to waitMin so that
// clients told the same second do not return in the same instant. ok is false
// when the server asks for more than waitMax: better to report it at once.
func retryWait(resp *http.Response, attempt int, waitMin, waitMax time.Duration, now time.Time) (wait time.Duration, ok bool) {
	step := waitMin
	for i := 1; i < attempt && step < waitMax; i++ {
		step *= 2
	}
	step = min(step, waitMax)
	wait = step/2 + rand.N(step/2+1)
	if resp != nil {
		if asked, said := serverWait(resp, now); said {
			if asked > waitMax {
				return 0, false
			}
			wait = max(wait, asked+rand.N(waitMin+1))
		}
	}
	return wait, true
}
