package graph

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestAutomaticPersistedQueries(t *testing.T) {
	h := guardedHarness(t, GuardLimits{}, true)
	const query = `{ __typename }`
	sum := sha256.Sum256([]byte(query))
	apq := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}

	resp := h.postExtensions("", apq)
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("an unknown hash got %+v, want PERSISTED_QUERY_NOT_FOUND", resp.Errors)
	}
	if resp := h.postExtensions(query, apq); len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), "Query") {
		t.Fatalf("registering the query got %s %+v", resp.Data, resp.Errors)
	}
	if resp := h.postExtensions("", apq); len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), "Query") {
		t.Fatalf("the hash alone, once registered, got %s %+v", resp.Data, resp.Errors)
	}
	wrong := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("0", 64)}}
	if resp := h.postExtensions(query, wrong); len(resp.Errors) != 1 {
		t.Errorf("a query with a hash that is not its own got %s, want an error", resp.Data)
	}
}

// postExtensions sends a query (omitted when empty) with request extensions.
func (h *harness) postExtensions(query string, extensions map[string]any) gqlResponse {
	h.t.Helper()
	body := map[string]any{"extensions": extensions}
	if query != "" {
		body["query"] = query
	}
	return h.decoded(h.send("Bearer "+callerToken, body))
}
