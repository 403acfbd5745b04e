// Package tokencache is the cross-request cache of what DigitalOcean will not
// change (an issued invoice's item pages, summary and files), per token: an
// in-process tier bounded in bytes, and the shared tier (Redis) behind it.
//
// Nothing in it names a token or holds readable billing data outside this
// process: keys are keyed hashes of the token and the entry's name, and values
// in the shared tier are sealed with a key derived from the token and the
// server secret, so one token can never read another's entry.
package tokencache

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
	"golang.org/x/sync/singleflight"

	"github.com/oceangraph/oceangraph/internal/shared"
)

// Defaults of Options.
const (
	DefaultMaxBytes      = 64 << 20
	DefaultMaxEntryBytes = 4 << 20
	DefaultSharedTTL     = 24 * time.Hour
)

// Options configure New.
type Options struct {
	// Secret is the server secret behind every key and seal (at least 32 bytes).
	Secret []byte
	// MaxBytes bounds the in-process tier (0: DefaultMaxBytes).
	MaxBytes int64
	// MaxEntryBytes is the largest value cached; a larger one is returned but not kept (0: DefaultMaxEntryBytes).
	MaxEntryBytes int
	// Shared is the second tier; nil: in-process only. It must not be
	// in-process itself: that would keep every entry twice in this process's
	// memory, the second copy outside MaxBytes (shared.Shared.Remote gives the right one).
	Shared shared.Store
	// SharedTTL is how long the shared tier keeps an entry with no TTL of its own (0: DefaultSharedTTL).
	SharedTTL time.Duration
	// Registerer gets the cache's metrics; nil: not exported.
	Registerer prometheus.Registerer
}

// Cache is the per-token cache. It is safe for concurrent use.
type Cache struct {
	secret        []byte
	mem           *slab
	maxEntryBytes int
	shared        shared.Store
	sharedTTL     time.Duration
	flights       singleflight.Group
	lookups       *prometheus.CounterVec
	// macs are HMAC-SHA256 states keyed with secret, reused: a request names
	// many entries, and a fresh HMAC is five allocations.
	macs sync.Pool
	// seals memoises tokens' seals by token key: deriving one (HKDF, then
	// XChaCha20-Poly1305's set-up) is the dearest part of a token's view, and
	// a token comes back request after request.
	seals *lru.Cache[string, cipher.AEAD]
	// seen remembers recent tokens for admission (slab.go): whose request
	// comes back is no longer a one-off.
	seen seenTokens
}

// Source says where Load found a value.
type Source int

const (
	// Upstream: the loader ran (a miss).
	Upstream Source = iota
	// Memory: the in-process tier had it.
	Memory
	// Shared: the shared tier had it (another replica, or before a restart, loaded it).
	Shared
	// Joined: another request of the same token was loading it; this one waited for that load.
	Joined
)

func (s Source) String() string {
	return [...]string{"upstream", "memory", "shared", "joined"}[s]
}

// Hit reports whether the value cost this request no upstream call.
func (s Source) Hit() bool { return s != Upstream }

