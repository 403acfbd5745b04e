package shared

import (
	"context"
	"time"
)

// APQTTL is how long a persisted query is kept unused; a client whose hash has
// expired gets PERSISTED_QUERY_NOT_FOUND and registers it again, as the protocol expects.
const APQTTL = 24 * time.Hour

// APQ is gqlgen's APQ cache (graphql.Cache[string]) on the store, so a query
// registered at one replica runs at all of them.
type APQ struct{ Store Store }

// Get looks a persisted query up by its hash.
func (a APQ) Get(ctx context.Context, hash string) (string, bool) {
	v, err := a.Store.Get(ctx, "apq:"+hash)
	if err != nil {
		return "", false
	}
	return string(v), true
}

// Add stores a query under its hash (gqlgen has checked that they match).
func (a APQ) Add(ctx context.Context, hash, query string) {
	_ = a.Store.Set(ctx, "apq:"+hash, []byte(query), APQTTL)
}
