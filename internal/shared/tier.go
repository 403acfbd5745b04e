package shared

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure Open.
type Options struct {
	// RedisURL is the shared tier; empty: this process only.
	RedisURL string
	// Wait bounds each Redis call (0: DefaultRedisWait).
	Wait time.Duration
	// LocalBytes bounds the in-process store (0: DefaultLocalBytes).
	LocalBytes int64
	// RetryEvery is how often, while Redis is down, one call tries it again (0: one second).
	RetryEvery time.Duration
	// Registerer gets the shared tier's metrics; nil: they are not exported.
	Registerer prometheus.Registerer
	// Logger says when the shared tier goes and comes back; nil: slog.Default().
	Logger *slog.Logger
}

// Shared is the Store the server uses: Redis when configured and answering,
// else the in-process store, so that Redis trouble costs sharing, never a request.
type Shared struct {
	local      *Local
	redis      *Redis
	retryEvery time.Duration
	log        *slog.Logger

	up      atomic.Bool
	nextTry atomic.Int64 // Unix nanoseconds before which a down tier is not tried

	upGauge  prometheus.Gauge
	errors   *prometheus.CounterVec
	bypassed *prometheus.CounterVec

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int
}

// logEvery rate-limits the "Redis is failing" log line.
const logEvery = 10 * time.Second

// Open makes the shared store. An unreachable Redis is no error: the store
// starts in-process and switches over when Redis answers.
func Open(ctx context.Context, o Options) (*Shared, error) {
	s := &Shared{
		local:      NewLocal(o.LocalBytes),
		retryEvery: o.RetryEvery,
		log:        o.Logger,
		upGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oceangraph_shared_tier_up",
			Help: "1 while the shared tier (Redis) answers, 0 while requests go on without it; absent without REDIS_URL.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oceangraph_shared_tier_errors_total",
			Help: "Redis calls that failed or outlasted their wait, by operation.",
		}, []string{"op"}),
		bypassed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oceangraph_shared_tier_bypassed_total",
			Help: "Shared-state operations served in-process because Redis was down, by operation.",
		}, []string{"op"}),
	}
	if s.retryEvery <= 0 {
		s.retryEvery = time.Second
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if o.RedisURL == "" {
		return s, nil
	}
	r, err := NewRedis(o.RedisURL, o.Wait)
	if err != nil {
		return nil, err
	}
	s.redis = r
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.upGauge, s.errors, s.bypassed} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	s.up.Store(true)
	s.upGauge.Set(1)
	if err := r.Ping(ctx); err != nil {
		s.failed(ctx, "ping", err)
	}
	return s, nil
}

// Close closes the Redis connections.
func (s *Shared) Close() error {
	if s.redis == nil {
		return nil
	}
	return s.redis.Close()
}

// TallyBytes is the heap of the in-process tallies (Local.TallyBytes).
func (s *Shared) TallyBytes() uint64 { return s.local.TallyBytes() }

// Up reports whether the shared tier is in use: Redis configured and answering.
func (s *Shared) Up() bool { return s.redis != nil && s.up.Load() }

// Get implements Store.
func (s *Shared) Get(ctx context.Context, key string) ([]byte, error) {
	st := s.pick("get")
	v, err := st.Get(ctx, key)
	if st != Store(s.local) && s.failed(ctx, "get", err) {
		return s.local.Get(ctx, key)
	}
	return v, err
}

// Set implements Store.
func (s *Shared) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	st := s.pick("set")
	err := st.Set(ctx, key, value, ttl)
	if st != Store(s.local) && s.failed(ctx, "set", err) {
		return s.local.Set(ctx, key, value, ttl)
	}
	return err
}

// SetNX implements Store.
func (s *Shared) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	st := s.pick("setnx")
	ok, err := st.SetNX(ctx, key, value, ttl)
	if st != Store(s.local) && s.failed(ctx, "setnx", err) {
		return s.local.SetNX(ctx, key, value, ttl)
	}
	return ok, err
}

