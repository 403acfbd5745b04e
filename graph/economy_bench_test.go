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
