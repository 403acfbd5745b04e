package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/internal/ratebudget"
	"github.com/oceangraph/oceangraph/internal/redistest"
	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/internal/tokencache"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// newSharedState is shared state as the server makes it: in-process without REDIS_URL.
func newSharedState(t *testing.T, store shared.Store, budget *ratebudget.Budget) *SharedState {
	t.Helper()
	cache, err := tokencache.New(tokencache.Options{Secret: bytes.Repeat([]byte{7}, 32), Shared: cacheTier(store)})
	if err != nil {
		t.Fatal(err)
	}
	return &SharedState{Store: store, Cache: cache, Budget: budget}
}

// cacheTier is the cache's second tier over store, as the server wires it:
// Redis alone (shared.Shared.Remote), none for an in-process store.
func cacheTier(store shared.Store) shared.Store {
	if s, ok := store.(*shared.Shared); ok {
		return s.Remote()
	}
	return nil
}

// cost is a response's extensions.cost.
func cost(t *testing.T, resp gqlResponse) (upstreamCalls, cacheHits int) {
	t.Helper()
	c, ok := resp.Extensions["cost"].(map[string]any)
	if !ok {
		t.Fatalf("no extensions.cost in %v", resp.Extensions)
	}
	return int(c["upstreamCalls"].(float64)), int(c["cacheHits"].(float64))
}

func TestWarmDashboardCostsOnlyTheThreeLists(t *testing.T) {
	st := newSharedState(t, shared.NewLocal(0), nil)
	h := newSandboxHarness(t, func(c *Config) { c.Shared = st })
	cold := h.post(queries.Dashboard, nil)
	if calls, hits := cost(t, cold); calls != queries.DashboardCalls || hits != 0 || len(cold.Errors) > 0 {
		t.Fatalf("cold dashboard: %d calls, %d hits, errors %v; want %d, 0, none", calls, hits, cold.Errors, queries.DashboardCalls)
	}
	h.sandbox.Reset()
	warm := h.post(queries.Dashboard, nil)
	assertCalls(t, "warm dashboard", h.upstreamCalls(), []string{
		"GET /v2/customers/my/billing_history?page=1&per_page=10",
		"GET /v2/customers/my/invoices?page=1&per_page=12",
		"GET /v2/volumes?page=1&per_page=50",
	})
	if calls, hits := cost(t, warm); calls != 3 || hits != 24 {
		t.Fatalf("warm dashboard cost {upstreamCalls: %d, cacheHits: %d}, want {3, 24}", calls, hits)
	}
	if !bytes.Equal(cold.Data, warm.Data) {
		t.Fatalf("the warm dashboard's data differs from the cold one's:\ncold %s\nwarm %s", cold.Data, warm.Data)
	}
}

func TestThePreviewAndTheListsAreNotCached(t *testing.T) {
	st := newSharedState(t, shared.NewLocal(0), nil)
	h := newSandboxHarness(t, func(c *Config) { c.Shared = st })
	h.post(queries.Dashboard, nil) // marks the listed invoices as issued
	query := `{ invoice(uuid: "preview") { summary { amount } items(first: 5) { nodes { amount } } }
	  balance { monthToDateUsage } volumes(first: 5) { nodes { id } } }`
	for range 2 {
		h.sandbox.Reset()
		resp := h.post(query, nil)
		if calls, hits := cost(t, resp); calls != 4 || hits != 0 {
			t.Fatalf("preview, balance and volumes cost {%d calls, %d hits}, want 4 calls every time, no hit", calls, hits)
		}
	}
}

