package graph

import (
	"strings"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// A volume's whole life through every mutation against the sandbox's
// stateful account, with the exact upstream requests of each step, and the
// sandbox's refusals as UserErrors.
func TestMutationsAgainstTheSandbox(t *testing.T) {
	sb := sandbox.New(sandbox.Options{Seed: 1, ActionDelay: -1})
	h := newHarness(t, sb)
	h.sandbox = sb

	var list struct {
		Volumes struct {
			Nodes []struct {
				ID         string
				DropletIds []int
				Region     struct{ Slug string }
			}
		}
	}
	h.mustData(`{ volumes(first: 200) { nodes { id dropletIds region { slug } } } }`, nil, &list)
	var dropletID int
	var region, otherRegion string
	for _, v := range list.Volumes.Nodes {
		if len(v.DropletIds) > 0 && dropletID == 0 {
			dropletID, region = v.DropletIds[0], v.Region.Slug
		}
	}
	for _, v := range list.Volumes.Nodes {
		if v.Region.Slug != region {
			otherRegion = v.Region.Slug
		}
	}
	if dropletID == 0 || otherRegion == "" {
		t.Fatal("the sandbox account has no attached volume, or one region only")
	}
	h.upstreamCalls()

	step := func(name, query string, vars map[string]any, wantCalls []string, out any) {
		t.Helper()
		h.sandbox.Reset()
		h.mustData(query, vars, out)
		assertCalls(t, name, h.upstreamCalls(), wantCalls)
	}

	var created struct {
		CreateVolume struct {
			Volume     struct{ ID, Name string }
			UserErrors []struct {
				Field []string
				Code  string
			}
		}
	}
	step("createVolume", `mutation($r: String!) { createVolume(input: {name: "life-1", region: $r, sizeGigabytes: 10, tags: ["t"]}) { volume { id name } userErrors { field code } } }`,
		map[string]any{"r": region}, []string{"POST /v2/volumes"}, &created)
	id := created.CreateVolume.Volume.ID
	if id == "" || created.CreateVolume.Volume.Name != "life-1" {
		t.Fatalf("createVolume: %+v", created.CreateVolume)
	}

	var taken struct {
		CreateVolume struct {
			UserErrors []struct {
				Field []string
				Code  string
			}
		}
	}
	step("createVolume, name taken", `mutation($r: String!) { createVolume(input: {name: "life-1", region: $r, sizeGigabytes: 10}) { userErrors { field code } } }`,
		map[string]any{"r": region}, []string{"POST /v2/volumes"}, &taken)
	if e := taken.CreateVolume.UserErrors; len(e) != 1 || e[0].Code != "TAKEN" || strings.Join(e[0].Field, ".") != "input.name" {
		t.Errorf("a taken name: %+v, want TAKEN at input.name", e)
	}

	var action struct {
		Payload struct {
			Action     *struct{ ID, Type, Status string }
			UserErrors []struct {
				Field []string
				Code  string
			}
		} `json:"p"`
	}
	expectRefusal := func(name, query string, vars map[string]any, path, code string) {
		t.Helper()
		action.Payload.Action, action.Payload.UserErrors = nil, nil
		h.sandbox.Reset()
		h.mustData(query, vars, &action)
		h.upstreamCalls()
		if e := action.Payload.UserErrors; len(e) != 1 || e[0].Code != code || strings.Join(e[0].Field, ".") != path || action.Payload.Action != nil {
			t.Errorf("%s: %+v, want %s at %s", name, action.Payload, code, path)
		}
	}
	actionPath := "POST /v2/volumes/" + id + "/actions"
	step("resizeVolume", `mutation($v: ID!) { p: resizeVolume(input: {volumeId: $v, sizeGigabytes: 20}) { action { id type status } userErrors { field code } } }`,
		map[string]any{"v": id}, []string{actionPath}, &action)
	if action.Payload.Action == nil || action.Payload.Action.Type != "resize_volume" {
		t.Errorf("resize: %+v", action.Payload)
	}
	expectRefusal("resize downwards", `mutation($v: ID!) { p: resizeVolume(input: {volumeId: $v, sizeGigabytes: 5}) { action { id } userErrors { field code } } }`,
		map[string]any{"v": id}, "input.sizeGigabytes", "TOO_SMALL")

	step("attachVolume", `mutation($v: ID!, $d: Int!) { p: attachVolume(input: {volumeId: $v, dropletId: $d}) { action { id type status } userErrors { field code } } }`,
		map[string]any{"v": id, "d": dropletID}, []string{actionPath}, &action)
	if action.Payload.Action == nil || action.Payload.Action.Type != "attach_volume" {
		t.Errorf("attach: %+v", action.Payload)
	}
	expectRefusal("delete while attached", `mutation($v: ID!) { p: deleteVolume(input: {id: $v}) { userErrors { field code } } }`,
		map[string]any{"v": id}, "", "ATTACHED")

	var vol struct {
		Volume struct {
			DropletIds    []int
			SizeGigabytes int
		}
	}
	step("the volume after its actions", `query($v: ID!) { volume(id: $v) { dropletIds sizeGigabytes } }`, map[string]any{"v": id},
		[]string{"GET /v2/volumes/" + id}, &vol)
	if len(vol.Volume.DropletIds) != 1 || vol.Volume.DropletIds[0] != dropletID || vol.Volume.SizeGigabytes != 20 {
		t.Errorf("volume after resize and attach: %+v", vol.Volume)
	}

	step("detachVolume", `mutation($v: ID!, $d: Int!) { p: detachVolume(input: {volumeId: $v, dropletId: $d}) { action { id type status } userErrors { field code } } }`,
		map[string]any{"v": id, "d": dropletID}, []string{actionPath}, &action)

	var snap struct {
		CreateVolumeSnapshot struct {
			Snapshot struct {
				ID, Name string
				VolumeID string
			}
		}
	}
	step("createVolumeSnapshot", `mutation($v: ID!) { createVolumeSnapshot(input: {volumeId: $v, name: "life-snap"}) { snapshot { id name volumeId } } }`,
		map[string]any{"v": id}, []string{"POST /v2/volumes/" + id + "/snapshots"}, &snap)
	if snap.CreateVolumeSnapshot.Snapshot.VolumeID != id {
		t.Errorf("snapshot: %+v", snap.CreateVolumeSnapshot)
	}

	var lists struct {
		Volume struct {
			Actions struct {
				TotalCount int
				Nodes      []struct{ Type, Status string }
			}
			Snapshots struct{ TotalCount int }
		}
	}
	step("actions and snapshots", `query($v: ID!) { volume(id: $v) { actions(first: 10) { totalCount nodes { type status } } snapshots { totalCount } } }`, map[string]any{"v": id},
		[]string{"GET /v2/volumes/" + id, "GET /v2/volumes/" + id + "/actions?page=1&per_page=10", "GET /v2/volumes/" + id + "/snapshots?page=1&per_page=1"}, &lists)
	if lists.Volume.Actions.TotalCount != 3 || lists.Volume.Snapshots.TotalCount != 1 {
		t.Errorf("a volume with 3 actions and 1 snapshot: %+v", lists.Volume)
	}

	var gone struct {
		DeleteVolumeSnapshot struct{ DeletedSnapshotID string }
		DeleteVolume         struct{ DeletedVolumeID string }
	}
	sid := snap.CreateVolumeSnapshot.Snapshot.ID
	step("deletes", `mutation($s: ID!, $v: ID!) { deleteVolumeSnapshot(input: {id: $s}) { deletedSnapshotId } deleteVolume(input: {id: $v}) { deletedVolumeId } }`,
		map[string]any{"s": sid, "v": id}, []string{"DELETE /v2/volumes/snapshots/" + sid, "DELETE /v2/volumes/" + id}, &gone)
	if gone.DeleteVolume.DeletedVolumeID != id || gone.DeleteVolumeSnapshot.DeletedSnapshotID != sid {
		t.Errorf("deletes: %+v", gone)
	}
	if resp := h.post(`query($v: ID!) { volume(id: $v) { id } }`, map[string]any{"v": id}); len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != CodeNotFound {
		t.Errorf("the deleted volume: %+v, want NOT_FOUND", resp.Errors)
	}

	step("a volume in another region", `mutation($r: String!) { createVolume(input: {name: "life-2", region: $r, sizeGigabytes: 1}) { volume { id name } userErrors { field code } } }`,
		map[string]any{"r": otherRegion}, []string{"POST /v2/volumes"}, &created)
	expectRefusal("attach across regions", `mutation($v: ID!, $d: Int!) { p: attachVolume(input: {volumeId: $v, dropletId: $d}) { action { id } userErrors { field code } } }`,
		map[string]any{"v": created.CreateVolume.Volume.ID, "d": dropletID}, "input.dropletId", "WRONG_REGION")
}

// With CACHE_LIST_TTL the token's volume lists are cached across requests;
// a write retires them, so the next request sees the new volume.
func TestWriteRetiresCachedVolumeLists(t *testing.T) {
	st := newSharedState(t, shared.NewLocal(0), nil)
	st.ListTTL = time.Minute
	sb := sandbox.New(sandbox.Options{Seed: 1, ActionDelay: -1})
	h := newHarness(t, sb, func(c *Config) { c.Shared = st })
	h.sandbox = sb
	count := func() int {
		var out struct{ Volumes struct{ TotalCount int } }
		h.mustData(`{ volumes(first: 1) { totalCount nodes { id } } }`, nil, &out)
		return out.Volumes.TotalCount
	}
	before := count()
	h.sandbox.Reset()
	if again := count(); again != before || len(h.upstreamCalls()) != 0 {
		t.Fatalf("the list is not served from the cache (CACHE_LIST_TTL): %d then %d", before, again)
	}
	var region struct {
		Volumes struct {
			Nodes []struct{ Region struct{ Slug string } }
		}
	}
	h.mustData(`{ volumes(first: 1) { nodes { region { slug } } } }`, nil, &region)
	var created struct{ CreateVolume struct{ UserErrors []any } }
	h.mustData(`mutation($r: String!) { createVolume(input: {name: "cached-list", region: $r, sizeGigabytes: 1}) { userErrors { code } } }`,
		map[string]any{"r": region.Volumes.Nodes[0].Region.Slug}, &created)
	if after := count(); after != before+1 {
		t.Errorf("after createVolume the cached list still says %d volumes, want %d", after, before+1)
	}
}