// New makes a cache.
func New(o Options) (*Cache, error) {
	if len(o.Secret) < 32 {
		return nil, fmt.Errorf("cache secret: %d bytes, need at least 32", len(o.Secret))
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntryBytes <= 0 {
		o.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if o.SharedTTL <= 0 {
		o.SharedTTL = DefaultSharedTTL
	}
	c := &Cache{
		secret:        o.Secret,
		maxEntryBytes: o.MaxEntryBytes,
		shared:        o.Shared,
		sharedTTL:     o.SharedTTL,
		seen:          newSeenTokens(o.MaxBytes),
		seals:         must(lru.New[string, cipher.AEAD](sealMemo)),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oceangraph_cache_lookups_total",
			Help: "Lookups of the immutable-data cache, by where the value came from (upstream is a miss).",
		}, []string{"source"}),
	}
	c.mem = newAdmittingSlab(o.MaxBytes-int64(c.seen.bytes()), o.MaxEntryBytes)
	c.macs.New = func() any { return &keyedHash{mac: hmac.New(sha256.New, c.secret)} }
	if o.Registerer != nil {
		bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "oceangraph_cache_bytes",
			Help: "Bytes the in-process tier of the immutable-data cache holds (bounded by CACHE_BYTES).",
		}, func() float64 { return float64(c.Bytes()) })
		for _, m := range []prometheus.Collector{c.lookups, bytes} {
			if err := o.Registerer.Register(m); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// sealMemo bounds the memo of tokens' seals: the tokens of the last minutes,
// at about 200 bytes each.
const sealMemo = 4096

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Bytes is what the in-process tier takes of the Go heap (its rings and
// indexes, all pointer-free), as its byte budget counts it.
func (c *Cache) Bytes() uint64 { return c.mem.bytes() + c.seen.bytes() }

// Token is the cache as one token sees it.
type Token struct {
	c     *Cache
	token string
	key   string
	// returning: an earlier request of this token was seen (Cache.seen), so
	// its entries are admitted to the main rings.
	returning bool

	sealOnce sync.Once
	aead     cipher.AEAD

	// setMemo is the key of the last set named (HasMember, AddMembers): a
	// request asks the "issued" set once per invoice it shows.
	setMu   sync.Mutex
	setName string
	setKey  entryKey
}

// For is a token's view of the cache. Call it once per request. Only the
// token's keyed hash is made here; the seal is derived when first used
// (the shared tier, a sealed file), and memoised per token.
func (c *Cache) For(token string) *Token {
	m := c.macs.Get().(*keyedHash)
	key := shared.TokenKeyWith(m.mac, token)
	c.macs.Put(m)
	return &Token{c: c, token: token, key: key, returning: c.seen.visit(key)}
}

// sealer is the token's XChaCha20-Poly1305, derived (HKDF-SHA256 of the server
// secret and the token) on first use, or taken from the memo.
func (t *Token) sealer() cipher.AEAD {
	t.sealOnce.Do(func() {
		if a, ok := t.c.seals.Get(t.key); ok {
			t.aead = a
			return
		}
		seal := make([]byte, chacha20poly1305.KeySize)
		kdf := hkdf.New(sha256.New, t.c.secret, nil, []byte("oceangraph cache seal v1\x00"+t.token))
		if _, err := io.ReadFull(kdf, seal); err != nil {
			panic("hkdf: " + err.Error()) // cannot happen for 32 bytes of SHA-256 HKDF
		}
		a, err := chacha20poly1305.NewX(seal)
		if err != nil {
			panic("xchacha20poly1305: " + err.Error()) // cannot happen with a key of KeySize
		}
		t.c.seals.Add(t.key, a)
		t.aead = a
	})
	return t.aead
}

// Key is the token's keyed hash, the name shared state knows it by.
func (t *Token) Key() string { return t.key }

// entryKey is an entry's name hidden behind the server secret (the name holds
// invoice UUIDs): one keyed hash of the token key and the name, whose first
// bytes name it in memory and whose text names it in the shared tier.
type entryKey struct {
	mem memKey
	sum [sha256.Size]byte
}

func (t *Token) keyOf(name string) entryKey {
	m := t.c.macs.Get().(*keyedHash)
	m.mac.Reset()
	m.buf = append(append(append(append(m.buf[:0], "oceangraph cache entry\x00"...), t.key...), 0), name...)
	m.mac.Write(m.buf)
	var k entryKey
	k.sum = [sha256.Size]byte(m.mac.Sum(m.sum[:0]))
	t.c.macs.Put(m)
	k.mem = memKey(k.sum[:memKeyLen])
	return k
}

// keyedHash is a pooled HMAC state and buffers for its input and sum: bytes
// handed to the interface's methods from the stack would escape to the heap.
type keyedHash struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// setKeyOf is keyOf for a set's name, memoised for the request.
func (t *Token) setKeyOf(name string) entryKey {
	t.setMu.Lock()
	defer t.setMu.Unlock()
	if t.setName != name || name == "" {
		t.setName, t.setKey = name, t.keyOf(name)
	}
	return t.setKey
}

// sharedKey is the entry's key in the shared tier, to which its seal is bound.
func (t *Token) sharedKey(k *entryKey) string {
	const prefix = len("cache:") + 1
	out := make([]byte, 0, prefix+len(t.key)+base64.RawURLEncoding.EncodedLen(18))
	out = append(append(append(out, "cache:"...), t.key...), ':')
	out = base64.RawURLEncoding.AppendEncode(out, k.sum[:18])
	return string(out)
}

// Get returns a cached value without loading it: from memory, else from the
// shared tier (which then warms memory). ok is false on a miss. Unlike Load,
// it is not counted in the lookup metrics: it serves checks, not answers.
func (t *Token) Get(ctx context.Context, name string) (data []byte, src Source, ok bool) {
	k := t.keyOf(name)
	return t.lookup(ctx, &k)
}

// GetCounted is Get counted in the lookup metrics as an answer, a miss as upstream.
func (t *Token) GetCounted(ctx context.Context, name string) ([]byte, Source, bool) {
	data, src, ok := t.Get(ctx, name)
	t.c.lookups.WithLabelValues(src.String()).Inc()
	return data, src, ok
}

// InMemory reports whether this replica's memory holds name: a hit that costs nothing, not even Redis.
func (t *Token) InMemory(name string) bool {
	k := t.keyOf(name)
	return t.c.mem.has(&k.mem, t.returning)
}

// Put stores data under name in both tiers, unless memory already holds the same bytes.
func (t *Token) Put(ctx context.Context, name string, data []byte, ttl time.Duration) {
	k := t.keyOf(name)
	same := false
	t.c.mem.view(&k.mem, t.returning, func(v []byte, sealed bool) { same = !sealed && bytes.Equal(v, data) })
	if same {
		return
	}
	t.store(ctx, &k, data, ttl, false)
}

// PutSealed stores data like Put, but sealed in memory too (each read opens
// it): for whole documents, such as an invoice's PDF, that a dump of the
// process should not show. A replica that reads it from the shared tier keeps it sealed as well.
func (t *Token) PutSealed(ctx context.Context, name string, data []byte, ttl time.Duration) {
	k := t.keyOf(name)
	t.store(ctx, &k, data, ttl, true)
}

// Load returns the value of name, running load on a miss and caching its
// answer (errors are not cached). ttl 0 keeps the entry until evicted (the
// shared tier: for SharedTTL). Concurrent Loads of one name by one token on
// this replica run load once; load gets the first caller's context without its
// cancellation, so one client leaving does not fail the others.
func (t *Token) Load(ctx context.Context, name string, ttl time.Duration, load func(context.Context) ([]byte, error)) ([]byte, Source, error) {
	k := t.keyOf(name)
	if data, ok := t.fromMemory(&k); ok {
		t.c.lookups.WithLabelValues(Memory.String()).Inc()
		return data, Memory, nil
	}
	type result struct {
		data   []byte
		src    Source
		leader *byte // the caller whose function ran
	}
	me := new(byte)
	ch := t.c.flights.DoChan(string(k.mem[:]), func() (any, error) {
		if data, src, ok := t.lookup(ctx, &k); ok {
			return result{data, src, me}, nil
		}
		data, err := load(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		t.store(context.WithoutCancel(ctx), &k, data, ttl, false)
		return result{data, Upstream, me}, nil
	})
	select {
	case <-ctx.Done():
		return nil, Upstream, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, Upstream, r.Err
		}
		res := r.Val.(result)
		if res.leader != me {
			res.src = Joined // another request's flight answered: no call of this one's
		}
		t.c.lookups.WithLabelValues(res.src.String()).Inc()
		return res.data, res.src, nil
	}
}

// Forget drops name from both tiers (for entries with a TTL that a write made stale).
func (t *Token) Forget(ctx context.Context, name string) {
	k := t.keyOf(name)
	t.c.mem.remove(&k.mem)
	if t.c.shared != nil {
		_ = t.c.shared.Delete(ctx, t.sharedKey(&k))
	}
}

// fromMemory is the in-process tier's value of k (a copy), opened if it is kept sealed.
func (t *Token) fromMemory(k *entryKey) ([]byte, bool) {
	data, sealed, ok := t.c.mem.get(&k.mem, t.returning)
	if !ok || !sealed {
		return data, ok
	}
	data, _, _, err := t.open(t.sharedKey(k), data)
	return data, err == nil
}

func (t *Token) lookup(ctx context.Context, k *entryKey) ([]byte, Source, bool) {
	if data, ok := t.fromMemory(k); ok {
		return data, Memory, true
	}
	if t.c.shared == nil {
		return nil, Upstream, false
	}
	key := t.sharedKey(k)
	sealed, err := t.c.shared.Get(ctx, key)
	if err != nil {
		return nil, Upstream, false
	}
	data, ttl, keepSealed, err := t.open(key, sealed)
	if err != nil {
		return nil, Upstream, false // another token's, tampered or stale-format: a miss, never an error
	}
	// Another replica or an earlier process stored it: the token is back.
	if keepSealed {
		t.c.mem.set(&k.mem, sealed, ttl, true, true)
	} else {
		t.c.mem.set(&k.mem, data, ttl, false, true)
	}
	return data, Shared, true
}

// store keeps data in memory (a copy: the caller's slice is not held) and the shared tier.
func (t *Token) store(ctx context.Context, k *entryKey, data []byte, ttl time.Duration, keepSealed bool) {
	if len(data) > t.c.maxEntryBytes {
		return
	}
	var key string
	var sealed []byte
	if keepSealed || t.c.shared != nil {
		key = t.sharedKey(k)
		sealed = t.seal(key, data, ttl, keepSealed)
	}
	if keepSealed {
		t.c.mem.set(&k.mem, sealed, ttl, true, t.returning)
	} else {
		t.c.mem.set(&k.mem, data, ttl, false, t.returning)
	}
	if t.c.shared == nil {
		return
	}
	sharedTTL := t.c.sharedTTL
	if ttl > 0 {
		sharedTTL = ttl
	}
	_ = t.c.shared.Set(ctx, key, sealed, sharedTTL)
}

// keptSealed is the top bit of a seal's expiry word (Unix nanoseconds never
// reach it): the entry stays sealed in memory too (PutSealed).
const keptSealed = 1 << 63

// seal is nonce | XChaCha20-Poly1305(expiry | data), bound to its key so that
// an entry moved to another key does not open. The expiry (Unix nanoseconds,
// 0 for none) lets a replica that reads it keep it no longer than its writer meant.
func (t *Token) seal(key string, data []byte, ttl time.Duration, keepSealed bool) []byte {
	var expires uint64
	if ttl > 0 {
		expires = uint64(time.Now().Add(ttl).UnixNano())
	}
	if keepSealed {
		expires |= keptSealed
	}
	plain := make([]byte, 8, 8+len(data))
	binary.BigEndian.PutUint64(plain, expires)
	plain = append(plain, data...)
	out := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plain)+chacha20poly1305.Overhead)
	if _, err := rand.Read(out); err != nil {
		panic("crypto/rand: " + err.Error()) // crypto/rand does not fail on supported platforms
	}
	return t.sealer().Seal(out, out, plain, []byte(key))
}

