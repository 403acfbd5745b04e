package server

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/hkdf"

	"github.com/oceangraph/oceangraph/graph"
	"github.com/oceangraph/oceangraph/internal/ratebudget"
	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/internal/tokencache"
)

// SharedConfig is the settings of what outlives a request and what replicas share.
type SharedConfig struct {
	RedisURL   string
	RedisWait  time.Duration // bound on each Redis call
	CacheBytes int64         // 0: no cache across requests
	// CacheFileMaxBytes is the largest invoice file cached; 0: none.
	CacheFileMaxBytes int64
	CacheListTTL      time.Duration
	CacheSecret       []byte
	TokenRecheck      time.Duration
	// GCPercent, when > 0, is the GOGC the process runs with (tuneGC in
	// server.go), to be applied to the heap beside the cache only (gc.go);
	// 0: the GC is left alone (tests, or GOGC set by the operator).
	GCPercent int
	// RatePerMinute is the per-token budget; 0: none.
	RatePerMinute int
	RateReserve   int
}

// shared reads the shared-state settings. The cache secret defaults to one
// derived from the file-link key, so the one secret replicas must share
// already (FILE_LINK_KEY) serves both.
func (p *parser) shared(sandbox bool, fileLinkKey []byte) SharedConfig {
	c := SharedConfig{
		RedisURL:          strings.TrimSpace(*p.raw["redis-url"]),
		RedisWait:         p.durationUpTo("redis-wait", maxRedisWait),
		CacheBytes:        int64(p.int("cache-bytes", 0, 1<<40)),
		CacheFileMaxBytes: int64(p.int("cache-file-max-bytes", 0, maxCacheFileBytes)),
		CacheListTTL:      p.durationOrZero("cache-list-ttl"),
		TokenRecheck:      p.duration("token-recheck"),
		RateReserve:       p.int("rate-reserve", 0, 250),
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		p.fail("redis-url", "want a redis:// or rediss:// URL")
	}
	switch v := *p.raw["rate-limit-per-minute"]; {
	case v == "" && sandbox:
		c.RatePerMinute = 0 // the built-in sandbox sets no limit unless asked to
	case v == "":
		c.RatePerMinute = ratebudget.DefaultPerMinute
	default:
		c.RatePerMinute = p.int("rate-limit-per-minute", 0, 1_000_000)
	}
	if *p.raw["cache-secret"] != "" {
		c.CacheSecret = p.key("cache-secret")
	} else if len(fileLinkKey) > 0 {
		c.CacheSecret = make([]byte, 32)
		_, _ = io.ReadFull(hkdf.New(sha256.New, fileLinkKey, nil, []byte("oceangraph cache secret v1")), c.CacheSecret)
	}
	return c
}

// maxCacheFileBytes bounds CACHE_FILE_MAX_BYTES: a cached file is held whole,
// in memory and in one Redis value that another replica reads within REDIS_WAIT.
const maxCacheFileBytes = 64 << 20

// maxRedisWait bounds REDIS_WAIT: every request may wait that long per Redis
// call before going on without it, so a larger bound is an outage by another name.
const maxRedisWait = 5 * time.Second

func (p *parser) durationOrZero(name string) time.Duration {
	d, err := time.ParseDuration(*p.raw[name])
	if err != nil || d < 0 {
		p.fail(name, "want a duration such as 0s, 30s or 5m")
	}
	return d
}

// openSharedState makes the request-outliving state graph uses; the func closes it.
// An unreachable Redis is no error: requests go on in-process until it answers.
func openSharedState(c SharedConfig, logger *slog.Logger, reg prometheus.Registerer) (*graph.SharedState, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	store, err := shared.Open(ctx, shared.Options{RedisURL: c.RedisURL, Wait: c.RedisWait, Registerer: reg, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	if c.RedisURL != "" {
		logger.Info("shared state in Redis", "redis", redactedURL(c.RedisURL), "up", store.Up())
	}
	st := &graph.SharedState{Store: store, TokenRecheck: c.TokenRecheck, ListTTL: c.CacheListTTL, Secret: c.CacheSecret, FileMaxBytes: c.CacheFileMaxBytes}
	if c.CacheBytes > 0 {
		st.Cache, err = tokencache.New(tokencache.Options{
			// Its second tier is Redis alone: without it (or while it is down) the
			// cache's own memory is the one in-process copy.
			Secret: c.CacheSecret, MaxBytes: c.CacheBytes, Shared: store.Remote(), Registerer: reg,
			// A cached file is its bytes and a header of a few hundred bytes (its name and type).
			MaxEntryBytes: max(tokencache.DefaultMaxEntryBytes, int(c.CacheFileMaxBytes)+4096),
		})
		if err != nil {
			store.Close()
			return nil, nil, err
		}
	}
	if c.RatePerMinute > 0 {
		st.Budget = ratebudget.New(ratebudget.Options{Store: store, PerMinute: c.RatePerMinute, Reserve: c.RateReserve})
	}
	stopGC := func() {}
	if c.GCPercent > 0 && st.Cache != nil {
		// Often enough to follow a filling cache between collections (a GOGC
		// set for a smaller cache lets the heap overshoot); a step costs a microsecond.
		// The in-process rate tallies are counted with the cache: bounded
		// (20,000 tokens), long-lived and pointer-free, they cost the GC no marking.
		stopGC = adaptGC(c.GCPercent, func() uint64 { return st.Cache.Bytes() + store.TallyBytes() }, 100*time.Millisecond)
	}
	return st, func() { stopGC(); store.Close() }, nil
}

// redactedURL is a Redis URL fit for a log: no password.
func redactedURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(unparsable)"
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "[redacted]@" + rest[at+1:]
	}
	return scheme + "://" + rest
}
