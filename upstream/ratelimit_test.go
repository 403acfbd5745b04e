package upstream

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestRateLimitHeadersAreParsedDefensively(t *testing.T) {
	now := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	header := func(limit, remaining, reset string) http.Header {
		return http.Header{"Ratelimit-Limit": {limit}, "Ratelimit-Remaining": {remaining}, "Ratelimit-Reset": {reset}}
	}
	in := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	cases := []struct {
		name string
		h    http.Header
		want RateLimit
	}{
		{"the spec's example", header("5000", "4816", "1444931833"), specRateLimit},
		{"negative values dropped", header("-1", "-9223372036854775808", "-5"), RateLimit{}},
		{"unparsable values dropped", header("5000.0", "lots", "soon"), RateLimit{}},
		{"overflowing values dropped", header("99999999999999999999", "1", "99999999999999999999"), RateLimit{Remaining: 1}},
		{"a reset within the hour kept", header("5000", "0", in(30*time.Minute)), RateLimit{Limit: 5000, Reset: now.Add(30 * time.Minute)}},
		{"a far reset clamped to an hour", header("5000", "0", "100000000000"), RateLimit{Limit: 5000, Reset: now.Add(time.Hour)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := parseRateLimit(tc.h, now)
			assertEqual(t, "rate limit", got, tc.want)
			if !got.Reset.IsZero() {
				if _, err := time.Parse(time.RFC3339, got.Reset.Format(time.RFC3339)); err != nil {
					t.Errorf("Reset %v does not survive RFC 3339: %v", got.Reset, err)
				}
			}
		})
	}
}

func TestServerWaitIsAtMostAnHour(t *testing.T) {
	now := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		status int
		h      http.Header
		want   time.Duration
		ok     bool
	}{
		{"Retry-After seconds", 503, http.Header{"Retry-After": {"7"}}, 7 * time.Second, true},
		{"Retry-After a billion seconds", 429, http.Header{"Retry-After": {"1000000000"}}, time.Hour, true},
		{"Retry-After beyond int64", 429, http.Header{"Retry-After": {"99999999999999999999"}}, 0, false},
		{"Retry-After negative", 429, http.Header{"Retry-After": {"-3"}}, 0, false},
		{"Retry-After a date in the year 9999", 503, http.Header{"Retry-After": {"Fri, 31 Dec 9999 23:59:59 GMT"}}, time.Hour, true},
		{"ratelimit-reset far away", 429, http.Header{"Ratelimit-Reset": {"100000000000"}}, time.Hour, true},
		{"ratelimit-reset negative", 429, http.Header{"Ratelimit-Reset": {"-9223372036854775808"}}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := serverWait(&http.Response{StatusCode: tc.status, Header: tc.h}, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("serverWait = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
