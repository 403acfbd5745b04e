package upstream

import (
	"net/http"
	"strconv"
	"time"
)

// RateLimit is DigitalOcean's ratelimit-* headers.
type RateLimit struct {
	Limit     int
	Remaining int
	// Reset is when the oldest counted request expires; zero when unknown.
	Reset time.Time
}

// IsZero reports whether no rate-limit header was seen.
func (r RateLimit) IsZero() bool { return r.Limit == 0 && r.Remaining == 0 && r.Reset.IsZero() }

// maxServerWait bounds any wait or reset time taken from a response: DigitalOcean
// counts requests over an hour, so a header saying more is wrong or hostile,
// and passing it on (Retry-After: 1000000000, a reset in the year 3170843)
// would put nonsense, or a date RFC 3339 cannot write, in a client's hands.
const maxServerWait = time.Hour

// parseRateLimit reads the ratelimit-* headers. A missing, malformed or
// negative one stays zero; a reset further away than maxServerWait is taken
// as now+maxServerWait.
func parseRateLimit(h http.Header, now time.Time) RateLimit {
	var r RateLimit
	if n, err := strconv.Atoi(h.Get("Ratelimit-Limit")); err == nil && n > 0 {
		r.Limit = n
	}
	if n, err := strconv.Atoi(h.Get("Ratelimit-Remaining")); err == nil && n > 0 {
		r.Remaining = n
	}
	if s, err := strconv.ParseInt(h.Get("Ratelimit-Reset"), 10, 64); err == nil && s > 0 {
		latest := now.Add(maxServerWait).Truncate(time.Second)
		if s > latest.Unix() {
			r.Reset = latest.UTC()
		} else {
			r.Reset = time.Unix(s, 0).UTC()
		}
	}
	return r
}

// serverWait is how long the response asks the client to wait before trying
// again, at most maxServerWait: Retry-After (delta-seconds or an HTTP date)
// on any status, or, on a 429 without it, the time until ratelimit-reset. ok
// is false when it says nothing usable.
func serverWait(resp *http.Response, now time.Time) (wait time.Duration, ok bool) {
	if v := resp.Header.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
			return time.Duration(min(s, int64(maxServerWait/time.Second))) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return min(max(t.Sub(now), 0), maxServerWait), true
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if reset := parseRateLimit(resp.Header, now).Reset; !reset.IsZero() {
			// Whole seconds, rounded up: the reset is an epoch second.
			return max(reset.Sub(now)+time.Second-1, 0).Truncate(time.Second), true
		}
	}
	return 0, false
}
