package graph

import (
	"context"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/oceangraph/oceangraph/internal/shared"
)

// How long idempotency records live: a finished answer is replayed for a
// day (the contract's promise); a claim whose mutation never finished (a
// crash) frees its key after a few minutes.
const (
	idempotencyTTL            = shared.IdempotencyTTL
	idempotencyClaimTTL       = shared.ClaimTTL
	defaultIdempotencyEntries = 100_000
)

// memoryIdempotency is the handler's default IdempotencyStore, for one
// replica: bounded (the least recently used record goes first past its size)
// and without goroutines of its own. Several replicas share shared.Idempotency
// on Redis instead (the same verdicts and lifetimes).
type memoryIdempotency struct {
	mu      sync.Mutex
	records *lru.Cache[string, idempotencyRecord]
	now     func() time.Time
}

type idempotencyRecord struct {
	fingerprint string
	done        bool
	answer      []byte
	expires     time.Time
}

// newMemoryIdempotency keeps at most size records.
func newMemoryIdempotency(size int) *memoryIdempotency {
	records, _ := lru.New[string, idempotencyRecord](max(size, 1))
	return &memoryIdempotency{records: records, now: time.Now}
}

func memoryKey(tokenKey, key string) string { return tokenKey + "\x00" + key }

// Begin claims the key, or tells what the record says.
func (m *memoryIdempotency) Begin(_ context.Context, tokenKey, key, fingerprint string) (shared.Outcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, now := memoryKey(tokenKey, key), m.now()
	rec, ok := m.records.Get(k)
	switch {
	case !ok || now.After(rec.expires):
		m.records.Add(k, idempotencyRecord{fingerprint: fingerprint, expires: now.Add(idempotencyClaimTTL)})
		return shared.Outcome{Verdict: shared.Proceed}, nil
	case rec.fingerprint != fingerprint:
		return shared.Outcome{Verdict: shared.Mismatch}, nil
	case !rec.done:
		return shared.Outcome{Verdict: shared.InProgress}, nil
	}
	return shared.Outcome{Verdict: shared.Replay, Answer: rec.answer}, nil
}

// Finish keeps the answer for idempotencyTTL.
func (m *memoryIdempotency) Finish(_ context.Context, tokenKey, key, fingerprint string, answer []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records.Add(memoryKey(tokenKey, key), idempotencyRecord{fingerprint: fingerprint, done: true, answer: answer, expires: m.now().Add(idempotencyTTL)})
	return nil
}

// Abandon frees the key.
func (m *memoryIdempotency) Abandon(_ context.Context, tokenKey, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records.Remove(memoryKey(tokenKey, key))
	return nil
}
