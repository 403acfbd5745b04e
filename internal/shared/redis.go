package shared

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisWait bounds every Redis call: past it the caller goes on without the shared tier.
const DefaultRedisWait = 50 * time.Millisecond

// keyPrefix namespaces every key, so one Redis can serve other programs too.
const keyPrefix = "oceangraph:"

// Redis is the Store in Redis (go-redis v9). Every call is bounded by its wait.
type Redis struct {
	client *redis.Client
	wait   time.Duration
}

// NewRedis connects lazily to the Redis at url (redis://host:port/db, rediss:// for TLS);
// wait bounds each call (0: DefaultRedisWait).
func NewRedis(url string, wait time.Duration) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if wait <= 0 {
		wait = DefaultRedisWait
	}
	// One bounded try: a retry would only spend the caller's wait twice.
	opts.MaxRetries = -1
	opts.DialTimeout = max(opts.DialTimeout, wait) // the context bounds the call; this bounds a dial behind it
	opts.DialTimeout = min(opts.DialTimeout, time.Second)
	opts.ContextTimeoutEnabled = true
	// A new connection costs one round trip, not three: RESP2 needs no HELLO, and no CLIENT SETINFO.
	opts.Protocol, opts.DisableIdentity = 2, true
	// Connections kept ready, so a burst after a quiet spell does not wait on dials.
	opts.MinIdleConns = max(opts.MinIdleConns, 4)
	quietDriver.Do(func() { redis.SetLogger(silent{}) })
	return &Redis{client: redis.NewClient(opts), wait: wait}, nil
}

// Close closes the connections.
func (r *Redis) Close() error { return r.client.Close() }

// Ping checks that Redis answers within a second (it is for start-up, not requests).
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return r.client.Ping(ctx).Err()
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.wait)
	defer cancel()
	v, err := r.client.Get(ctx, keyPrefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return v, err
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, r.wait)
	defer cancel()
	return r.client.Set(ctx, keyPrefix+key, value, ttl).Err()
}

// SetNX implements Store.
func (r *Redis) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.wait)
	defer cancel()
	err := r.client.SetArgs(ctx, keyPrefix+key, value, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, r.wait)
	defer cancel()
	return r.client.Del(ctx, keyPrefix+key).Err()
}

// countScript keeps a tally in one hash: a field per Unix second plus "total".
// It adds, drops the buckets outside the window and sums the rest in one atomic step,
// so two replicas counting at once never both see room that only one of them has.
var countScript = redis.NewScript(`
local n, now, win, idle = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if n ~= 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[2], n)
  redis.call('HINCRBY', KEYS[1], 'total', n)
end
local all = redis.call('HGETALL', KEYS[1])
local sum, total, oldest = 0, 0, 0
for i = 1, #all, 2 do
  local f, v = all[i], tonumber(all[i+1])
  if f == 'total' then
    total = v
  else
    local s = tonumber(f)
    if s <= now - win then
      redis.call('HDEL', KEYS[1], f)
    else
      sum = sum + v
      if v > 0 and (oldest == 0 or s < oldest) then oldest = s end
    end
  end
end
if #all > 0 then redis.call('EXPIRE', KEYS[1], idle) end
return {sum, total, oldest}
`)

// Count implements Store.
func (r *Redis) Count(ctx context.Context, key string, at time.Time, n int64, window time.Duration) (Tally, error) {
	ctx, cancel := context.WithTimeout(ctx, r.wait)
	defer cancel()
	res, err := countScript.Run(ctx, r.client, []string{keyPrefix + key},
		n, at.Unix(), int64(window/time.Second), int64(tallyIdle/time.Second)).Int64Slice()
	if err != nil {
		return Tally{}, err
	}
	if len(res) != 3 {
		return Tally{}, fmt.Errorf("count script answered %d values", len(res))
	}
	t := Tally{InWindow: res[0], Total: res[1]}
	if res[2] != 0 {
		t.Oldest = time.Unix(res[2], 0)
	}
	return t, nil
}

// quietDriver silences go-redis's own logger (a process-wide setting): it
// prints every failed dial to stderr, and Shared's rate-limited line says it once.
var quietDriver sync.Once

type silent struct{}

func (silent) Printf(context.Context, string, ...any) {}

// describe names a Redis error for the log without its arguments.
func describe(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within the wait"
	}
	return err.Error()
}