func TestOneCacheTwoTokensNoCrossing(t *testing.T) {
	st := newSharedState(t, shared.NewLocal(0), nil)
	h := newSandboxHarness(t, func(c *Config) { c.Shared = st })
	alice := h.postAs("Bearer dop_v1_alice", queries.Dashboard, nil)
	h.postAs("Bearer dop_v1_alice", queries.Dashboard, nil) // warm for alice
	bob := h.postAs("Bearer dop_v1_bob", queries.Dashboard, nil)
	if calls, hits := cost(t, bob); calls != queries.DashboardCalls || hits != 0 {
		t.Fatalf("bob's first dashboard after alice's: {%d calls, %d hits}, want a cold %d calls", calls, hits, queries.DashboardCalls)
	}
	bobWarm := h.postAs("Bearer dop_v1_bob", queries.Dashboard, nil)
	if _, hits := cost(t, bobWarm); hits != 24 {
		t.Fatalf("bob's second dashboard: %d hits, want 24", hits)
	}
	if bytes.Equal(alice.Data, bobWarm.Data) || !bytes.Equal(bob.Data, bobWarm.Data) {
		t.Fatal("bob's cached dashboard is not his own (the sandbox gives two tokens two accounts)")
	}
}

// revoker is the sandbox behind a switch that makes DigitalOcean refuse a token, as a revocation would.
type revoker struct {
	sb      *sandbox.Sandbox
	mu      sync.Mutex
	revoked map[string]bool
}