// Delete implements Store.
func (s *Shared) Delete(ctx context.Context, key string) error {
	st := s.pick("delete")
	err := st.Delete(ctx, key)
	if st != Store(s.local) && s.failed(ctx, "delete", err) {
		return s.local.Delete(ctx, key)
	}
	return err
}

// Count implements Store.
func (s *Shared) Count(ctx context.Context, key string, at time.Time, n int64, window time.Duration) (Tally, error) {
	st := s.pick("count")
	t, err := st.Count(ctx, key, at, n, window)
	if st != Store(s.local) && s.failed(ctx, "count", err) {
		return s.local.Count(ctx, key, at, n, window)
	}
	return t, err
}

// pick is Redis while it is up; while it is down, the in-process store, except
// for one call per retryEvery that tries Redis again.
func (s *Shared) pick(op string) Store {
	if s.redis == nil {
		return s.local
	}
	if s.up.Load() {
		return s.redis
	}
	next, now := s.nextTry.Load(), time.Now().UnixNano()
	if now >= next && s.nextTry.CompareAndSwap(next, now+int64(s.retryEvery)) {
		return s.redis
	}
	s.bypassed.WithLabelValues(op).Inc()
	return s.local
}

// failed records the outcome of a Redis call and reports whether the caller
// should fall back to the in-process store. A caller's own cancellation is not
// Redis's failure.
func (s *Shared) failed(ctx context.Context, op string, err error) bool {
	if err == nil || errors.Is(err, ErrNotFound) {
		if !s.up.Swap(true) {
			s.upGauge.Set(1)
			s.log.Info("shared tier: Redis answers again; sharing resumed")
		}
		return false
	}
	if ctx.Err() != nil {
		return false
	}
	s.errors.WithLabelValues(op).Inc()
	if s.up.Swap(false) {
		s.nextTry.Store(time.Now().Add(s.retryEvery).UnixNano())
		s.upGauge.Set(0)
	}
	s.logFailure(op, err)
	return true
}

func (s *Shared) logFailure(op string, err error) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if time.Since(s.lastLog) < logEvery {
		s.suppressed++
		return
	}
	s.log.Warn("shared tier: Redis failed; going on in-process without sharing",
		"op", op, "error", describe(err), "similar_failures_not_logged", s.suppressed)
	s.lastLog, s.suppressed = time.Now(), 0
}

// Remote is the shared tier alone, for state that is only worth keeping if
// other replicas see it (the immutable-data cache's second tier): nil without
// Redis; while Redis is down, reads miss and writes are dropped, where the
// Store itself would fall back to this process's memory and so keep a second,
// uncounted copy of what the cache already holds there.
func (s *Shared) Remote() Store {
	if s.redis == nil {
		return nil
	}
	return remote{s}
}

type remote struct{ s *Shared }

// use is Redis when the shared tier would try it now, else nil.
func (r remote) use(op string) Store {
	if st := r.s.pick(op); st != Store(r.s.local) {
		return st
	}
	return nil
}

func (r remote) Get(ctx context.Context, key string) ([]byte, error) {
	st := r.use("get")
	if st == nil {
		return nil, ErrNotFound
	}
	v, err := st.Get(ctx, key)
	r.s.failed(ctx, "get", err)
	return v, err
}

func (r remote) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	st := r.use("set")
	if st == nil {
		return nil
	}
	err := st.Set(ctx, key, value, ttl)
	r.s.failed(ctx, "set", err)
	return err
}

func (r remote) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	st := r.use("setnx")
	if st == nil {
		return false, nil
	}
	ok, err := st.SetNX(ctx, key, value, ttl)
	r.s.failed(ctx, "setnx", err)
	return ok, err
}

func (r remote) Delete(ctx context.Context, key string) error {
	st := r.use("delete")
	if st == nil {
		return nil
	}
	err := st.Delete(ctx, key)
	r.s.failed(ctx, "delete", err)
	return err
}

func (r remote) Count(ctx context.Context, key string, at time.Time, n int64, window time.Duration) (Tally, error) {
	st := r.use("count")
	if st == nil {
		return Tally{}, nil
	}
	t, err := st.Count(ctx, key, at, n, window)
	r.s.failed(ctx, "count", err)
	return t, err
}