var errSeal = errors.New("cache entry does not open")

func (t *Token) open(key string, sealed []byte) (data []byte, ttl time.Duration, keepSealed bool, err error) {
	if len(sealed) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead+8 {
		return nil, 0, false, errSeal
	}
	nonce, box := sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:]
	plain, err := t.sealer().Open(nil, nonce, box, []byte(key))
	if err != nil {
		return nil, 0, false, errSeal
	}
	word := binary.BigEndian.Uint64(plain)
	if expires := int64(word &^ keptSealed); expires != 0 {
		if ttl = time.Until(time.Unix(0, expires)); ttl <= 0 {
			return nil, 0, false, errSeal // expired in between
		}
	}
	return plain[8:], ttl, word&keptSealed != 0, nil
}

// A set is one entry holding names (newline-separated, newest last): many
// marks of a token for the price of one entry, one key and, with a shared
// tier, one write (the invoice list's "issued" marks).

// AddMembers adds members to the token's set name, keeping at most limit (the
// oldest go first). It writes only when the set grows: memory at once, and
// the shared tier with the merged set (merged with the shared tier's when
// memory had none). Two replicas adding at once may lose one's members there:
// a lost member is a miss, never a wrong answer.
func (t *Token) AddMembers(ctx context.Context, name string, members []string, limit int) {
	k := t.setKeyOf(name)
	all := false
	inMemory := t.c.mem.view(&k.mem, t.returning, func(v []byte, sealed bool) { all = !sealed && hasAll(v, members) })
	if all {
		return
	}
	var base []byte
	if !inMemory && t.c.shared != nil {
		if sealed, err := t.c.shared.Get(ctx, t.sharedKey(&k)); err == nil {
			base, _, _, _ = t.open(t.sharedKey(&k), sealed)
		}
	}
	merged := t.mergeIntoMemory(&k, base, members, limit, t.returning || base != nil)
	if merged != nil && t.c.shared != nil && len(merged) <= t.c.maxEntryBytes {
		key := t.sharedKey(&k)
		_ = t.c.shared.Set(ctx, key, t.seal(key, merged, 0, false), t.c.sharedTTL)
	}
}

