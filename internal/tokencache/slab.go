package tokencache

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"sync"
	"time"
)

// The in-process tier keeps its entries in byte rings: per shard one []byte
// (no pointers, so the GC never scans it) and one map[uint64]uint64 (no
// pointers either) from an entry's key to its record. A full 64 MiB cache is
// then a few dozen objects to the GC instead of ~30,000 nodes, keys and values
// it marks on every cycle. A record is written once at the ring's tail; the
// oldest records are dropped from its head to make room (first in, first out:
// the data is immutable, so age is as good a guess as any), and a rewritten or
// forgotten entry leaves its old bytes until the head passes them.

// memKey is an entry's key in memory: the first bytes of its keyed hash,
// which already names the token and the entry (storageKey).
type memKey [memKeyLen]byte

const memKeyLen = 24

// A record is its header, then its value. The header: the record's length
// (uint32), the key, the expiry (Unix nanoseconds, 0 for none), flags.
const (
	headerLen   = 4 + memKeyLen + 8 + 1
	flagSealed  = 1
	minRingSize = 64 << 10
	maxShards   = 16
	// indexEntryBytes is what an index entry costs at most: a Go map slot of
	// 16 bytes and its control byte, at a load of 7/8 just after the table doubled.
	indexEntryBytes = 40
)

type slab struct {
	shards []ringShard
	mask   uint64
}

type ringShard struct {
	mu    sync.RWMutex
	index map[uint64]uint64 // the key's first 8 bytes → the record's offset
	// ring holds the records from head to tail, wrapping at its end. It
	// grows by doubling up to maxRing and is never shrunk; head stays 0 until
	// the first eviction, which happens only once it is full size.
	ring       []byte
	maxRing    int
	maxIndex   int // entries the index may hold within the shard's share of the budget
	head, used int
	// peakIndex is the most entries the index held: a Go map keeps its table when entries go.
	peakIndex int
}

// newSlab splits budget bytes into shards, fewer for a small budget so that
// a shard can still hold an entry of maxEntry bytes (a cached file) without
// emptying itself for it.
func newSlab(budget int64, maxEntry int) *slab {
	n := maxShards
	for n > 1 && budget/int64(n) < 4*int64(min(maxEntry, 1<<20)) {
		n /= 2
	}
	per := budget / int64(n)
	s := &slab{shards: make([]ringShard, n), mask: uint64(n - 1)}
	for i := range s.shards {
		// An eighth of a shard's share is kept for its index; a ring of
		// whole pages is what the heap gives for it.
		ring := int(per - per/8)
		if ring > 8<<10 {
			ring &^= 8<<10 - 1
		}
		s.shards[i] = ringShard{index: map[uint64]uint64{}, maxRing: ring, maxIndex: int(per / 8 / indexEntryBytes)}
	}
	return s
}

func (k *memKey) hash() uint64 { return binary.LittleEndian.Uint64(k[:8]) }

func (s *slab) shard(h uint64) *ringShard {
	// The low bits pick the index's buckets; the shard takes the top ones.
	return &s.shards[(h>>(64-bits.Len64(s.mask)))&s.mask]
}

// bytes is what the rings and the indexes take of the heap.
func (s *slab) bytes() uint64 {
	var n uint64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += uint64(len(sh.ring) + sh.peakIndex*indexEntryBytes)
		sh.mu.RUnlock()
	}
	return n
}

// view calls f with the live value of key, valid only during the call, and
// reports whether there was one.
func (s *slab) view(k *memKey, f func(value []byte, sealed bool)) bool {
	sh := s.shard(k.hash())
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	value, sealed, ok := sh.lookup(k, time.Now().UnixNano())
	if ok && f != nil {
		f(value, sealed)
	}
	return ok
}

// get is a copy of the value of key.
func (s *slab) get(k *memKey) (value []byte, sealed, ok bool) {
	ok = s.view(k, func(v []byte, sl bool) { value, sealed = append([]byte{}, v...), sl })
	return value, sealed, ok
}

func (s *slab) has(k *memKey) bool { return s.view(k, nil) }

// set stores value under key, replacing what it held; false when the value
// is too big for a shard (it is then not kept, and any old value is dropped).
func (s *slab) set(k *memKey, value []byte, ttl time.Duration, sealed bool) bool {
	sh := s.shard(k.hash())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.put(k, value, expiry(ttl), sealed)
}

// update replaces the value of key with what f makes of it (old is nil when
// there is none, and valid only during the call), atomically with respect to
// every other use of key; f returns false to leave it as it is.
func (s *slab) update(k *memKey, f func(old []byte, found bool) ([]byte, bool)) {
	sh := s.shard(k.hash())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, sealed, found := sh.lookup(k, time.Now().UnixNano())
	if sealed {
		old, found = nil, false
	}
	if value, write := f(old, found); write {
		sh.put(k, value, 0, false)
	}
}

