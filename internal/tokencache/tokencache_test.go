package tokencache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oceangraph/oceangraph/internal/redistest"
	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/internal/tokencache"
)

var secret = bytes.Repeat([]byte("s"), 32)

func newCache(t testing.TB, o tokencache.Options) *tokencache.Cache {
	t.Helper()
	if o.Secret == nil {
		o.Secret = secret
	}
	c, err := tokencache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sharedOn opens a shared store on a real redis-server.
func sharedOn(t testing.TB, srv *redistest.Server) *shared.Shared {
	t.Helper()
	s, err := shared.Open(context.Background(), shared.Options{RedisURL: srv.URL(), Wait: 5 * time.Second, RetryEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// loader counts its calls and answers value.
type loader struct {
	calls atomic.Int32
	value string
}

func (l *loader) load(context.Context) ([]byte, error) {
	l.calls.Add(1)
	return []byte(l.value), nil
}

func TestTwoTokensOneCacheNoCrossing(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, tokencache.Options{Shared: sharedOn(t, srv)})
	ctx := context.Background()
	name := "invoice/fdabb512-6faf-443c-ba2e-665452332a9e/summary"
	a, b := c.For("dop_v1_alice"), c.For("dop_v1_bob")
	la, lb := &loader{value: `{"amount":"12.34"}`}, &loader{value: `{"amount":"99.99"}`}

	if got, src, _ := a.Load(ctx, name, 0, la.load); string(got) != la.value || src != tokencache.Upstream {
		t.Fatalf("alice's first load = %s from %v", got, src)
	}
	if _, _, ok := b.Get(ctx, name); ok {
		t.Fatal("bob found an entry under a name only alice loaded")
	}
	if got, src, _ := b.Load(ctx, name, 0, lb.load); string(got) != lb.value || src != tokencache.Upstream {
		t.Fatalf("bob's load of the same name = %s from %v; want his own value from upstream", got, src)
	}
	if got, src, _ := a.Load(ctx, name, 0, la.load); string(got) != la.value || src != tokencache.Memory {
		t.Fatalf("alice again = %s from %v; want her own value from memory", got, src)
	}
	if la.calls.Load() != 1 || lb.calls.Load() != 1 {
		t.Fatalf("loader calls alice %d bob %d, want 1 each", la.calls.Load(), lb.calls.Load())
	}

	// A second replica (cold memory) reads each token's own entry from Redis.
	c2 := newCache(t, tokencache.Options{Shared: sharedOn(t, srv)})
	if got, src, ok := c2.For("dop_v1_bob").Get(ctx, name); !ok || string(got) != lb.value || src != tokencache.Shared {
		t.Fatalf("bob at replica 2 = %s from %v (ok %v); want his value from the shared tier", got, src, ok)
	}

	// Even with alice's sealed entry copied over bob's key in Redis, bob cannot read it.
	rc := srv.Client()
	keys, err := rc.Keys(ctx, "oceangraph:cache:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("Redis cache keys: %v, %v; want 2", keys, err)
	}
	var aliceKey, bobKey string
	for _, k := range keys {
		if strings.Contains(k, a.Key()) {
			aliceKey = k
		} else {
			bobKey = k
		}
	}
	sealed, _ := rc.Get(ctx, aliceKey).Bytes()
	rc.Set(ctx, bobKey, sealed, 0)
	c3 := newCache(t, tokencache.Options{Shared: sharedOn(t, srv)})
	if got, _, ok := c3.For("dop_v1_bob").Get(ctx, name); ok {
		t.Fatalf("bob read %s from alice's sealed entry moved under his key", got)
	}
}

func TestRedisDumpHoldsNoPlaintextAmountUUIDOrToken(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, tokencache.Options{Shared: sharedOn(t, srv)})
	ctx := context.Background()
	token := "dop_v1_0123456789abcdef0123456789abcdef"
	uuid := "fdabb512-6faf-443c-ba2e-665452332a9e"
	amount := "2718.28"
	tk := c.For(token)
	for _, name := range []string{"invoice/" + uuid + "/summary", "invoice/" + uuid + "/items?page=1&per_page=5", "invoice/" + uuid + "/csv"} {
		value := fmt.Sprintf(`{"invoice_uuid":%q,"amount":%q,"name":%q}`, uuid, amount, name)
		if _, _, err := tk.Load(ctx, name, 0, func(context.Context) ([]byte, error) { return []byte(value), nil }); err != nil {
			t.Fatal(err)
		}
	}
	dump, err := srv.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dump) != 3 {
		t.Fatalf("Redis holds %d keys, want the 3 entries", len(dump))
	}
	for k, v := range dump {
		for _, secret := range []string{token, uuid, amount, "2718", "summary", "items"} {
			if strings.Contains(k, secret) || bytes.Contains(v, []byte(secret)) {
				t.Errorf("Redis key %q or its value shows %q in plaintext", k, secret)
			}
		}
	}
}

func TestEvictionKeepsTheByteBudget(t *testing.T) {
	reg := prometheus.NewRegistry()
	const budget = 1 << 20
	c := newCache(t, tokencache.Options{MaxBytes: budget, Registerer: reg})
	ctx := context.Background()
	c.For("tok")       // the token's first request: its entries would stay in probation
	tk := c.For("tok") // a returning token's fill the main rings
	page := bytes.Repeat([]byte("x"), 10<<10)
	for i := range 1000 { // 10 MB of entries through a 1 MiB cache
		if _, _, err := tk.Load(ctx, fmt.Sprint("page-", i), 0, func(context.Context) ([]byte, error) { return page, nil }); err != nil {
			t.Fatal(err)
		}
	}
	held := metricValue(t, reg, "oceangraph_cache_bytes")
	if held > budget || held < budget/2 {
		t.Fatalf("in-process tier holds %v bytes after 10 MB of loads, want within (budget/2, budget=%d]", held, budget)
	}
	var kept int
	for i := range 1000 {
		if _, _, ok := tk.Get(ctx, fmt.Sprint("page-", i)); ok {
			kept++
		}
	}
	if kept == 0 || kept > budget/len(page) {
		t.Fatalf("%d of 1000 10 KiB entries kept under a 1 MiB budget, want 1..%d", kept, budget/len(page))
	}
}

func TestLargerThanMaxEntryIsReturnedNotKept(t *testing.T) {
	c := newCache(t, tokencache.Options{MaxEntryBytes: 100})
	ctx := context.Background()
	l := &loader{value: strings.Repeat("p", 101)}
	for range 2 {
		if got, _, _ := c.For("tok").Load(ctx, "invoice/x/pdf", 0, l.load); len(got) != 101 {
			t.Fatalf("got %d bytes, want the 101 loaded", len(got))
		}
	}
	if l.calls.Load() != 2 {
		t.Fatalf("loader ran %d times for an entry over MaxEntryBytes, want 2 (not cached)", l.calls.Load())
	}
}

func TestConcurrentLoadsOfOneTokenAreMadeOnce(t *testing.T) {
	c := newCache(t, tokencache.Options{})
	ctx := context.Background()
	release := make(chan struct{})
	var calls atomic.Int32
	slow := func(context.Context) ([]byte, error) {
		calls.Add(1)
		<-release
		return []byte("summary"), nil
	}
	var wg sync.WaitGroup
	sources := make([]tokencache.Source, 10)
	started := make(chan struct{}, 10)
	for i := range 10 { // ten tabs, ten requests, ten views of the cache
		wg.Go(func() {
			started <- struct{}{}
			got, src, err := c.For("dop_v1_tabs").Load(ctx, "invoice/u/summary", 0, slow)
			if err != nil || string(got) != "summary" {
				t.Errorf("tab %d: %q, %v", i, got, err)
			}
			sources[i] = src
		})
	}
	for range 10 {
		<-started
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("10 concurrent loads of one token made %d upstream calls, want 1", calls.Load())
	}
	misses := 0
	for _, s := range sources {
		if !s.Hit() {
			misses++
		}
	}
	if misses != 1 {
		t.Fatalf("sources %v: want exactly one Upstream and the rest hits (Joined or Memory)", sources)
	}
}

func TestConcurrentLoadsOfTwoTokensAreNotCoalesced(t *testing.T) {
	c := newCache(t, tokencache.Options{})
	var calls atomic.Int32
	var wg sync.WaitGroup
	for _, tok := range []string{"a", "b"} {
		wg.Go(func() {
			_, _, _ = c.For(tok).Load(context.Background(), "same", 0, func(context.Context) ([]byte, error) {
				calls.Add(1)
				return []byte(tok), nil
			})
		})
	}
	wg.Wait()
	if calls.Load() != 2 {
		t.Fatalf("two tokens' loads made %d calls, want 2", calls.Load())
	}
}

func TestLeaderLeavingDoesNotFailTheOthers(t *testing.T) {
	c := newCache(t, tokencache.Options{})
	leaderCtx, cancel := context.WithCancel(context.Background())
	inLoad, release := make(chan struct{}), make(chan struct{})
	load := func(ctx context.Context) ([]byte, error) {
		close(inLoad)
		<-release
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return []byte("v"), nil
	}
	leaderDone := make(chan error)
	go func() {
		_, _, err := c.For("t").Load(leaderCtx, "n", 0, load)
		leaderDone <- err
	}()
	<-inLoad
	followerDone := make(chan []byte)
	go func() {
		got, _, _ := c.For("t").Load(context.Background(), "n", 0, load)
		followerDone <- got
	}()
	cancel()
	if err := <-leaderDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v, want its own cancellation", err)
	}
	close(release)
	if got := <-followerDone; string(got) != "v" {
		t.Fatalf("follower got %q after the leader left, want the loaded value", got)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c := newCache(t, tokencache.Options{})
	calls := 0
	load := func(context.Context) ([]byte, error) {
		calls++
		if calls == 1 {
			return nil, errors.New("upstream 503")
		}
		return []byte("ok"), nil
	}
	if _, _, err := c.For("t").Load(context.Background(), "n", 0, load); err == nil {
		t.Fatal("first load's error was swallowed")
	}
	if got, src, err := c.For("t").Load(context.Background(), "n", 0, load); err != nil || string(got) != "ok" || src != tokencache.Upstream {
		t.Fatalf("second load = %q from %v, %v; want a fresh upstream answer", got, src, err)
	}
}

func TestTTLEntriesExpire(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, tokencache.Options{Shared: sharedOn(t, srv)})
	ctx := context.Background()
	l := &loader{value: "list"}
	if _, _, err := c.For("t").Load(ctx, "volumes?page=1", time.Second, l.load); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, ok := c.For("t").Get(ctx, "volumes?page=1"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an entry with a 1 s TTL is still served after 5 s")
		}
		time.Sleep(50 * time.Millisecond) // polling the entry's expiry
	}
	if n, _ := srv.Client().DBSize(ctx).Result(); n != 0 {
		t.Fatalf("Redis still holds %d keys after the TTL", n)
	}
}

func TestRedisOutageFallsBackAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, tokencache.Options{Shared: sharedOn(t, srv)})
	ctx := context.Background()
	srv.Stop()
	l := &loader{value: "summary"}
	if got, _, err := c.For("t").Load(ctx, "during-outage", 0, l.load); err != nil || string(got) != "summary" {
		t.Fatalf("load with Redis down: %q, %v; want the upstream value", got, err)
	}
	if _, src, _ := c.For("t").Load(ctx, "during-outage", 0, l.load); src != tokencache.Memory {
		t.Fatalf("second load with Redis down from %v, want memory", src)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		if _, _, err := c.For("t").Load(ctx, fmt.Sprint("after-", i), 0, l.load); err != nil {
			t.Fatal(err)
		}
		if n, _ := srv.Client().DBSize(ctx).Result(); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no entry reached Redis within 5 s of its restart")
		}
		time.Sleep(10 * time.Millisecond) // polling the shared tier's own retry
	}
}

func TestSecretTooShortIsRefused(t *testing.T) {
	if _, err := tokencache.New(tokencache.Options{Secret: []byte("short")}); err == nil {
		t.Fatal("a 5-byte secret was accepted")
	}
}

// metricValue is the value of a metric family's one series.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestPutIsFoundAndInMemoryTellsTheTiersApart(t *testing.T) {
	srv := redistest.Start(t)
	store := sharedOn(t, srv)
	ctx := context.Background()
	one := newCache(t, tokencache.Options{Shared: store}).For("tok")
	one.Put(ctx, "issued/u1", []byte{1}, 0)
	if !one.InMemory("issued/u1") {
		t.Fatal("a Put entry is not in this replica's memory")
	}
	two := newCache(t, tokencache.Options{Shared: store}).For("tok")
	if two.InMemory("issued/u1") {
		t.Fatal("another replica's memory holds an entry it never read")
	}
	if got, src, ok := two.Get(ctx, "issued/u1"); !ok || src != tokencache.Shared || !bytes.Equal(got, []byte{1}) {
		t.Fatalf("another replica's Get = %v from %v (ok %v), want the Put value from the shared tier", got, src, ok)
	}
	if !two.InMemory("issued/u1") {
		t.Fatal("a shared-tier hit did not warm this replica's memory")
	}
}

