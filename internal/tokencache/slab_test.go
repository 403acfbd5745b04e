package tokencache

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestRingServesTheLastValueOrNothing writes, rewrites and forgets entries of
// random sizes through rings far smaller than what goes through them
// (growing, wrapping, evicting), and checks every read against a model: a
// value read is the last one written under its key, never another's or a
// torn one, and the newest entries are still there.
func TestRingServesTheLastValueOrNothing(t *testing.T) {
	for _, c := range []struct {
		budget         int64
		maxEntry, keys int
		maxValue       int
		admission      bool
	}{
		{96 << 10, 16 << 10, 300, 3000, false}, // one shard: the ring wraps
		{1 << 20, 16 << 10, 300, 3000, false},  // 16 shards
		{1 << 20, 1 << 20, 6000, 60, false},    // small entries: the index's share evicts before the ring is full size, then it grows
		// The same with probation rings: entries set with and without admit, reads that promote and reads that do not.
		{96 << 10, 16 << 10, 300, 3000, true},
		{1 << 20, 16 << 10, 300, 3000, true},
		{1 << 20, 1 << 20, 6000, 60, true},
	} {
		budget := c.budget
		t.Run(fmt.Sprint(budget, "/", c.keys, "/admission=", c.admission), func(t *testing.T) {
			s := newSlab(budget, c.maxEntry)
			if c.admission {
				s = newAdmittingSlab(budget, c.maxEntry)
			}
			r := rand.New(rand.NewPCG(1, uint64(budget)))
			model := map[memKey][]byte{}
			keys := make([]memKey, c.keys)
			for i := range keys {
				for j := range keys[i] {
					keys[i][j] = byte(r.IntN(256))
				}
			}
			keys[1] = keys[0] // a key sharing the first 8 bytes of another
			keys[1][20]++
			var last memKey
			for op := range 40_000 {
				k := keys[r.IntN(len(keys))]
				switch r.IntN(10) {
				case 0:
					s.remove(&k)
					delete(model, k)
				case 1, 2, 3, 4:
					v := bytes.Repeat([]byte{byte(op)}, r.IntN(c.maxValue))
					v = fmt.Appendf(v, "#%d", op)
					if s.set(&k, v, 0, false, r.IntN(2) == 0) {
						model[k] = v
						last = k
					} else {
						delete(model, k)
					}
				default:
					got, _, ok := s.get(&k, r.IntN(2) == 0)
					if want, kept := model[k]; ok && (!kept || !bytes.Equal(got, want)) {
						t.Fatalf("op %d: read %d bytes ending %q, want %d bytes ending %q (kept %v)", op, len(got), tail(got), len(want), tail(want), kept)
					}
				}
				if _, ok := model[last]; ok && !s.has(&last, false) {
					t.Fatalf("op %d: the entry written last is gone", op)
				}
				if b := s.bytes(); b > uint64(budget) {
					t.Fatalf("op %d: %d bytes held, budget %d", op, b, budget)
				}
			}
		})
	}
}

func tail(b []byte) []byte { return b[max(0, len(b)-8):] }

func TestEntriesExpireInMemory(t *testing.T) {
	c, err := New(Options{Secret: bytes.Repeat([]byte("s"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	tk := c.For("t")
	tk.Put(context.Background(), "list", []byte("page"), time.Second) // long enough to be found at once on a loaded machine
	if !tk.InMemory("list") {
		t.Fatal("an entry with a TTL is not found at once")
	}
	deadline := time.Now().Add(10 * time.Second)
	for tk.InMemory("list") {
		if time.Now().After(deadline) {
			t.Fatal("an entry with a 1 s TTL is still served after 10 s")
		}
		time.Sleep(10 * time.Millisecond) // polling the entry's expiry
	}
}

// TestConcurrentAddMembersLoseNone: the set's read, merge and write are one step.
func TestConcurrentAddMembersLoseNone(t *testing.T) {
	c, err := New(Options{Secret: bytes.Repeat([]byte("s"), 32), MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				c.For("tok").AddMembers(context.Background(), "issued", []string{fmt.Sprint(g, "-", i)}, 1000)
			}
		})
	}
	wg.Wait()
	for g := range 8 {
		for i := range 50 {
			if !c.For("tok").HasMember(context.Background(), "issued", fmt.Sprint(g, "-", i)) {
				t.Fatalf("member %d-%d lost by concurrent adds", g, i)
			}
		}
	}
}

func TestRingGrowsAfterTheIndexEvicted(t *testing.T) {
	s := newSlab(1<<20, 1<<20)
	sh := &s.shards[0]
	var k memKey
	value := func(i int) []byte { return fmt.Appendf(bytes.Repeat([]byte{'.'}, i/10_000*300), "value %d", i) }
	for i := range 10_000 { // small entries: the index's share fills first
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		s.set(&k, value(i), 0, false, true)
	}
	before := len(sh.main.buf)
	if sh.main.head == 0 || before == sh.main.max {
		t.Fatalf("head %d, ring %d of %d: the index did not evict before the ring reached full size", sh.main.head, before, sh.main.max)
	}
	for i := 10_000; i < 12_000; i++ { // larger ones: the ring grows with its head moved
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		s.set(&k, value(i), 0, false, true)
	}
	if len(sh.main.buf) == before {
		t.Fatal("the ring did not grow")
	}
	found := 0
	for i := range 12_000 {
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		if got, _, ok := s.get(&k, false); ok {
			found++
			if !bytes.Equal(got, value(i)) {
				t.Fatalf("entry %d reads %q", i, tail(got))
			}
		}
	}
	if found < 1000 {
		t.Fatalf("%d entries found after growing, want the newest", found)
	}
}
