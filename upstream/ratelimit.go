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

// parseRateLimit reads the ratelimit-* headers; a missing or malformed one stays zero.
func parseRateLimit(h http.Header) RateLimit {
	var r RateLimit
	r.Limit, _ = strconv.Atoi(h.Get("Ratelimit-Limit"))
	r.Remaining, _ = strconv.Atoi(h.Get("Ratelimit-Remaining"))
	if s, err := strconv.ParseInt(h.Get("Ratelimit-Reset"), 10, 64); err == nil && s > 0 {
		r.Reset = time.Unix(s, 0).UTC()
	}
	return r
}

// serverWait is how long the response asks the client to wait before trying
// again: Retry-After (delta-seconds or an HTTP date) on any status, or, on a
// 429 without it, the time until ratelimit-reset. ok is false when it says nothing.
func serverWait(resp *http.Response, now time.Time) (wait time.Duration, ok bool) {
	if v := resp.Header.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
			return time.Duration(min(s, 1<<31)) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if reset := parseRateLimit(resp.Header).Reset; !reset.IsZero() {
			// Whole seconds, rounded up: the reset is an epoch second.
			return max(reset.Sub(now)+time.Second-1, 0).Truncate(time.Second), true
		}
	}
	return 0, false
}
