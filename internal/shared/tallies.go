package shared

import (
	"hash/maphash"
	"time"
	"unsafe"
)

// tallies are the in-process sliding-window tallies: fixed-size records in one
// slice, found by a 128-bit hash of their key, least recently used first out.
// A fresh token a request (the cold bench) makes one each, so a record is what
// one-off tokens cost: ~100 bytes with its index entry, and no pointer for the
// GC to follow (a string key, a list element and a slice of buckets per tally
// took ~320 bytes in seven objects). A token busy in more than two seconds of a
// window keeps its other buckets in a small map beside.
type tallies struct {
	seeds [2]maphash.Seed
	index map[tallyID]int32
	recs  []tallyRec
	more  map[int32][]bucket // the buckets of a record past its inline ones
	// head and tail are the most and least recently used records; free is the
	// first record to reuse (linked by next); -1: none.
	head, tail, free int32
	max              int
	epoch            time.Time // used is measured from it, on the monotonic clock
}

// tallyID names a key: two 64-bit hashes under random seeds. The keys are keyed
// hashes of tokens already, so no one can choose two that collide.
type tallyID [2]uint64

type tallyRec struct {
	id         tallyID
	total      int64
	used       int64 // nanoseconds since epoch
	prev, next int32
	n          int32 // buckets in use: inline first, then in more
	inline     [inlineBuckets]bucket
}

type bucket struct{ sec, n int64 }

// inlineBuckets: a token's calls usually fall in one or two seconds of a window.
const inlineBuckets = 2

func newTallies(max int) *tallies {
	return &tallies{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		index: map[tallyID]int32{},
		more:  map[int32][]bucket{},
		head:  -1, tail: -1, free: -1,
		max:   max,
		epoch: time.Now(),
	}
}

func (ts *tallies) len() int { return len(ts.index) }

// bytes is the heap the tallies hold: the records' slice as allocated, and the
// index at 40 bytes an entry (a 24-byte slot in a swiss table between 5/8 and 7/8 full).
func (ts *tallies) bytes() uint64 {
	return uint64(cap(ts.recs))*uint64(unsafe.Sizeof(tallyRec{})) + uint64(len(ts.index))*40
}

// count adds n to key's bucket of at and returns the tally over the window ending at at.
func (ts *tallies) count(key string, at time.Time, n int64, window time.Duration) Tally {
	now := int64(time.Since(ts.epoch))
	ts.dropIdle(now)
	id := tallyID{maphash.String(ts.seeds[0], key), maphash.String(ts.seeds[1], key)}
	i, ok := ts.index[id]
	switch {
	case !ok:
		i = ts.take(id)
	case now-ts.recs[i].used > int64(tallyIdle):
		ts.restart(i)
	}
	ts.toFront(i)
	r := &ts.recs[i]
	r.used = now

	var scratch [8]bucket
	bs := append(append(scratch[:0], r.inline[:min(r.n, inlineBuckets)]...), ts.more[i]...)
	sec := at.Unix()
	if n != 0 {
		r.total += n
		bs = addTo(bs, sec, n)
	}
	from := sec - int64(window/time.Second)
	out := Tally{Total: r.total}
	kept := bs[:0]
	oldest := int64(0)
	for _, b := range bs {
		if b.sec <= from {
			continue
		}
		kept = append(kept, b)
		out.InWindow += b.n
		if b.n > 0 && (oldest == 0 || b.sec < oldest) {
			oldest = b.sec
		}
	}
	if oldest != 0 {
		out.Oldest = time.Unix(oldest, 0)
	}
	r.n = int32(len(kept))
	r.inline = [inlineBuckets]bucket{}
	copy(r.inline[:], kept)
	if len(kept) > inlineBuckets {
		ts.more[i] = append(ts.more[i][:0], kept[inlineBuckets:]...)
	} else if _, had := ts.more[i]; had {
		delete(ts.more, i)
	}
	return out
}

func addTo(bs []bucket, sec, n int64) []bucket {
	for i := range bs {
		if bs[i].sec == sec {
			bs[i].n += n
			return bs
		}
	}
	return append(bs, bucket{sec, n})
}

// take makes a record for id: a free one, a new one, or, at the bound, the least recently used.
func (ts *tallies) take(id tallyID) int32 {
	var i int32
	switch {
	case ts.free >= 0:
		i = ts.free
		ts.free = ts.recs[i].next
	case len(ts.recs) < ts.max:
		ts.recs = append(ts.recs, tallyRec{})
		i = int32(len(ts.recs) - 1)
	default:
		i = ts.tail
		ts.unlink(i)
		delete(ts.index, ts.recs[i].id)
	}
	ts.recs[i] = tallyRec{id: id, prev: -1, next: -1}
	delete(ts.more, i)
	ts.index[id] = i
	ts.linkFront(i)
	return i
}

// restart forgets a record's counts: it was idle past tallyIdle.
func (ts *tallies) restart(i int32) {
	r := &ts.recs[i]
	r.total, r.n, r.inline = 0, 0, [inlineBuckets]bucket{}
	delete(ts.more, i)
}

// dropIdle frees the least recently used records idle past tallyIdle (a few a
// call), so the tallies shrink by time as well as by count.
func (ts *tallies) dropIdle(now int64) {
	for range 2 {
		i := ts.tail
		if i < 0 || now-ts.recs[i].used <= int64(tallyIdle) {
			return
		}
		ts.unlink(i)
		delete(ts.index, ts.recs[i].id)
		delete(ts.more, i)
		ts.recs[i] = tallyRec{prev: -1, next: ts.free}
		ts.free = i
	}
}

func (ts *tallies) toFront(i int32) {
	if ts.head == i {
		return
	}
	ts.unlink(i)
	ts.linkFront(i)
}

func (ts *tallies) linkFront(i int32) {
	r := &ts.recs[i]
	r.prev, r.next = -1, ts.head
	if ts.head >= 0 {
		ts.recs[ts.head].prev = i
	}
	ts.head = i
	if ts.tail < 0 {
		ts.tail = i
	}
}

func (ts *tallies) unlink(i int32) {
	r := &ts.recs[i]
	if r.prev >= 0 {
		ts.recs[r.prev].next = r.next
	} else if ts.head == i {
		ts.head = r.next
	}
	if r.next >= 0 {
		ts.recs[r.next].prev = r.prev
	} else if ts.tail == i {
		ts.tail = r.prev
	}
	r.prev, r.next = -1, -1
}
