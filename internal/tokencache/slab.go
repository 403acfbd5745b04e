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
//
// Admission (S3-FIFO's small queue, by token): an entry stored by a token's
// first request goes to a shard's probation ring, a sixteenth of it; a later
// request of the same token (Cache.For remembers recent tokens) that finds it
// there moves it to the main ring, and stores its own entries there. A flood
// of one-request tokens then holds at most the probation rings, and churns
// them instead of the main ones, while a user's second request still hits.

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
	// probationShare is the probation ring's part of a shard's rings (S3-FIFO's small queue is a tenth).
	probationShare = 16
	// inProbation marks an index entry whose record is in the probation ring.
	inProbation = 1 << 63
	// indexEntryBytes is what an index entry costs at most: a Go map slot of
	// 16 bytes and its control byte, at a load of 7/8 just after the table doubled.
	indexEntryBytes = 40
)

type slab struct {
	shards []ringShard
	mask   uint64
}

type ringShard struct {
	mu sync.RWMutex
	// index: the key's first 8 bytes → the record's offset in main, or in
	// probation with the inProbation bit.
	index     map[uint64]uint64
	main      ring
	probation ring // empty (max 0) without admission: every entry goes to main
	maxIndex  int  // entries the index may hold within the shard's share of the budget
	// peakIndex is the most entries the index held: a Go map keeps its table when entries go.
	peakIndex int
}

// ring holds records from head to tail, wrapping at its end. It grows by
// doubling up to max and is never shrunk; head stays 0 until the first
// eviction, which happens only once it is full size (or the index is full).
type ring struct {
	buf        []byte
	max        int
	head, used int
	bit        uint64 // its records' mark in the index
}

// newSlab splits budget bytes into shards, fewer for a small budget so that
// a shard can still hold an entry of maxEntry bytes (a cached file) without
// emptying itself for it. Every entry goes to the main rings (no admission).
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
		size := int(per - per/8)
		if size > 8<<10 {
			size &^= 8<<10 - 1
		}
		s.shards[i] = ringShard{index: map[uint64]uint64{}, main: ring{max: size}, maxIndex: int(per / 8 / indexEntryBytes)}
	}
	return s
}

// newAdmittingSlab is newSlab with a probation ring of a sixteenth in each
// shard for the entries set with admit false.
func newAdmittingSlab(budget int64, maxEntry int) *slab {
	s := newSlab(budget, maxEntry)
	for i := range s.shards {
		sh := &s.shards[i]
		p := sh.main.max / probationShare
		if p > 8<<10 {
			p &^= 8<<10 - 1
		}
		sh.probation = ring{max: p, bit: inProbation}
		sh.main.max -= p
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
		n += uint64(len(sh.main.buf) + len(sh.probation.buf) + sh.peakIndex*indexEntryBytes)
		sh.mu.RUnlock()
	}
	return n
}

// view calls f with the live value of key, valid only during the call, and
// reports whether there was one. promote (a returning token's read) moves a
// value found in probation to the main ring.
func (s *slab) view(k *memKey, promote bool, f func(value []byte, sealed bool)) bool {
	sh := s.shard(k.hash())
	sh.mu.RLock()
	r, ok := sh.lookup(k, time.Now().UnixNano())
	if ok && f != nil {
		f(r.value, r.sealed)
	}
	sh.mu.RUnlock()
	if ok && promote && r.inProbation {
		sh.mu.Lock()
		sh.promote(k)
		sh.mu.Unlock()
	}
	return ok
}

// get is a copy of the value of key.
func (s *slab) get(k *memKey, promote bool) (value []byte, sealed, ok bool) {
	ok = s.view(k, promote, func(v []byte, sl bool) { value, sealed = append([]byte{}, v...), sl })
	return value, sealed, ok
}

func (s *slab) has(k *memKey, promote bool) bool { return s.view(k, promote, nil) }

// set stores value under key, replacing what it held; false when the value
// is too big for a shard (it is then not kept, and any old value is dropped).
// admit puts it in the main ring; else it goes to probation, unless it
// replaces a value in main or is too big for probation.
func (s *slab) set(k *memKey, value []byte, ttl time.Duration, sealed, admit bool) bool {
	sh := s.shard(k.hash())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.put(k, value, expiry(ttl), sealed, admit)
}

// update replaces the value of key with what f makes of it (old is nil when
// there is none, and valid only during the call), atomically with respect to
// every other use of key; f returns false to leave it as it is. admit is set's.
func (s *slab) update(k *memKey, admit bool, f func(old []byte, found bool) ([]byte, bool)) {
	sh := s.shard(k.hash())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, found := sh.lookup(k, time.Now().UnixNano())
	old := r.value
	if r.sealed {
		old, found = nil, false
	}
	if value, write := f(old, found); write {
		sh.put(k, value, 0, false, admit)
	}
}