func (s *slab) remove(k *memKey) {
	sh := s.shard(k.hash())
	sh.mu.Lock()
	delete(sh.index, k.hash())
	sh.mu.Unlock()
}

// all calls f with every live value (tests: what a dump of the process shows).
func (s *slab) all(f func(value []byte)) {
	now := time.Now().UnixNano()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, off := range sh.index {
			var k memKey
			sh.read(int(off)+4, k[:])
			if v, _, ok := sh.lookup(&k, now); ok {
				f(bytes.Clone(v))
			}
		}
		sh.mu.RUnlock()
	}
}

func expiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return time.Now().Add(ttl).UnixNano()
}

// lookup is the value of key (its bytes in the ring when they do not wrap,
// else a copy), if it holds one that has not expired.
func (sh *ringShard) lookup(k *memKey, now int64) (value []byte, sealed, ok bool) {
	off, ok := sh.index[k.hash()]
	if !ok {
		return nil, false, false
	}
	var h [headerLen]byte
	sh.read(int(off), h[:])
	if !bytes.Equal(h[4:4+memKeyLen], k[:]) {
		return nil, false, false // another key of the same first 8 bytes
	}
	if exp := int64(binary.LittleEndian.Uint64(h[4+memKeyLen:])); exp != 0 && now >= exp {
		return nil, false, false
	}
	n := int(binary.LittleEndian.Uint32(h[:4])) - headerLen
	start := (int(off) + headerLen) % len(sh.ring)
	if start+n <= len(sh.ring) {
		value = sh.ring[start : start+n : start+n]
	} else {
		value = make([]byte, n)
		sh.read(start, value)
	}
	return value, h[headerLen-1]&flagSealed != 0, true
}

// put writes a record at the tail, growing the ring or dropping the oldest records to make room.
func (sh *ringShard) put(k *memKey, value []byte, expires int64, sealed bool) bool {
	h := k.hash()
	delete(sh.index, h)
	n := headerLen + len(value)
	if n > sh.maxRing {
		return false
	}
	if len(sh.ring)-sh.used < n && len(sh.ring) < sh.maxRing {
		sh.grow(n)
	}
	for len(sh.ring)-sh.used < n || len(sh.index) >= sh.maxIndex && sh.used > 0 {
		sh.dropOldest()
	}
	var head [headerLen]byte
	binary.LittleEndian.PutUint32(head[:4], uint32(n))
	copy(head[4:], k[:])
	binary.LittleEndian.PutUint64(head[4+memKeyLen:], uint64(expires))
	if sealed {
		head[headerLen-1] = flagSealed
	}
	tail := (sh.head + sh.used) % len(sh.ring)
	sh.write(tail, head[:])
	sh.write((tail+headerLen)%len(sh.ring), value)
	sh.used += n
	sh.index[h] = uint64(tail)
	sh.peakIndex = max(sh.peakIndex, len(sh.index))
	return true
}

// grow makes room for n more bytes while the ring is below full size: its
// records move to the start of a larger one.
func (sh *ringShard) grow(n int) {
	size := max(2*len(sh.ring), minRingSize)
	for size < sh.used+n {
		size *= 2
	}
	ring := make([]byte, min(size, sh.maxRing))
	if sh.used > 0 {
		sh.read(sh.head, ring[:sh.used])
	}
	if sh.head != 0 { // the index's evictions moved the head before the ring was full size
		for h, off := range sh.index {
			sh.index[h] = uint64((int(off) - sh.head + len(sh.ring)) % len(sh.ring))
		}
	}
	sh.ring, sh.head = ring, 0
}

// dropOldest drops the record at the head, and its index entry if it is still the live one.
func (sh *ringShard) dropOldest() {
	var h [headerLen]byte
	sh.read(sh.head, h[:])
	n := int(binary.LittleEndian.Uint32(h[:4]))
	k := memKey(h[4 : 4+memKeyLen])
	if off, ok := sh.index[k.hash()]; ok && int(off) == sh.head {
		delete(sh.index, k.hash())
	}
	sh.head = (sh.head + n) % len(sh.ring)
	sh.used -= n
	if sh.used == 0 {
		sh.head = 0
	}
}

// read copies len(p) bytes of the ring from off, wrapping at its end.
func (sh *ringShard) read(off int, p []byte) {
	c := copy(p, sh.ring[off:])
	copy(p[c:], sh.ring)
}

func (sh *ringShard) write(off int, p []byte) {
	c := copy(sh.ring[off:], p)
	copy(sh.ring, p[c:])
}
