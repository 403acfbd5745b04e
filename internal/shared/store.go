// Package shared is the state replicas share: automatic persisted queries,
// idempotency records, token-recheck marks, rate-budget tallies and the second
// tier of the immutable-data cache. It lives in Redis when REDIS_URL is set and
// in this process otherwise, or while Redis is unreachable.
package shared

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"time"
)

// ErrNotFound is Get's answer for a key that is absent or expired.
var ErrNotFound = errors.New("shared: key not found")

// Store is the small set of operations the shared state needs. A ttl of 0
// means the entry does not expire (it may still be evicted in-process).
type Store interface {
	// Get returns the value of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only if key is absent, and reports whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes key; an absent key is no error.
	Delete(ctx context.Context, key string) error
	// Count adds n (which may be negative, or 0 to read) to key's tally in the
	// one-second bucket of at, and returns the tally over the window ending at at.
	Count(ctx context.Context, key string, at time.Time, n int64, window time.Duration) (Tally, error)
}

// Tally is a sliding-window count and the running total since the key was made.
type Tally struct {
	// InWindow is the sum of the buckets within the window.
	InWindow int64
	// Total is every n ever added to the key (it restarts if the key expires after an hour unused).
	Total int64
	// Oldest is the start of the oldest non-empty bucket in the window; zero when none.
	Oldest time.Time
}

// TokenKey is the name by which shared state refers to a token: a keyed hash
// (HMAC-SHA256 with the server secret), so no store ever holds a token.
func TokenKey(secret []byte, token string) string {
	return TokenKeyWith(hmac.New(sha256.New, secret), token)
}

// TokenKeyWith is TokenKey computed with mac, an HMAC-SHA256 keyed with the
// secret that the caller reuses (it is reset first).
func TokenKeyWith(mac hash.Hash, token string) string {
	mac.Reset()
	mac.Write([]byte("oceangraph token key\x00"))
	mac.Write([]byte(token))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(mac.Sum(sum[:0]))
}

// tallyIdle is how long an unused tally is kept: the running total must outlive
// the observations that refer to it (DigitalOcean's windows are at most an hour).
const tallyIdle = time.Hour
