package graph

// Across requests and replicas: the per-token cache of what DigitalOcean will
// not change (an issued invoice's summary and item pages; its files are in
// filecache.go), the token recheck
// before answering from it, the per-token rate budget checked before an
// operation runs, and extensions.cost. The libraries are internal/tokencache,
// internal/shared and internal/ratebudget; this file is how a request uses them.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/hashicorp/golang-lru/v2"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oceangraph/oceangraph/internal/ratebudget"
	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/internal/tokencache"
	"github.com/oceangraph/oceangraph/upstream"
)

// SharedState is what a request may use beyond itself. The zero value (or a
// nil *SharedState in Config) keeps nothing across requests.
type SharedState struct {
	// Store holds persisted queries and token-recheck marks (a *shared.Shared:
	// in Redis with REDIS_URL, else in this process).
	Store shared.Store
	// Cache is the immutable-data cache; nil: none.
	Cache *tokencache.Cache
	// Budget refuses, before they run, operations a token cannot afford; nil: no budget.
	Budget *ratebudget.Budget
	// TokenRecheck is how long a token DigitalOcean accepted may be answered
	// from the cache before it is proven again (0: shared.DefaultTokenRecheck).
	TokenRecheck time.Duration
	// ListTTL, when > 0, lets the lists (billing history, invoices, volumes)
	// be answered from the cache for that long: staleness a user accepted.
	ListTTL time.Duration
	// FileMaxBytes is the largest invoice file (CSV or PDF) the cache keeps
	// (filecache.go); a larger one streams from DigitalOcean every time. 0: no file is cached.
	FileMaxBytes int64
	// Secret names tokens in Store (shared.TokenKey: rechecks, budget,
	// idempotency records) when there is no Cache, whose own secret does it
	// otherwise; replicas must share it. Empty: NewHandler makes a random one.
	Secret []byte
}

// costScope is a request's account of what it cost and, with shared state,
// its view of the cache and its proof of the token.
type costScope struct {
	upstreamCalls atomic.Int64
	cacheHits     atomic.Int64

	state    *SharedState
	client   *upstream.Client
	token    string
	cache    *tokencache.Token // nil without a cache or a token
	tokenKey string

	// accepted: DigitalOcean answered this request's token with a 2xx.
	accepted atomic.Bool
	// touched: this request stored or served an entry of the token's cache.
	// Only then is the recheck mark worth writing: a later request reads it
	// only to serve a hit, and a token's entries are stored by its requests
	// (a fresh token a request, as under the cold bench, leaves no mark).
	touched      atomic.Bool
	acceptedOnce sync.Once
	proofOnce    sync.Once
	proofErr     error

	budgetMu    sync.Mutex // guards reservation and reservedCalls
	reservation ratebudget.Reservation
	reserved    bool
	// reservedCalls is what the reservation covers; calls past it are spent as they are made.
	reservedCalls int64
	historyKey    string

	hitsMu   sync.Mutex
	hitNames []string // the cache entries this request was answered from
}

func newCostScope(st *SharedState, client *upstream.Client, token string) *costScope {
	c := &costScope{state: st, client: client, token: token}
	if st == nil || token == "" {
		return c
	}
	if st.Cache != nil {
		c.cache = st.Cache.For(token)
		c.tokenKey = c.cache.Key()
	} else if len(st.Secret) > 0 {
		c.tokenKey = shared.TokenKey(st.Secret, token)
	}
	return c
}

// observe counts an upstream exchange of the request, and notes that
// DigitalOcean accepted the token (markAccepted).
func (c *costScope) observe(ctx context.Context, call upstream.Call) {
	made := c.upstreamCalls.Add(1)
	c.budgetMu.Lock()
	if c.reserved && made > c.reservedCalls {
		c.reservation.Spend(context.WithoutCancel(ctx), int(made-c.reservedCalls))
		c.reservedCalls = made
	}
	c.budgetMu.Unlock()
	if call.Status < 200 || call.Status > 299 {
		return
	}
	c.accepted.Store(true)
	c.markAccepted(ctx)
}

// touch records that the request stored or served an entry of the token's cache.
func (c *costScope) touch(ctx context.Context) {
	c.touched.Store(true)
	c.markAccepted(ctx)
}

