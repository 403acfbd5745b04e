package shared

import (
	"context"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultLocalBytes bounds the in-process store when no size is given.
const DefaultLocalBytes = 32 << 20

// Local is the in-process Store: a byte-bounded otter cache with per-entry
// expiry, and sliding-window tallies.
type Local struct {
	entries *otter.Cache[string, localEntry]

	mu      sync.Mutex
	tallies *tallies
}

type localEntry struct {
	value []byte
	ttl   time.Duration
}

// maxTallies bounds the tallies kept in-process: a fresh token a request (the
// cold bench) makes one each, and past the bound the least recently used go
// (a token's budget forgotten is a courtesy lost; DigitalOcean's 429 stays the last word).
const maxTallies = 20_000

// never stands for "no expiry" in otter's per-entry expiry, which needs a duration.
const never = 100 * 365 * 24 * time.Hour

// NewLocal makes an in-process Store holding at most maxBytes of keys and values (0: DefaultLocalBytes).
func NewLocal(maxBytes int64) *Local {
	if maxBytes <= 0 {
		maxBytes = DefaultLocalBytes
	}
	return &Local{
		entries: otter.Must(&otter.Options[string, localEntry]{
			MaximumWeight: uint64(maxBytes),
			Weigher: func(k string, e localEntry) uint32 {
				return uint32(min(len(k)+len(e.value)+64, 1<<31))
			},
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, localEntry]) time.Duration {
				if e.Value.ttl <= 0 {
					return never
				}
				return e.Value.ttl
			}),
		}),
		tallies: newTallies(maxTallies),
	}
}

// Get implements Store.
func (l *Local) Get(_ context.Context, key string) ([]byte, error) {
	e, ok := l.entries.GetIfPresent(key)
	if !ok {
		return nil, ErrNotFound
	}
	return e.value, nil
}

// Set implements Store.
func (l *Local) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	l.entries.Set(key, localEntry{value: value, ttl: ttl})
	return nil
}

// SetNX implements Store.
func (l *Local) SetNX(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	_, stored := l.entries.SetIfAbsent(key, localEntry{value: value, ttl: ttl})
	return stored, nil
}

// Delete implements Store.
func (l *Local) Delete(_ context.Context, key string) error {
	l.entries.Invalidate(key)
	return nil
}

// Count implements Store.
func (l *Local) Count(_ context.Context, key string, at time.Time, n int64, window time.Duration) (Tally, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tallies.count(key, at, n, window), nil
}

// TallyBytes is the heap the in-process tallies hold: bounded, long-lived and
// pointer-free, so the GC adapter counts them once, as it does the cache.
func (l *Local) TallyBytes() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tallies.bytes()
}
