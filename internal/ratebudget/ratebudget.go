// Package ratebudget keeps a per-token budget of DigitalOcean calls, shared
// between replicas, so an operation that cannot be answered whole is refused
// before its first call instead of half-answered with 429s.
//
// Two views bound it, and the tighter wins: the calls this service reserved in
// the last minute against DigitalOcean's per-minute limit (exact for a token
// only this service uses), and DigitalOcean's own ratelimit-remaining as last
// seen, less the calls reserved since (which also counts the token's use by
// anything else, until its ratelimit-reset passes).
package ratebudget

import (
	"context"
	"encoding/json"
	"time"

	"github.com/oceangraph/oceangraph/internal/shared"
)

// Defaults of Options.
const (
	// DefaultPerMinute is DigitalOcean's per-minute limit of one token.
	DefaultPerMinute = 250
	// DefaultReserve is how many calls operations of more than one call leave
	// free, so a single cheap query still gets through a busy minute.
	DefaultReserve = 5
)

// window is DigitalOcean's rolling minute plus a margin: a call is counted
// here when it is reserved, there when it arrives a little later, so it must
// leave our count no sooner than it leaves theirs.
const window = 62 * time.Second

// Options configure New.
type Options struct {
	// Store holds the tallies and observations (a *shared.Shared to share them).
	Store shared.Store
	// PerMinute is the calls a token may make in a rolling minute (0: DefaultPerMinute).
	PerMinute int
	// Reserve is kept for single-call operations (the server's default: DefaultReserve).
	Reserve int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Budget is the per-token rate budget.
type Budget struct {
	store     shared.Store
	perMinute int64
	reserve   int64
	now       func() time.Time
}

// New makes a budget.
func New(o Options) *Budget {
	b := &Budget{store: o.Store, perMinute: int64(o.PerMinute), reserve: int64(o.Reserve), now: o.Now}
	if b.perMinute <= 0 {
		b.perMinute = DefaultPerMinute
	}
	b.reserve = max(b.reserve, 0)
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// Observation is what one DigitalOcean response said of the token's limit.
type Observation struct {
	Remaining int
	// Reset is when the oldest counted request expires.
	Reset time.Time
}

// seen is an observation as stored: with the token's running total of
// reserved calls at that moment, so later reservations can be subtracted.
type seen struct {
	Remaining int64 `json:"r"`
	Reset     int64 `json:"t"`
	Total     int64 `json:"n"`
}

// Observe records the newest rate-limit headers of a token's responses. Call
// it once per operation, with its newest response's headers.
func (b *Budget) Observe(ctx context.Context, tokenKey string, o Observation) {
	now := b.now()
	if o.Reset.IsZero() || !o.Reset.After(now) {
		return
	}
	tally, err := b.store.Count(ctx, tallyKey(tokenKey), now, 0, window)
	if err != nil {
		return
	}
	if !b.binds(o, tally, now) {
		// Dropped rather than kept: the newest observation still wins over an older, tighter one.
		_ = b.store.Delete(ctx, seenKey(tokenKey))
		return
	}
	v, _ := json.Marshal(seen{Remaining: int64(o.Remaining), Reset: o.Reset.Unix(), Total: tally.Total})
	_ = b.store.Set(ctx, seenKey(tokenKey), v, o.Reset.Sub(now)+time.Second)
}

// binds reports whether an observation can ever be tighter than our own count
// before its reset, and so is worth keeping. It is not when DigitalOcean knows of
// no call our count lacks (remaining ≥ perMinute − our calls in the window: the
// token used only through us, as a fresh token a request is) and none of those
// calls leaves our window before the reset: from then on both views subtract
// the same later calls. Not keeping it saves a stored entry per token.
func (b *Budget) binds(o Observation, t shared.Tally, now time.Time) bool {
	if int64(o.Remaining) < b.perMinute-t.InWindow {
		return true // calls we did not count: the token is used elsewhere too
	}
	if o.Reset.After(now.Add(window)) {
		return true // calls we count from now on could leave our window before the reset
	}
	return !t.Oldest.IsZero() && t.Oldest.Add(window).Before(o.Reset)
}

// Reservation is an admitted operation's claim on the budget.
type Reservation struct {
	b        *Budget
	tokenKey string
	at       time.Time
	n        int64
}

// Reserve asks for n calls for one operation. It answers ok with a
// reservation, or refuses with how long to wait before the calls may fit.
// A store failure admits the operation: the budget is a courtesy, and
// DigitalOcean's own 429 remains the last word.
func (b *Budget) Reserve(ctx context.Context, tokenKey string, n int) (r Reservation, ok bool, retryAfter time.Duration) {
	if n <= 0 {
		return Reservation{}, true, 0
	}
	now := b.now()
	want := int64(n)
	tally, err := b.store.Count(ctx, tallyKey(tokenKey), now, want, window)
	if err != nil {
		return Reservation{}, true, 0
	}
	need := want
	if want > 1 {
		need += b.reserve
	}
	// Room before this reservation, by our own count.
	room := b.perMinute - (tally.InWindow - want)
	wait := time.Duration(0)
	if !tally.Oldest.IsZero() {
		wait = tally.Oldest.Add(window).Sub(now)
	}
	// And by DigitalOcean's last word, less what was reserved since.
	if s, ok := b.seen(ctx, tokenKey); ok && now.Before(time.Unix(s.Reset, 0)) {
		since := max(tally.Total-want-s.Total, 0)
		if seenRoom := s.Remaining - since; seenRoom < room {
			room, wait = seenRoom, time.Unix(s.Reset, 0).Sub(now)
		}
	}
	if need <= room {
		return Reservation{b: b, tokenKey: tokenKey, at: now, n: want}, true, 0
	}
	_, _ = b.store.Count(ctx, tallyKey(tokenKey), now, -want, window)
	return Reservation{}, false, max((wait + time.Second - 1).Truncate(time.Second), time.Second)
}

// Spend counts calls beyond the reservation as they are made (an estimate
// that fell short), so that other operations see them at once, not at Settle.
// It is not safe for concurrent use on one reservation.
func (r *Reservation) Spend(ctx context.Context, n int) {
	if r.b == nil || n <= 0 {
		return
	}
	r.n += int64(n)
	_, _ = r.b.store.Count(ctx, tallyKey(r.tokenKey), r.at, int64(n), window)
}

// Settle brings the tally to the calls the operation really made: it gives
// back what the cache answered or a failed field never asked, and counts what
// the estimate missed (retries, an evicted entry).
func (r Reservation) Settle(ctx context.Context, made int) {
	if r.b == nil || int64(made) == r.n {
		return
	}
	_, _ = r.b.store.Count(ctx, tallyKey(r.tokenKey), r.at, int64(made)-r.n, window)
}

func (b *Budget) seen(ctx context.Context, tokenKey string) (seen, bool) {
	raw, err := b.store.Get(ctx, seenKey(tokenKey))
	if err != nil {
		return seen{}, false
	}
	var s seen
	if json.Unmarshal(raw, &s) != nil {
		return seen{}, false
	}
	return s, true
}

func tallyKey(tokenKey string) string { return "budget:" + tokenKey }
func seenKey(tokenKey string) string  { return "budget-seen:" + tokenKey }