// markAccepted remembers, once per request and shared with the other replicas,
// that DigitalOcean accepted the token, as soon as the request both was
// accepted and touched the token's cache (whichever comes second writes it).
func (c *costScope) markAccepted(ctx context.Context) {
	if c.state == nil || c.state.Store == nil || c.tokenKey == "" || !c.accepted.Load() || !c.touched.Load() {
		return
	}
	c.acceptedOnce.Do(func() { c.rechecks().Accepted(context.WithoutCancel(ctx), c.tokenKey) })
}

func (c *costScope) rechecks() shared.Rechecks {
	return shared.Rechecks{Store: c.state.Store, Every: c.state.TokenRecheck}
}

// prove makes sure the token is still good before a cached answer is served:
// DigitalOcean accepted it in this request, or within TokenRecheck on any
// replica, or it accepts it now (one cheap call, once per request).
func (c *costScope) prove(ctx context.Context) error {
	if c.accepted.Load() {
		return nil
	}
	c.proofOnce.Do(func() {
		if c.state.Store != nil && c.rechecks().Fresh(ctx, c.tokenKey) {
			return
		}
		// Not through callUpstream: this runs inside a call that already holds one of
		// the request's slots, and waiting for a second could deadlock.
		_, err := c.client.GetBalance(upstream.WithToken(context.WithoutCancel(ctx), c.token))
		var ue *upstream.Error
		if errors.As(err, &ue) && (ue.Status == 401 || ue.Status == 403) {
			if c.state.Store != nil {
				c.rechecks().Revoked(ctx, c.tokenKey)
			}
			c.proofErr = err
		}
		// Any other failure (DigitalOcean slow or down) does not withhold what
		// the token read before: only a refusal of the token does.
	})
	return c.proofErr
}

// issuedSet is the cache's set of the token's issued invoices (seen in its
// invoice list or billing history), whose data will not change: one entry per
// token, written only when a list shows an invoice it lacks.
const issuedSet = "issued"

// maxIssued bounds the set: years of monthly invoices, at 37 bytes each.
const maxIssued = 1024

// markIssued records invoices the token's invoice list or billing history shows as issued.
func markIssued(ctx context.Context, uuids ...string) {
	c := scopeFrom(ctx).cost
	if c == nil || c.cache == nil {
		return
	}
	issued := uuids[:0:0]
	for _, u := range uuids {
		if u != "" && u != upstream.PreviewUUID {
			issued = append(issued, u)
		}
	}
	if len(issued) > 0 {
		c.cache.AddMembers(ctx, issuedSet, issued, maxIssued)
	}
}

// cachedIfIssued answers an issued invoice's immutable data (name says which)
// from the cache, loading it on a miss; anything else goes to load directly.
func cachedIfIssued[T any](ctx context.Context, uuid, name string, load func(context.Context) (T, error)) (T, error) {
	c := scopeFrom(ctx).cost
	if c == nil || c.cache == nil {
		return load(ctx)
	}
	if !c.issued(ctx, uuid) {
		return load(ctx)
	}
	return cached(ctx, name, 0, load)
}

// issued reports whether the token's invoice list or billing history showed uuid (markIssued).
func (c *costScope) issued(ctx context.Context, uuid string) bool {
	return c.cache.HasMember(ctx, issuedSet, uuid)
}

// hit counts an answer from the cache entry name in extensions.cost, and
// remembers it for the rate budget's estimate of this operation's next run.
func (c *costScope) hit(name string) {
	c.cacheHits.Add(1)
	c.hitsMu.Lock()
	c.hitNames = append(c.hitNames, name)
	c.hitsMu.Unlock()
}

// cachedList answers a list page from the cache when CACHE_LIST_TTL allows it.
func cachedList[T any](ctx context.Context, name string, load func(context.Context) (T, error)) (T, error) {
	c := scopeFrom(ctx).cost
	if c == nil || c.cache == nil || c.state.ListTTL <= 0 {
		return load(ctx)
	}
	return cached(ctx, "list/"+name, c.state.ListTTL, load)
}

