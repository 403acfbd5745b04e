package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/internal/tokencache"
)

// BenchmarkColdTokenMarks is the cache's own work in one cold request of
// PeersInvoices, as the server wires it without REDIS_URL: a new token's view
// of the cache (its keyed hash; the seal is derived only when used), its
// recheck mark, and the invoice list's 12 "issued" marks, one set entry. The
// gap between the cache-on and cache-off rows of `go run ./bench -only cache`
// is to be read against it:
//
//	go test -run '^$' -bench ColdTokenMarks -benchmem ./bench
func BenchmarkColdTokenMarks(b *testing.B) {
	ctx := context.Background()
	secret := []byte("0123456789abcdef0123456789abcdef")
	uuids := make([]string, 12)
	for i := range uuids {
		uuids[i] = fmt.Sprintf("5c7a3f6e-0b1d-4e2a-9f3c-%012d", i)
	}
	store, err := shared.Open(ctx, shared.Options{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := tokencache.New(tokencache.Options{Secret: secret, Shared: store.Remote()})
	if err != nil {
		b.Fatal(err)
	}
	rechecks := shared.Rechecks{Store: store}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		t := c.For(fmt.Sprintf("cold-token-%d", i))
		rechecks.Accepted(ctx, t.Key())
		t.AddMembers(ctx, "issued", uuids, 1024)
	}
}
