package graph

import (
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// BenchmarkDashboard20ms runs the dashboard against a sandbox answering in
// 20 ms. Its floor with the default bound of 8 is 80 ms: one round for the
// three lists, then three waves for the 24 per-invoice calls.
var benchLatency = 20 * time.Millisecond

func BenchmarkDashboard20ms(b *testing.B) {
	sb := sandbox.New(sandbox.Options{Seed: 1, Latency: benchLatency})
	h := newHarness(b, sb)
	for b.Loop() {
		if resp := h.post(queries.Dashboard, nil); len(resp.Errors) > 0 {
			b.Fatalf("errors: %+v", resp.Errors)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/dashboard")
}

// BenchmarkVolumesPage is one volumes(first: 20) page against an instant
// sandbox: the per-request cost of this package plus the sandbox's.
func BenchmarkVolumesPage(b *testing.B) {
	h := newHarness(b, sandbox.New(sandbox.Options{Seed: 1}))
	const q = `{ volumes(first: 20) { totalCount nodes { id name sizeGigabytes region { slug } } } }`
	b.ReportAllocs()
	for b.Loop() {
		if resp := h.post(q, nil); len(resp.Errors) > 0 {
			b.Fatalf("errors: %+v", resp.Errors)
		}
	}
}

// The peers' three queries (internal/queries), in process against an instant
// sandbox: this package's allocations per query beside the sandbox's and the
// client's (README, Close to the floor).
func BenchmarkPeersVolumes(b *testing.B)   { benchPeers(b, queries.PeersVolumes, 0) }
func BenchmarkPeersInvoices(b *testing.B)  { benchPeers(b, queries.PeersInvoices, 0) }
func BenchmarkPeersDashboard(b *testing.B) { benchPeers(b, queries.PeersDashboard, 3) }

// benchPeers posts query, with the first uuids invoices of the list as $a, $b, $c.
func benchPeers(b *testing.B, query string, uuids int) {
	h := newHarness(b, sandbox.New(sandbox.Options{Seed: 1}))
	var vars map[string]any
	if uuids > 0 {
		var list struct {
			Invoices struct{ Nodes []struct{ UUID string } }
		}
		h.mustData(`{ invoices(first: 3) { nodes { uuid } } }`, nil, &list)
		vars = map[string]any{}
		for i, name := range []string{"a", "b", "c"}[:uuids] {
			vars[name] = list.Invoices.Nodes[i].UUID
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if resp := h.post(query, vars); len(resp.Errors) > 0 {
			b.Fatalf("errors: %+v", resp.Errors)
		}
	}
}
