package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/internal/tokencache"
)

// BenchmarkColdTokenMarks is the cache's own work in one cold request of
// PeersInvoices, as the server wires it: a new token's view of the cache
// (key and seal derived), its recheck mark, and the 12 "issued" marks of the
// invoice list. "second tier in-process" is the server without REDIS_URL, whose
// cache writes each entry, sealed, into the in-process shared store too;
// "memory only" is the cache without a second tier. The gap between the
// cache-on and cache-off rows of `go run ./bench -only cache` is to be read against it:
//
//	go test -run '^$' -bench ColdTokenMarks -benchmem ./bench
func BenchmarkColdTokenMarks(b *testing.B) {
	ctx := context.Background()
	secret := []byte("0123456789abcdef0123456789abcdef")
	uuids := make([]string, 12)
	for i := range uuids {
		uuids[i] = fmt.Sprintf("issued/5c7a3f6e-0b1d-4e2a-9f3c-%012d", i)
	}
	for _, tc := range []struct {
		name   string
		second bool
	}{{"second tier in-process", true}, {"memory only", false}} {
		b.Run(tc.name, func(b *testing.B) {
			store, err := shared.Open(ctx, shared.Options{})
			if err != nil {
				b.Fatal(err)
			}
			opts := tokencache.Options{Secret: secret}
			if tc.second {
				opts.Shared = store
			}
			c, err := tokencache.New(opts)
			if err != nil {
				b.Fatal(err)
			}
			rechecks := shared.Rechecks{Store: store}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				t := c.For(fmt.Sprintf("cold-token-%d", i))
				rechecks.Accepted(ctx, t.Key())
				for _, u := range uuids {
					t.Put(ctx, u, []byte{1}, 0)
				}
			}
		})
	}
}
