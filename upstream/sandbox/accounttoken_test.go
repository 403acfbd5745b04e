package sandbox

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestAccountTokenServesEveryTokenAsOne: with Options.AccountToken, any token
// sees that token's account but keeps a rate-limit window of its own, as
// DigitalOcean limits each token (REFERENCE.md); no token is still refused.
func TestAccountTokenServesEveryTokenAsOne(t *testing.T) {
	s, srv := newTestServer(t, Options{AccountToken: testToken})
	uuid := s.Account(testToken).Invoices[0].UUID
	path := "/v2/customers/my/invoices/" + uuid + "/summary"
	used := map[string]int{}
	for _, token := range []string{"fresh-1", "fresh-2", testToken, "fresh-1"} {
		resp, body := get(t, srv, token, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("token %q: HTTP %d %s, want 200 (%s's invoice)", token, resp.StatusCode, body, testToken)
		}
		used[token]++
		if n, _ := strconv.Atoi(resp.Header.Get("Ratelimit-Remaining")); n != hourlyLimit-used[token] {
			t.Errorf("token %q: ratelimit-remaining %d, want %d (a window per token)", token, n, hourlyLimit-used[token])
		}
	}
	if resp, _ := get(t, srv, "", path); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: HTTP %d, want 401", resp.StatusCode)
	}

	_, plain := newTestServer(t, Options{})
	if resp, _ := get(t, plain, "fresh-1", path); resp.StatusCode != http.StatusNotFound {
		t.Errorf("without AccountToken, another token's invoice: HTTP %d, want 404", resp.StatusCode)
	}
}

// TestAFullLimiterForgetsTokensAndKeepsCounting: past maxWindows tokens in one
// minute (a load of fresh tokens), the limiter stays within its bound and
// still counts the token in front of it.
func TestAFullLimiterForgetsTokensAndKeepsCounting(t *testing.T) {
	l := newLimiter()
	now := time.Unix(1_800_000_000, 0)
	for i := range maxWindows + 500 {
		l.count("fresh-"+strconv.Itoa(i), now, 0)
	}
	if n := len(l.windows); n > maxWindows {
		t.Fatalf("%d windows after %d tokens, want at most %d", n, maxWindows+500, maxWindows)
	}
	l.count("busy", now, 0)
	if st := l.count("busy", now.Add(time.Second), 0); st.remaining != hourlyLimit-2 {
		t.Errorf("the newest token's second request: remaining %d, want %d", st.remaining, hourlyLimit-2)
	}
	// A minute on, every window is idle: one sweep forgets them all.
	l.count("late", now.Add(2*time.Minute), 0)
	if n := len(l.windows); n != 1 {
		t.Errorf("%d windows after a sweep a minute on, want 1 (the new token's)", n)
	}
}
