package tokencache_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/oceangraph/oceangraph/internal/tokencache"
)

// TestWeigherCountsWhatAnEntryCosts loads entries of the sizes the server
// keeps (an "issued" set, a summary, an item page, a file) and compares the
// heap they take with what the byte budget counts them as: the budget is only
// a bound on memory if it does not undercount. The rings are counted as
// allocated and the index at its largest slot size, so the count is the
// heap's to within the measurement's noise (a percent), never below it.
func TestWeigherCountsWhatAnEntryCosts(t *testing.T) {
	for _, size := range []int{40, 450, 3000, 40_000} {
		t.Run(fmt.Sprint(size, " bytes"), func(t *testing.T) {
			n := min(20_000, (64<<20)/(size+300))
			c := newCache(t, tokencache.Options{MaxBytes: 1 << 40})
			ctx := context.Background()
			tokens := make([]*tokencache.Token, 50)
			for i := range tokens {
				tokens[i] = c.For(fmt.Sprint("token-", i))
			}
			before := heapInUse()
			for i := range n {
				value := make([]byte, size) // as json.Marshal returns it: a fresh slice
				value[0] = byte(i)
				tokens[i%len(tokens)].Put(ctx, fmt.Sprintf("summary/5c7a3f6e-0b1d-4e2a-9f3c-%012d", i), value, 0)
			}
			real := heapInUse() - before
			counted := c.Bytes()
			ratio := float64(counted) / float64(real)
			t.Logf("%d entries of %d bytes: heap %.0f B an entry, counted %.0f B (%.2f)", n, size, float64(real)/float64(n), float64(counted)/float64(n), ratio)
			if ratio < 0.99 || ratio > 1.3 {
				t.Fatalf("the budget counts %.2f× what %d-byte entries take of the heap (%d vs %d bytes), want 0.99..1.3 (the heap, never less)", ratio, size, counted, real)
			}
			runtime.KeepAlive(c)
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
