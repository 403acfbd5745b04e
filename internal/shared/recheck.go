package shared

import (
	"context"
	"time"
)

// DefaultTokenRecheck is how long a token DigitalOcean accepted may be served
// from the cache before it is proven again.
const DefaultTokenRecheck = 60 * time.Second

// Rechecks are the marks "DigitalOcean accepted this token within the last
// Every", shared so that one replica's proof spares the others theirs.
type Rechecks struct {
	Store Store
	// Every is how long a mark lasts (0: DefaultTokenRecheck).
	Every time.Duration
}

// Fresh reports whether the token (by its TokenKey) was accepted recently.
func (r Rechecks) Fresh(ctx context.Context, tokenKey string) bool {
	_, err := r.Store.Get(ctx, "accepted:"+tokenKey)
	return err == nil
}

// Accepted marks the token as just accepted by DigitalOcean.
func (r Rechecks) Accepted(ctx context.Context, tokenKey string) {
	every := r.Every
	if every <= 0 {
		every = DefaultTokenRecheck
	}
	_ = r.Store.Set(ctx, "accepted:"+tokenKey, []byte{1}, every)
}

// Revoked drops the mark of a token DigitalOcean refused, so no replica serves it from the cache.
func (r Rechecks) Revoked(ctx context.Context, tokenKey string) {
	_ = r.Store.Delete(ctx, "accepted:"+tokenKey)
}