// HasMember reports whether the token's set name holds member: in memory, else
// in the shared tier (another replica may have added it), which then merges into memory.
func (t *Token) HasMember(ctx context.Context, name, member string) bool {
	k := t.setKeyOf(name)
	found := false
	t.c.mem.view(&k.mem, t.returning, func(v []byte, sealed bool) { found = !sealed && hasMember(v, member) })
	if found {
		return true
	}
	if t.c.shared == nil {
		return false
	}
	key := t.sharedKey(&k)
	sealed, err := t.c.shared.Get(ctx, key)
	if err != nil {
		return false
	}
	data, _, _, err := t.open(key, sealed)
	if err != nil || !hasMember(data, member) {
		return false
	}
	t.mergeIntoMemory(&k, data, nil, 0, true) // the next AddMembers trims it to its limit
	return true
}

// mergeIntoMemory makes memory's set k the union of itself, base and
// members, and returns it; nil when memory already held them all. admit is slab.set's.
func (t *Token) mergeIntoMemory(k *entryKey, base []byte, members []string, limit int, admit bool) []byte {
	var merged []byte
	t.c.mem.update(&k.mem, admit, func(cur []byte, found bool) ([]byte, bool) {
		grown, grew := addMembers(cur, base, members, limit)
		if grew {
			merged = grown
		}
		return grown, grew
	})
	return merged
}

