package graph

import (
	"testing"
)

func TestVolumesFirstPageMatchesSandbox(t *testing.T) {
	h := newSandboxHarness(t)
	want := h.sandbox.Account(callerToken).Volumes
	var data struct {
		Volumes struct {
			TotalCount int
			Nodes      []struct {
				ID     string
				Name   string
				Region struct{ Slug string }
			}
		}
	}
	h.sandbox.Reset()
	h.mustData(`{ volumes(first: 3) { totalCount nodes { id name region { slug } } } }`, nil, &data)
	if got := h.upstreamCalls(); len(got) != 1 || got[0] != "GET /v2/volumes?page=1&per_page=3" {
		t.Errorf("upstream requests: got %q, want one GET /v2/volumes?page=1&per_page=3", got)
	}
	if data.Volumes.TotalCount != len(want) {
		t.Errorf("totalCount: got %d, want %d", data.Volumes.TotalCount, len(want))
	}
	if len(data.Volumes.Nodes) != 3 {
		t.Fatalf("nodes: got %d, want 3", len(data.Volumes.Nodes))
	}
	for i, n := range data.Volumes.Nodes {
		if n.ID != want[i].ID || n.Name != want[i].Name || n.Region.Slug != want[i].Region.Slug {
			t.Errorf("node %d: got %+v, want id %s name %s region %s", i, n, want[i].ID, want[i].Name, want[i].Region.Slug)
		}
	}
}