func TestSealedEntriesShowNoPlaintextInMemoryOrRedisAndStaySealedAtAnotherReplica(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, tokencache.Options{Shared: sharedOn(t, srv)})
	ctx := context.Background()
	name := "file/fdabb512-6faf-443c-ba2e-665452332a9e.pdf"
	pdf := []byte("%PDF-1.4 Invoice for Sammy Shark, 101 Shark Row, total 2718.28 USD")
	c.For("dop_v1_alice").PutSealed(ctx, name, pdf, 0)
	c.For("dop_v1_alice").Put(ctx, "summary", []byte(`{"amount":"1.00"}`), 0) // an ordinary entry, in the clear in memory

	dump, err := srv.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	replica2 := newCache(t, tokencache.Options{Shared: sharedOn(t, srv)})
	if got, src, ok := replica2.For("dop_v1_alice").Get(ctx, name); !ok || src != tokencache.Shared || !bytes.Equal(got, pdf) {
		t.Fatalf("replica 2 read %q from %v (ok %v); want the file from the shared tier", got, src, ok)
	}
	for where, values := range map[string][][]byte{
		"Redis": func() (v [][]byte) {
			for _, b := range dump {
				v = append(v, b)
			}
			return v
		}(),
		"replica 1's memory": c.MemoryDump(),
		"replica 2's memory": replica2.MemoryDump(),
	} {
		for _, v := range values {
			for _, plain := range []string{"%PDF", "Sammy Shark", "2718.28"} {
				if bytes.Contains(v, []byte(plain)) {
					t.Errorf("%s shows %q of a sealed entry in plaintext", where, plain)
				}
			}
		}
	}
	if got, src, ok := c.For("dop_v1_alice").Get(ctx, name); !ok || src != tokencache.Memory || !bytes.Equal(got, pdf) {
		t.Fatalf("replica 1 read %q from %v (ok %v); want the file, opened, from memory", got, src, ok)
	}
	if _, _, ok := c.For("dop_v1_bob").Get(ctx, name); ok {
		t.Fatal("another token found the sealed entry")
	}
	if !c.For("dop_v1_alice").InMemory(name) {
		t.Fatal("InMemory does not see a sealed entry")
	}
}

