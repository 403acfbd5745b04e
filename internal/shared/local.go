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
	tallies map[string]*localTally
}

type localEntry struct {
	value []byte
	ttl   time.Duration
}

type localTally struct {
	buckets map[int64]int64 // Unix second → count
	total   int64
	used    time.Time
}

// maxTallies bounds the tallies kept in-process; past it, idle ones are dropped.
const maxTallies = 100_000

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
		tallies: map[string]*localTally{},
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
	t := l.tallies[key]
	if t == nil || time.Since(t.used) > tallyIdle {
		if len(l.tallies) >= maxTallies {
			l.dropIdle()
		}
		t = &localTally{buckets: map[int64]int64{}}
		l.tallies[key] = t
	}
	t.used = time.Now()
	now := at.Unix()
	if n != 0 {
		t.buckets[now] += n
		t.total += n
	}
	from := now - int64(window/time.Second)
	out := Tally{Total: t.total}
	oldest := int64(0)
	for sec, c := range t.buckets {
		if sec <= from {
			delete(t.buckets, sec)
			continue
		}
		out.InWindow += c
		if c > 0 && (oldest == 0 || sec < oldest) {
			oldest = sec
		}
	}
	if oldest != 0 {
		out.Oldest = time.Unix(oldest, 0)
	}
	return out, nil
}

func (l *Local) dropIdle() {
	for k, t := range l.tallies {
		if time.Since(t.used) > time.Minute {
			delete(l.tallies, k)
		}
	}
}