func (s *slab) remove(k *memKey) {
	sh := s.shard(k.hash())
	sh.mu.Lock()
	if _, ok := sh.lookup(k, 0); ok { // not another key of the same first 8 bytes
		delete(sh.index, k.hash())
	}
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
			sh.ringOf(off).read(int(off&^inProbation)+4, k[:])
			if r, ok := sh.lookup(&k, now); ok {
				f(bytes.Clone(r.value))
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

// record is what lookup finds.
type record struct {
	value       []byte
	expires     int64
	sealed      bool
	inProbation bool
}

func (sh *ringShard) ringOf(ref uint64) *ring {
	if ref&inProbation != 0 {
		return &sh.probation
	}
	return &sh.main
}

// lookup is the record of key (its value: bytes in the ring when they do not
// wrap, else a copy), if it holds one that has not expired.
func (sh *ringShard) lookup(k *memKey, now int64) (record, bool) {
	ref, ok := sh.index[k.hash()]
	if !ok {
		return record{}, false
	}
	r, off := sh.ringOf(ref), int(ref&^inProbation)
	var h [headerLen]byte
	r.read(off, h[:])
	if !bytes.Equal(h[4:4+memKeyLen], k[:]) {
		return record{}, false // another key of the same first 8 bytes
	}
	exp := int64(binary.LittleEndian.Uint64(h[4+memKeyLen:]))
	if exp != 0 && now >= exp {
		return record{}, false
	}
	n := int(binary.LittleEndian.Uint32(h[:4])) - headerLen
	start := (off + headerLen) % len(r.buf)
	var value []byte
	if start+n <= len(r.buf) {
		value = r.buf[start : start+n : start+n]
	} else {
		value = make([]byte, n)
		r.read(start, value)
	}
	return record{value, exp, h[headerLen-1]&flagSealed != 0, ref&inProbation != 0}, true
}

// promote moves key's record from probation to the main ring, if it is still there.
func (sh *ringShard) promote(k *memKey) {
	r, ok := sh.lookup(k, time.Now().UnixNano())
	if !ok || !r.inProbation {
		return
	}
	// put writes only to main; it may drop probation's oldest records but
	// never overwrites their bytes, so r.value stays valid.
	sh.put(k, r.value, r.expires, r.sealed, true)
}

// put writes a record at the tail of main (admit, or replacing a record
// there, or too big for probation) or of probation, growing the ring or
// dropping the oldest records to make room.
func (sh *ringShard) put(k *memKey, value []byte, expires int64, sealed, admit bool) bool {
	h := k.hash()
	if ref, ok := sh.index[h]; ok && ref&inProbation == 0 {
		admit = true
	}
	delete(sh.index, h)
	n := headerLen + len(value)
	r := &sh.main
	if !admit && n <= sh.probation.max/4 {
		r = &sh.probation
	}
	if n > r.max {
		return false
	}
	if len(r.buf)-r.used < n && len(r.buf) < r.max {
		sh.grow(r, n)
	}
	for len(r.buf)-r.used < n {
		sh.dropOldest(r)
	}
	for len(sh.index) >= sh.maxIndex { // one-request tokens' entries go first
		if sh.probation.used > 0 {
			sh.dropOldest(&sh.probation)
		} else if sh.main.used > 0 {
			sh.dropOldest(&sh.main)
		} else {
			break
		}
	}
	var head [headerLen]byte
	binary.LittleEndian.PutUint32(head[:4], uint32(n))
	copy(head[4:], k[:])
	binary.LittleEndian.PutUint64(head[4+memKeyLen:], uint64(expires))
	if sealed {
		head[headerLen-1] = flagSealed
	}
	tail := (r.head + r.used) % len(r.buf)
	r.write(tail, head[:])
	r.write((tail+headerLen)%len(r.buf), value)
	r.used += n
	sh.index[h] = uint64(tail) | r.bit
	sh.peakIndex = max(sh.peakIndex, len(sh.index))
	return true
}

// grow makes room for n more bytes in r while it is below full size: its
// records move to the start of a larger one.
func (sh *ringShard) grow(r *ring, n int) {
	size := max(2*len(r.buf), minRingSize)
	for size < r.used+n {
		size *= 2
	}
	buf := make([]byte, min(size, r.max))
	if r.used > 0 {
		r.read(r.head, buf[:r.used])
	}
	if r.head != 0 { // the index's evictions moved the head before the ring was full size
		for h, ref := range sh.index {
			if ref&inProbation == r.bit {
				off := int(ref &^ inProbation)
				sh.index[h] = uint64((off-r.head+len(r.buf))%len(r.buf)) | r.bit
			}
		}
	}
	r.buf, r.head = buf, 0
}

// dropOldest drops the record at r's head, and its index entry if it is still the live one.
func (sh *ringShard) dropOldest(r *ring) {
	var h [headerLen]byte
	r.read(r.head, h[:])
	n := int(binary.LittleEndian.Uint32(h[:4]))
	k := memKey(h[4 : 4+memKeyLen])
	if ref, ok := sh.index[k.hash()]; ok && ref == uint64(r.head)|r.bit {
		delete(sh.index, k.hash())
	}
	r.head = (r.head + n) % len(r.buf)
	r.used -= n
	if r.used == 0 {
		r.head = 0
	}
}

// read copies len(p) bytes of the ring from off, wrapping at its end.
func (r *ring) read(off int, p []byte) {
	c := copy(p, r.buf[off:])
	copy(p[c:], r.buf)
}

func (r *ring) write(off int, p []byte) {
	c := copy(r.buf[off:], p)
	copy(r.buf, p[c:])
}
