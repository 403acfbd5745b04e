package upstream

import (
	"context"
	"errors"
	"sync/atomic"
)

// ErrBodyBudgetExceeded: the calls made with one context (one GraphQL request)
// have read as many bytes of DigitalOcean JSON as they may hold between them.
var ErrBodyBudgetExceeded = errors.New("the request's DigitalOcean answers exceed the bytes one request may hold")

// A BodyBudget bounds the bytes of JSON bodies that the calls made with one
// context read in total: each body is counted, once read, against what is
// left. A request's loaders hold every page they read until it ends, so this
// bounds its memory where the per-body bound alone would allow many bodies.
// It is safe for concurrent use.
type BodyBudget struct {
	limit int64
	left  atomic.Int64
}

// NewBodyBudget allows limit bytes in total.
func NewBodyBudget(limit int64) *BodyBudget {
	b := &BodyBudget{limit: limit}
	b.left.Store(limit)
	return b
}

// Limit is the bound the budget was made with.
func (b *BodyBudget) Limit() int64 { return b.limit }

// take counts n bytes; false when they do not fit what is left (nothing is taken then).
func (b *BodyBudget) take(n int) bool {
	if b.left.Add(-int64(n)) < 0 {
		b.left.Add(int64(n))
		return false
	}
	return true
}

type bodyBudgetKey struct{}

// WithBodyBudget returns a context whose calls count their JSON bodies against b.
func WithBodyBudget(ctx context.Context, b *BodyBudget) context.Context {
	return context.WithValue(ctx, bodyBudgetKey{}, b)
}

// chargeBody counts a body read by a call made with ctx.
func chargeBody(ctx context.Context, n int) error {
	if b, ok := ctx.Value(bodyBudgetKey{}).(*BodyBudget); ok && !b.take(n) {
		return ErrBodyBudgetExceeded
	}
	return nil
}