func TestASetIsOneEntryReachesAnotherReplicaAndKeepsItsLimit(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	one := newCache(t, tokencache.Options{Shared: sharedOn(t, srv)})
	one.For("tok").AddMembers(ctx, "issued", []string{"u1", "u2", "u3"}, 4)
	one.For("tok").AddMembers(ctx, "issued", []string{"u2", "u3"}, 4) // nothing new: no write
	if n, _ := srv.Client().DBSize(ctx).Result(); n != 1 {
		t.Fatalf("Redis holds %d keys after marking 3 members, want 1 (one entry per set)", n)
	}
	two := newCache(t, tokencache.Options{Shared: sharedOn(t, srv)})
	for _, m := range []string{"u1", "u2", "u3"} {
		if !two.For("tok").HasMember(ctx, "issued", m) {
			t.Fatalf("another replica does not see member %s", m)
		}
	}
	if two.For("tok").HasMember(ctx, "issued", "u4") || two.For("other").HasMember(ctx, "issued", "u1") {
		t.Fatal("a member never added, or another token's, was found")
	}
	two.For("tok").AddMembers(ctx, "issued", []string{"u4", "u5"}, 4)
	if two.For("tok").HasMember(ctx, "issued", "u1") {
		t.Fatal("the oldest member outlived the set's limit of 4")
	}
	for _, m := range []string{"u2", "u3", "u4", "u5"} {
		if !two.For("tok").HasMember(ctx, "issued", m) {
			t.Fatalf("member %s lost after the set reached its limit", m)
		}
	}
}