func (r *revoker) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	refused := r.revoked[strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")]
	r.mu.Unlock()
	if refused {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"id":"unauthorized","message":"Unable to authenticate you."}`))
		return
	}
	r.sb.ServeHTTP(w, req)
}

func (r *revoker) revoke(token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[token] = true
}

func TestARevokedTokenIsNotServedFromTheCache(t *testing.T) {
	rv := &revoker{sb: sandbox.New(sandbox.Options{Seed: 1}), revoked: map[string]bool{}}
	store := shared.NewLocal(0)
	st := newSharedState(t, store, nil)
	st.TokenRecheck = time.Hour
	h := newHarness(t, rv, func(c *Config) { c.Shared = st })
	var list struct {
		Invoices struct{ Nodes []struct{ UUID string } }
	}
	h.mustData(`{ invoices(first: 1) { nodes { uuid } } }`, nil, &list)
	query := `query($u: ID!) { invoice(uuid: $u) { summary { amount } items(first: 5) { nodes { amount } } } }`
	vars := map[string]any{"u": list.Invoices.Nodes[0].UUID}
	h.mustData(query, vars, &struct{}{}) // cold: loads both into the cache

	// Within TOKEN_RECHECK of the token's last acceptance: answered wholly from the cache, no call.
	resp := h.post(query, vars)
	if calls, hits := cost(t, resp); calls != 0 || hits != 2 || len(resp.Errors) > 0 {
		t.Fatalf("within TOKEN_RECHECK: {%d calls, %d hits, errors %v}, want {0, 2}, none", calls, hits, resp.Errors)
	}

	// TOKEN_RECHECK passed (the mark is gone): one cheap call proves the token first.
	shared.Rechecks{Store: store}.Revoked(context.Background(), shared.TokenKey(bytes.Repeat([]byte{7}, 32), callerToken))
	resp = h.post(query, vars)
	if calls, hits := cost(t, resp); calls != 1 || hits != 2 || len(resp.Errors) > 0 {
		t.Fatalf("after TOKEN_RECHECK: {%d calls, %d hits, errors %v}, want the proof call and 2 hits", calls, hits, resp.Errors)
	}

	// DigitalOcean now refuses the token: the cache no longer answers it.
	rv.revoke(callerToken)
	shared.Rechecks{Store: store}.Revoked(context.Background(), shared.TokenKey(bytes.Repeat([]byte{7}, 32), callerToken))
	resp = h.post(query, vars)
	if len(resp.Errors) == 0 {
		t.Fatalf("a revoked token was answered from the cache: %s", resp.Data)
	}
	for _, e := range resp.Errors {
		if e.Extensions["code"] != codeUnauthenticated {
			t.Errorf("error %q coded %v, want UNAUTHENTICATED", e.Message, e.Extensions["code"])
		}
	}
	if strings.Contains(string(resp.Data), "amount\":\"") {
		t.Fatalf("a revoked token's response still carries cached amounts: %s", resp.Data)
	}
}

// A recheck mark is written only by a request that stored or served an entry
// of the token's cache: only a hit reads it, and a token's entries come from its
// own requests. A token used once for a list (the cold bench's load) leaves none.
func TestARecheckMarkIsWrittenOnlyWhenTheTokensCacheIsTouched(t *testing.T) {
	store := shared.NewLocal(0)
	h := newHarness(t, sandbox.New(sandbox.Options{Seed: 1}), func(c *Config) { c.Shared = newSharedState(t, store, nil) })
	marks := shared.Rechecks{Store: store}
	tokenKey := shared.TokenKey(bytes.Repeat([]byte{7}, 32), callerToken)
	var list struct {
		Invoices struct{ Nodes []struct{ UUID string } }
	}
	h.mustData(`{ volumes(first: 5) { nodes { id } } }`, nil, &struct{}{})
	h.mustData(`{ invoices(first: 3) { nodes { uuid amount } } }`, nil, &list)
	if marks.Fresh(context.Background(), tokenKey) {
		t.Fatal("lists answered by DigitalOcean left a recheck mark: no entry of the cache needs it")
	}
	query := `query($u: ID!) { invoice(uuid: $u) { summary { amount } } }`
	vars := map[string]any{"u": list.Invoices.Nodes[0].UUID}
	h.mustData(query, vars, &struct{}{}) // stores the summary
	if !marks.Fresh(context.Background(), tokenKey) {
		t.Fatal("a request that stored an entry of the accepted token left no recheck mark")
	}
	if calls, hits := cost(t, h.post(query, vars)); calls != 0 || hits != 1 {
		t.Fatalf("the stored summary again: {%d calls, %d hits}, want {0, 1}: the mark spares the proof", calls, hits)
	}
}

func TestRateBudgetRefusesAWholeOperationBeforeAnyCall(t *testing.T) {
	budget := ratebudget.New(ratebudget.Options{Store: shared.NewLocal(0), PerMinute: 30, Reserve: 5})
	st := newSharedState(t, shared.NewLocal(0), budget)
	h := newSandboxHarness(t, func(c *Config) { c.Shared = st })
	e := h.refusal(h.post(queries.Dashboard, nil), codeRateLimited) // 27 + 5 > 30
	if ra, ok := e.Extensions["retryAfter"].(float64); !ok || ra < 1 {
		t.Fatalf("refusal's retryAfter = %v, want ≥ 1 second", e.Extensions["retryAfter"])
	}
	resp := h.post(`{ balance { monthToDateUsage } }`, nil)
	if len(resp.Errors) > 0 {
		t.Fatalf("a single cheap query was refused: %v", resp.Errors)
	}
}

func TestRateBudgetCountsTheWarmCostNotTheEstimate(t *testing.T) {
	budget := ratebudget.New(ratebudget.Options{Store: shared.NewLocal(0), PerMinute: 60, Reserve: 5})
	st := newSharedState(t, shared.NewLocal(0), budget)
	h := newSandboxHarness(t, func(c *Config) { c.Shared = st })
	if resp := h.post(queries.Dashboard, nil); len(resp.Errors) > 0 {
		t.Fatalf("cold dashboard: %v", resp.Errors)
	}
	// 27 spent; each warm dashboard costs 3, so 8 more fit in 60 with 5 kept: 27 + 8×3 = 51 ≤ 55.
	for i := range 8 {
		resp := h.post(queries.Dashboard, nil)
		if len(resp.Errors) > 0 {
			t.Fatalf("warm dashboard %d refused: %v", i+1, resp.Errors)
		}
	}
}

func TestEveryResponseReportsItsCost(t *testing.T) {
	h := newSandboxHarness(t) // no shared state at all
	resp := h.post(`{ balance { monthToDateUsage } volumes(first: 3) { nodes { id } } }`, nil)
	if calls, hits := cost(t, resp); calls != 2 || hits != 0 {
		t.Fatalf("cost {%d, %d}, want {2, 0}", calls, hits)
	}
}

func TestPersistedQueryRegisteredAtOneReplicaRunsAtAnother(t *testing.T) {
	store := shared.NewLocal(0) // what Redis is to real replicas
	one := newSandboxHarness(t, func(c *Config) { c.Shared = newSharedState(t, store, nil) })
	two := newSandboxHarness(t, func(c *Config) { c.Shared = newSharedState(t, store, nil) })
	query := `{ balance { monthToDateUsage } }`
	sum := sha256.Sum256([]byte(query))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	if resp := one.postExtensions("", ext); len(resp.Errors) == 0 || resp.Errors[0].Message != "PersistedQueryNotFound" {
		t.Fatalf("hash alone before registration: %+v, want PersistedQueryNotFound", resp.Errors)
	}
	if resp := one.postExtensions(query, ext); len(resp.Errors) > 0 {
		t.Fatalf("registration at replica one: %v", resp.Errors)
	}
	if resp := two.postExtensions("", ext); len(resp.Errors) > 0 {
		t.Fatalf("hash alone at replica two: %v, want the query registered at replica one", resp.Errors)
	}
}

func TestCacheListTTLAnswersTheListsToo(t *testing.T) {
	st := newSharedState(t, shared.NewLocal(0), nil)
	st.ListTTL = time.Minute
	h := newSandboxHarness(t, func(c *Config) { c.Shared = st })
	cold := h.post(queries.Dashboard, nil)
	h.sandbox.Reset()
	warm := h.post(queries.Dashboard, nil)
	if calls, hits := cost(t, warm); calls != 0 || hits != queries.DashboardCalls {
		t.Fatalf("warm dashboard with CACHE_LIST_TTL: {%d calls, %d hits}, want {0, %d}", calls, hits, queries.DashboardCalls)
	}
	if !bytes.Equal(cold.Data, warm.Data) {
		t.Fatal("the lists from the cache differ from DigitalOcean's")
	}
}

func TestIdempotencyRecordsInRedisNameNeitherTheTokenNorItsSHA256(t *testing.T) {
	srv := redistest.Start(t)
	store, err := shared.Open(context.Background(), shared.Options{RedisURL: srv.URL(), Wait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	stub := newStub().on("POST /v2/volumes", 201, specBody(t, "volume_created.json"))
	h := newHarness(t, stub, func(c *Config) { c.Shared = &SharedState{Store: store, Secret: bytes.Repeat([]byte{9}, 32)} })
	in := map[string]any{"name": "example", "region": "nyc1", "sizeGigabytes": 10, "idempotencyKey": "k-1"}
	if resp := h.post(`mutation($in: CreateVolumeInput!) { createVolume(input: $in) { volume { id } } }`, map[string]any{"in": in}); len(resp.Errors) > 0 {
		t.Fatal(resp.Errors)
	}
	dump, err := srv.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(callerToken))
	old := sha256.Sum256([]byte("oceangraph idempotency\x00" + callerToken)) // the unkeyed hash these keys once were
	plainHashes := []string{hex.EncodeToString(sum[:]), base64.RawURLEncoding.EncodeToString(sum[:]), hex.EncodeToString(old[:16])}
	records := 0
	for key := range dump {
		if strings.HasPrefix(key, "oceangraph:idem:") {
			records++
		}
		if strings.Contains(key, callerToken) {
			t.Errorf("Redis key %q holds the token", key)
		}
		for _, h := range plainHashes {
			if strings.Contains(key, h) {
				t.Errorf("Redis key %q holds an unkeyed SHA-256 of the token (%s)", key, h)
			}
		}
	}
	if want := "oceangraph:idem:" + shared.TokenKey(bytes.Repeat([]byte{9}, 32), callerToken) + ":"; records != 1 || !hasKeyPrefix(dump, want) {
		t.Fatalf("Redis holds %d idempotency records (keys %q), want one under the token's keyed hash %q", records, keysOf(dump), want)
	}
}

func hasKeyPrefix(dump map[string][]byte, prefix string) bool {
	for k := range dump {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func keysOf(dump map[string][]byte) []string {
	keys := make([]string, 0, len(dump))
	for k := range dump {
		keys = append(keys, k)
	}
	return keys
}
