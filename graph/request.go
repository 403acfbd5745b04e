package graph

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/oceangraph/oceangraph/upstream"
)

// requestScope is everything that belongs to one GraphQL HTTP request and must
// never be shared with another request or token: the caller's token, this
// server's base URL as the caller sees it, the loaders (and so their caches),
// the bound on concurrent upstream calls, and the newest rate-limit headers.
// It is the request's one context value.
type requestScope struct {
	token string
	// authErr is set when the request cannot call DigitalOcean at all (no token,
	// or an Authorization header that is not a bearer token).
	authErr error
	baseURL string
	// baseURLErr says why no base URL could be derived from the request (errBadHost).
	baseURLErr error
	// slots bounds the upstream calls in flight for this request.
	slots chan struct{}
	// loaders hold the request's upstream results, file downloads included.
	loaders *loaders
	logger  *slog.Logger

	mu        sync.Mutex
	rateLimit upstream.RateLimit
	seen      bool

	// cost counts the request's upstream calls and cache hits (sharedstate.go).
	cost *costScope
	// refusedWith is the HTTP status of a request refused before it ran, as
	// the error presenter found it (0: none); answerWriter sends it.
	refusedWith atomic.Int32
	// base64Reserved is what the operation reserved of the process-wide base64
	// bound (base64budget.go), given back when the request ends.
	base64Reserved atomic.Int64
	// rawVariables are the operation's variables as sent (graph/variables.go).
	rawVariables map[string]any

	// method is the HTTP method of a plain GET or POST ("" on a WebSocket,
	// whose operations arrive as messages); see queriesOnlyOverGet.
	method string
	// operationContext, set on a WebSocket's scope, gives each operation a
	// scope (and an upstream body budget) of its own.
	operationContext func(ctx context.Context) context.Context
}

// newRequestScope is a request's scope under cfg (defaults applied), for the
// caller's token or the reason it has none.
func newRequestScope(cfg Config, token string, authErr error) *requestScope {
	loaders := newLoaders(cfg.Client, cfg.Naive)
	loaders.files.bound(cfg.MaxBase64FileBytes, cfg.FileTimeout)
	return &requestScope{
		token:   token,
		authErr: authErr,
		baseURL: cfg.PublicURL,
		slots:   make(chan struct{}, max(cfg.MaxConcurrency, 1)),
		loaders: loaders,
		logger:  cmp.Or(cfg.Logger, slog.Default()),
		cost:    newCostScope(cfg.Shared, cfg.Client, token),
	}
}

// naive reports whether the request runs without loader caches (Config.Naive).
func (s *requestScope) naive() bool { return s.loaders != nil && s.loaders.naive }

// refuse records the status of a request that will not run; the first one stays.
func (s *requestScope) refuse(status int) { s.refusedWith.CompareAndSwap(0, int32(status)) }

// refusal is the status refuse recorded, 0 when none.
func (s *requestScope) refusal() int { return int(s.refusedWith.Load()) }

type scopeKey struct{}

func withScope(ctx context.Context, s *requestScope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// scopeFrom returns the request's scope. Outside a request (a resolver called
// directly by a test) it returns a scope with no token, which fails every
// upstream call with UNAUTHENTICATED rather than panicking.
func scopeFrom(ctx context.Context) *requestScope {
	if s, ok := ctx.Value(scopeKey{}).(*requestScope); ok {
		return s
	}
	return newRequestScope(Config{}, "", errUnauthenticated)
}

// callUpstream runs one upstream call for this request: it refuses at once when the
// request has no usable token, waits for one of the request's concurrency slots
// (or the request's end), and hands call a context carrying the token.
func callUpstream(ctx context.Context, call func(ctx context.Context) error) error {
	s := scopeFrom(ctx)
	if s.authErr != nil {
		return s.authErr
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return &upstream.Error{Kind: upstream.KindTransport, Err: ctx.Err()}
	}
	defer func() {
		<-s.slots
		// A call waiting for a slot took this one (the buffer is full again):
		// let it send its request before this goroutine hands its answer on,
		// or the answer's readers (resolvers, gqlgen's marshalling) run first
		// and the waiting call, next on the request's critical path, after them.
		if len(s.slots) == cap(s.slots) {
			runtime.Gosched()
		}
	}()
	return call(upstream.WithToken(ctx, s.token))
}

// ObserveUpstream records an upstream exchange in the request whose context it
// is given, so that the response's extensions.rateLimit shows the newest
// DigitalOcean rate-limit headers. Wire it as upstream.Config.Observe (chain it
// with other observers); calls outside a GraphQL request are ignored.
func ObserveUpstream(ctx context.Context, c upstream.Call) {
	s, ok := ctx.Value(scopeKey{}).(*requestScope)
	if !ok {
		return
	}
	if s.cost != nil {
		s.cost.observe(ctx, c)
	}
	s.recordRateLimit(c.RateLimit)
}

// recordRateLimit keeps the newest rate-limit headers for extensions.rateLimit.
func (s *requestScope) recordRateLimit(rl upstream.RateLimit) {
	if rl.IsZero() {
		return
	}
	s.mu.Lock()
	s.rateLimit, s.seen = rl, true
	s.mu.Unlock()
}

// newestRateLimit returns the rate-limit headers of the request's newest
// upstream response, and whether there was one.
func (s *requestScope) newestRateLimit() (upstream.RateLimit, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimit, s.seen
}

// deref returns the string an optional argument points to, "" when absent.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// safely runs fn and turns a panic into errPanic, logging it with its stack:
// a panic in a goroutine of this package's own (loaders, concurrent pages,
// entities) would otherwise end the whole process rather than one field.
func safely(ctx context.Context, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			scopeFrom(ctx).logger.ErrorContext(ctx, "panic in upstream work", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = errPanic
		}
	}()
	return fn()
}

// concurrently runs job(0) to job(n-1) at once, each under safely, and
// returns each one's error: the one fan-out of this package (a loader's keys,
// a window's pages, an invoice's existence probes, a batch of entities).
func concurrently(ctx context.Context, n int, job func(i int) error) []error {
	errs := make([]error, n)
	if n == 1 {
		// One job (every loader batch is one key) runs here: a goroutine of its
		// own would only cost a start and a hand-off per upstream call.
		errs[0] = safely(ctx, func() error { return job(0) })
		return errs
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = safely(ctx, func() error { return job(i) }) })
	}
	wg.Wait()
	return errs
}
