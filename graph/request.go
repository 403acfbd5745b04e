package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/oceangraph/oceangraph/upstream"
)

// requestScope is everything that belongs to one GraphQL HTTP request and must
// never be shared with another request or token: the caller's token, this
// server's base URL as the caller sees it, the loaders (and so their caches),
// the bound on concurrent upstream calls, and the newest rate-limit headers.
type requestScope struct {
	token string
	// authErr is set when the request cannot call DigitalOcean at all (no token,
	// or an Authorization header that is not a bearer token).
	authErr error
	baseURL string
	// slots bounds the upstream calls in flight for this request.
	slots   chan struct{}
	loaders *loaders
	logger  *slog.Logger

	mu        sync.Mutex
	rateLimit upstream.RateLimit
	seen      bool

	// observeMu serialises the loaders' batch reports (ObserveBatch).
	observeMu sync.Mutex

	// cost counts the request's upstream calls and cache hits (graph/sharedstate.go).
	cost *costScope
}

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
	return &requestScope{authErr: ErrUnauthenticated, slots: make(chan struct{}, 1), logger: slog.Default()}
}

// naive reports whether the request runs without loader caches (Config.Naive).
func (s *requestScope) naive() bool { return s.loaders != nil && s.loaders.naive }

// TokenFrom returns the DigitalOcean token of the request ("" when it has none).
func TokenFrom(ctx context.Context) string { return scopeFrom(ctx).token }

// BaseURLFrom returns this server's absolute base URL as the caller reached it
// (Config.PublicURL, else derived from X-Forwarded-Proto/Host or the Host
// header), without a trailing slash.
func BaseURLFrom(ctx context.Context) string { return scopeFrom(ctx).baseURL }

// fetch runs one upstream call for this request: it refuses at once when the
// request has no usable token, waits for one of the request's concurrency slots
// (or the request's end), and hands call a context carrying the token.
func fetch(ctx context.Context, call func(ctx context.Context) error) error {
	s := scopeFrom(ctx)
	if s.authErr != nil {
		return s.authErr
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return &upstream.Error{Kind: upstream.KindTransport, Err: ctx.Err()}
	}
	defer func() { <-s.slots }()
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
	if c.RateLimit.IsZero() {
		return
	}
	s.mu.Lock()
	s.rateLimit, s.seen = c.RateLimit, true
	s.mu.Unlock()
}

// newestRateLimit returns the rate-limit headers of the request's newest
// upstream response, and whether there was one.
func (s *requestScope) newestRateLimit() (upstream.RateLimit, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimit, s.seen
}

// isTransient reports whether err may go away on a later try (5xx, 429, no
// answer, an undecodable body): such a result is not cached by the loaders.
func isTransient(err error) bool {
	var ue *upstream.Error
	if !errors.As(err, &ue) {
		return false
	}
	switch ue.Kind {
	case upstream.KindTransport, upstream.KindDecode:
		return true
	case upstream.KindHTTP:
		return ue.Status == 429 || ue.Status >= 500
	}
	return false
}

// deref returns the string an optional argument points to, "" when absent.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// optionalString returns nil for a missing (empty) upstream string.
func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
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
