package sandbox

import (
	"net/http"
	"strconv"
	"testing"
)

// TestAccountTokenServesEveryTokenAsOne: with Options.AccountToken, any token
// sees that token's account and spends its rate-limit window; no token is
// still refused.
func TestAccountTokenServesEveryTokenAsOne(t *testing.T) {
	s, srv := newTestServer(t, Options{AccountToken: testToken})
	uuid := s.Account(testToken).Invoices[0].UUID
	path := "/v2/customers/my/invoices/" + uuid + "/summary"
	remaining := -1
	for i, token := range []string{"fresh-1", "fresh-2", testToken} {
		resp, body := get(t, srv, token, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("token %q: HTTP %d %s, want 200 (%s's invoice)", token, resp.StatusCode, body, testToken)
		}
		n, _ := strconv.Atoi(resp.Header.Get("Ratelimit-Remaining"))
		if i > 0 && n != remaining-1 {
			t.Errorf("token %q: ratelimit-remaining %d, want %d (one window for all tokens)", token, n, remaining-1)
		}
		remaining = n
	}
	if resp, _ := get(t, srv, "", path); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: HTTP %d, want 401", resp.StatusCode)
	}

	_, plain := newTestServer(t, Options{})
	if resp, _ := get(t, plain, "fresh-1", path); resp.StatusCode != http.StatusNotFound {
		t.Errorf("without AccountToken, another token's invoice: HTTP %d, want 404", resp.StatusCode)
	}
}
