package shared

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/maypok86/otter/v2"
)

// DefaultLocalBytes bounds the in-process store when no size is given.
const DefaultLocalBytes = 32 << 20

// Local is the in-process Store: a byte-bounded otter cache with per-entry
// expiry, and sliding-window tallies.
type Local struct {
	entries *otter.Cache[string, localEntry]

	mu      sync.Mutex
	tallies *simplelru.LRU[string, *localTally]
}

type localEntry struct {
	value []byte
	ttl   time.Duration
}

type localTally struct {
	buckets []bucket // a token's calls fall in a few seconds of a minute: a short slice, no map
	total   int64
	used    time.Time
}

type bucket struct{ sec, n int64 }

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
		tallies: must(simplelru.NewLRU[string, *localTally](maxTallies, nil)),
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
	t, ok := l.tallies.Get(key)
	if !ok || time.Since(t.used) > tallyIdle {
		t = &localTally{}
		l.tallies.Add(key, t)
	}
	t.used = time.Now()
	now := at.Unix()
	if n != 0 {
		t.add(now, n)
		t.total += n
	}
	from := now - int64(window/time.Second)
	out := Tally{Total: t.total}
	kept := t.buckets[:0]
	oldest := int64(0)
	for _, b := range t.buckets {
		if b.sec <= from {
			continue
		}
		kept = append(kept, b)
		out.InWindow += b.n
		if b.n > 0 && (oldest == 0 || b.sec < oldest) {
			oldest = b.sec
		}
	}
	clear(t.buckets[len(kept):])
	t.buckets = kept
	if oldest != 0 {
		out.Oldest = time.Unix(oldest, 0)
	}
	return out, nil
}

func (t *localTally) add(sec, n int64) {
	for i := range t.buckets {
		if t.buckets[i].sec == sec {
			t.buckets[i].n += n
			return
		}
	}
	t.buckets = append(t.buckets, bucket{sec, n})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