// addMembers is cur with the members of base and the given ones it lacks, at
// most limit in all (the oldest dropped). It never changes cur, which readers may hold.
func addMembers(cur, base []byte, members []string, limit int) ([]byte, bool) {
	out := cur
	grew := false
	add := func(m string) {
		if m == "" || strings.IndexByte(m, '\n') >= 0 || hasMember(out, m) {
			return
		}
		if !grew {
			out = append(make([]byte, 0, len(cur)+len(base)+len(members)*40), cur...)
			grew = true
		}
		if len(out) > 0 {
			out = append(out, '\n')
		}
		out = append(out, m...)
	}
	for rest := base; len(rest) > 0; {
		m, tail, _ := bytes.Cut(rest, []byte{'\n'})
		add(string(m))
		rest = tail
	}
	for _, m := range members {
		add(m)
	}
	for grew && limit > 0 && setLimit(out) > limit {
		_, out, _ = bytes.Cut(out, []byte{'\n'})
	}
	return out, grew
}

// setLimit is the number of members of a set.
func setLimit(set []byte) int {
	if len(set) == 0 {
		return 0
	}
	return bytes.Count(set, []byte{'\n'}) + 1
}

func hasMember(set []byte, member string) bool {
	for rest := set; len(rest) > 0; {
		m, tail, _ := bytes.Cut(rest, []byte{'\n'})
		if string(m) == member {
			return true
		}
		rest = tail
	}
	return false
}

func hasAll(set []byte, members []string) bool {
	for _, m := range members {
		if !hasMember(set, m) {
			return false
		}
	}
	return true
}
