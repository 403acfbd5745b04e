package tokencache

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

// seenTokens remembers the tokens of recent requests, lossily: one slot of
// a token key's hash per slot index, overwritten by the next token that
// lands there (S3-FIFO's ghost queue, by token and without a queue). Its
// slots are pointer-free and fixed, so a flood of one-off tokens costs it no
// memory and the GC nothing to mark; a token forgotten early only has its
// next request's entries start in probation again.
type seenTokens struct {
	seed  maphash.Seed
	slots []atomic.Uint64
}

// maxSeen slots (128 KiB) remember the last ~16,000 tokens: minutes of a
// busy server's distinct users, seconds of the bench's one-request flood.
const maxSeen = 1 << 14

// newSeenTokens sizes the table at most a 256th of budget.
func newSeenTokens(budget int64) seenTokens {
	n := min(maxSeen, max(budget/256/8, 1))
	n = 1 << (bits.Len64(uint64(n)) - 1)
	return seenTokens{seed: maphash.MakeSeed(), slots: make([]atomic.Uint64, n)}
}

func (s *seenTokens) bytes() uint64 { return uint64(len(s.slots)) * 8 }

// visit records key and reports whether it was already there.
func (s *seenTokens) visit(key string) bool {
	h := maphash.String(s.seed, key) | 1 // 0 is an empty slot
	return s.slots[h&uint64(len(s.slots)-1)].Swap(h) == h
}