// cached is the token's cache entry name (ttl 0: kept until evicted), loaded
// on a miss. A hit is served only once the token is proven (prove).
func cached[T any](ctx context.Context, name string, ttl time.Duration, load func(context.Context) (T, error)) (T, error) {
	var zero T
	c := scopeFrom(ctx).cost
	if scopeFrom(ctx).naive() {
		return load(ctx)
	}
	var fresh T
	data, src, err := c.cache.Load(ctx, name, ttl, func(ctx context.Context) ([]byte, error) {
		v, err := load(ctx)
		if err != nil {
			return nil, err
		}
		fresh = v
		// encoding/json's output on json/v2's engine: what the cache adds to a cold call.
		return jsonv1.Marshal(v)
	})
	if err != nil {
		return zero, err
	}
	if src == tokencache.Upstream {
		c.touch(ctx)
		return fresh, nil
	}
	if err := c.prove(ctx); err != nil {
		return zero, err
	}
	c.touch(ctx)
	c.hit(name)
	var v T
	if err := upstream.DecodeJSON(data, &v); err != nil { // read as DigitalOcean's own answer is
		return zero, fmt.Errorf("cached %s: %w", name, err)
	}
	return v, nil
}

// costExtension adds extensions.cost { upstreamCalls cacheHits } to every
// response, and, with a rate budget, refuses before it runs an operation the
// token cannot afford, settling the budget with what it really cost.
type costExtension struct {
	// history remembers, per token and operation, the cache entries its last
	// run on this replica was answered from: an operation's calls are its
	// estimate less those still in this replica's memory (a miss there would
	// cost a call, so only what is certain is subtracted).
	history *lru.Cache[string, []string]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
	graphql.ResponseInterceptor
} = costExtension{}

func newCostExtension() costExtension {
	h, _ := lru.New[string, []string](10_000)
	return costExtension{history: h}
}

func (costExtension) ExtensionName() string                   { return "Cost" }
func (costExtension) Validate(graphql.ExecutableSchema) error { return nil }

func (e costExtension) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	s := scopeFrom(ctx)
	c := s.cost
	if c == nil || c.state == nil || c.state.Budget == nil || c.tokenKey == "" || s.authErr != nil {
		return nil
	}
	stats, _ := opCtx.Stats.GetExtension(budgetStatsKey).(*budgetStats)
	if stats == nil || stats.Estimated == 0 || stats.Estimated > stats.Budget {
		return nil
	}
	c.historyKey = c.tokenKey + ":" + operationHash(opCtx)
	names, _ := e.history.Get(c.historyKey)
	hits := 0
	for _, name := range names {
		if c.cache.InMemory(name) {
			hits++
		}
	}
	need := max(stats.Estimated-hits, 1)
	r, ok, retry := c.state.Budget.Reserve(ctx, c.tokenKey, need)
	if !ok {
		seconds := int(math.Ceil(retry.Seconds()))
		return limitError(codeRateLimited,
			fmt.Sprintf("this operation needs about %d calls to DigitalOcean and the token's rate limit cannot afford them now; retry in %d s", need, seconds),
			map[string]any{"retryAfter": seconds})
	}
	c.budgetMu.Lock()
	c.reservation, c.reserved, c.reservedCalls = r, true, int64(need)
	c.budgetMu.Unlock()
	return nil
}

// costValue is extensions.cost: a struct rather than a map, written as the
// map was (its keys in this order).
type costValue struct {
	CacheHits     int64 `json:"cacheHits"`
	UpstreamCalls int64 `json:"upstreamCalls"`
}

func (e costExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	s := scopeFrom(ctx)
	c := s.cost
	if resp == nil || c == nil {
		return resp
	}
	calls, hits := c.upstreamCalls.Load(), c.cacheHits.Load()
	if resp.Extensions == nil {
		resp.Extensions = map[string]any{}
	}
	resp.Extensions["cost"] = &costValue{CacheHits: hits, UpstreamCalls: calls}
	c.budgetMu.Lock()
	reserved := c.reserved
	c.reserved = false
	c.budgetMu.Unlock()
	if reserved {
		bg := context.WithoutCancel(ctx)
		c.reservation.Settle(bg, int(calls))
		c.hitsMu.Lock()
		if len(c.hitNames) > 0 { // a cold run teaches nothing: fresh tokens leave no entry
			e.history.Add(c.historyKey, c.hitNames)
		}
		c.hitsMu.Unlock()
		if rl, ok := s.newestRateLimit(); ok {
			c.state.Budget.Observe(bg, c.tokenKey, ratebudget.Observation{Remaining: rl.Remaining, Reset: rl.Reset})
		}
	}
	return resp
}

// operationHash names an operation with its variables, for the history.
func operationHash(opCtx *graphql.OperationContext) string {
	h := sha256.New()
	h.Write([]byte(opCtx.RawQuery))
	h.Write([]byte{0})
	h.Write([]byte(opCtx.OperationName))
	vars, _ := json.Marshal(opCtx.Variables)
	h.Write(vars)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
