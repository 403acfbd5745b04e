package shared

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Idempotency-record lifetimes.
const (
	// IdempotencyTTL is how long a mutation's first answer is replayed.
	IdempotencyTTL = 24 * time.Hour
	// ClaimTTL bounds an "in progress" claim whose replica died before finishing.
	ClaimTTL = 2 * time.Minute
)

// Idempotency records mutations by (token, idempotency key): the first
// answer with a fingerprint of its input, and an "in progress" claim while it
// runs, so two identical mutations racing on two replicas go upstream once.
type Idempotency struct {
	Store Store
	// TTL is how long a finished answer is kept (0: IdempotencyTTL).
	TTL time.Duration
}

// Verdict is what Begin decided.
type Verdict int

const (
	// Proceed: the caller holds the claim; it must call Finish (or Abandon).
	Proceed Verdict = iota
	// Replay: the same mutation already finished; Answer is its first answer.
	Replay
	// InProgress: the same key is running now elsewhere; try again shortly.
	InProgress
	// Mismatch: the key was used with a different input (a client error).
	Mismatch
)

// Outcome is Begin's answer.
type Outcome struct {
	Verdict Verdict
	// Answer is the stored first answer (Replay only).
	Answer []byte
}

type idemRecord struct {
	Fingerprint string          `json:"f"`
	Done        bool            `json:"d,omitempty"`
	Answer      json.RawMessage `json:"a,omitempty"`
}

// Begin claims key for a mutation whose input has the given fingerprint, or
// says why not.
func (i Idempotency) Begin(ctx context.Context, tokenKey, key, fingerprint string) (Outcome, error) {
	sk := idemKey(tokenKey, key)
	claim, _ := json.Marshal(idemRecord{Fingerprint: fingerprint})
	// A record can expire or be abandoned between SetNX and Get: then claim again, a bounded number of times.
	for range 3 {
		ok, err := i.Store.SetNX(ctx, sk, claim, ClaimTTL)
		if err != nil {
			return Outcome{}, fmt.Errorf("idempotency claim: %w", err)
		}
		if ok {
			return Outcome{Verdict: Proceed}, nil
		}
		raw, err := i.Store.Get(ctx, sk)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return Outcome{}, fmt.Errorf("idempotency record: %w", err)
		}
		var rec idemRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return Outcome{}, fmt.Errorf("idempotency record: %w", err)
		}
		switch {
		case rec.Fingerprint != fingerprint:
			return Outcome{Verdict: Mismatch}, nil
		case !rec.Done:
			return Outcome{Verdict: InProgress}, nil
		default:
			return Outcome{Verdict: Replay, Answer: rec.Answer}, nil
		}
	}
	return Outcome{Verdict: InProgress}, nil
}

// Finish stores the first answer (JSON) of a claimed mutation for replay.
func (i Idempotency) Finish(ctx context.Context, tokenKey, key, fingerprint string, answer []byte) error {
	ttl := i.TTL
	if ttl <= 0 {
		ttl = IdempotencyTTL
	}
	rec, err := json.Marshal(idemRecord{Fingerprint: fingerprint, Done: true, Answer: answer})
	if err != nil {
		return fmt.Errorf("idempotency answer: %w", err)
	}
	return i.Store.Set(ctx, idemKey(tokenKey, key), rec, ttl)
}

// Abandon drops a claim whose mutation certainly never reached DigitalOcean, so the key may be used again.
func (i Idempotency) Abandon(ctx context.Context, tokenKey, key string) error {
	return i.Store.Delete(ctx, idemKey(tokenKey, key))
}

// idemKey hashes the client's key: it is client-chosen text of any length.
func idemKey(tokenKey, key string) string {
	h := sha256.Sum256([]byte(key))
	return "idem:" + tokenKey + ":" + base64.RawURLEncoding.EncodeToString(h[:])
}