func TestASetInMemoryOnlyIsFoundAndNotCrossed(t *testing.T) {
	c := newCache(t, tokencache.Options{})
	ctx := context.Background()
	c.For("alice").AddMembers(ctx, "issued", []string{"a1", "a2"}, 10)
	if !c.For("alice").HasMember(ctx, "issued", "a2") || c.For("bob").HasMember(ctx, "issued", "a2") {
		t.Fatal("a member is not found by its token, or is found by another")
	}
	if c.For("alice").HasMember(ctx, "issued", "a") || c.For("alice").HasMember(ctx, "issued", "a1\na2") {
		t.Fatal("a prefix or a joined pair of members counts as a member")
	}
}

// TestOneRequestTokensHoldOnlyProbation: a flood of tokens seen once each (the
// cold bench: a fresh token a request) offers the cache four times its budget
// and holds at most a tenth of it (the probation rings), while a token whose
// second request comes finds its entries and keeps them through the next flood.
func TestOneRequestTokensHoldOnlyProbation(t *testing.T) {
	reg := prometheus.NewRegistry()
	const budget = 4 << 20
	c := newCache(t, tokencache.Options{MaxBytes: budget, Registerer: reg})
	ctx := context.Background()
	page := bytes.Repeat([]byte("x"), 700) // an issued set or a summary
	l := &loader{value: string(page)}
	flood := func(from int) {
		for i := from; i < from+8000; i++ { // 8,000 tokens × 3 entries × 700 B: 4× the budget
			tk := c.For(fmt.Sprint("one-off-", i))
			for _, name := range []string{"issued", "summary/a", "items/a"} {
				if _, _, err := tk.Load(ctx, name, 0, l.load); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	user := c.For("user")
	for _, name := range []string{"issued", "summary/a", "items/a"} {
		if _, src, _ := user.Load(ctx, name, 0, l.load); src != tokencache.Upstream {
			t.Fatalf("the user's first %s: %v, want upstream", name, src)
		}
	}
	flood(0)
	if held := metricValue(t, reg, "oceangraph_cache_bytes"); held > budget/10 {
		t.Fatalf("one-request tokens hold %v bytes of a %d budget, want at most a tenth", held, budget)
	}
	last := c.For("one-off-7999") // its second request, just after its first
	if _, src, _ := last.Load(ctx, "summary/a", 0, l.load); src != tokencache.Memory {
		t.Fatalf("a token's second request right after its first: %v, want memory", src)
	}
	flood(8000)
	again := c.For("one-off-7999") // its third, after another flood: promoted by the second's hit
	if _, src, _ := again.Load(ctx, "summary/a", 0, l.load); src != tokencache.Memory {
		t.Fatalf("a returning token's entry after another flood: %v, want memory (kept in the main rings)", src)
	}
	if _, src, _ := c.For("user").Load(ctx, "items/a", 0, l.load); src != tokencache.Upstream {
		// The user's first request's entries were in probation; the flood churned them out.
		t.Fatalf("an entry seen by one request only, after two floods of 4× the budget: %v, want upstream", src)
	}
}
