package upstream

import (
	"context"
	"net/http"
	"testing"
)

func specSnapshot() *Snapshot {
	return &Snapshot{
		ID: "8fa70202-873f-11e6-8b68-000f533176b1", Name: "big-data-snapshot1475261774", Regions: []string{"nyc1"},
		CreatedAt: "2020-09-30T18:56:14Z", ResourceID: "82a48a18-873f-11e6-96bf-000f53315a41", ResourceType: "volume",
		MinDiskSize: 10, SizeGigabytes: 10, Tags: []string{"aninterestingtag"},
	}
}

func TestListVolumeSnapshotsDecodesSpecExample(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/volumes/{id}/snapshots", serveJSON(http.StatusOK, fixture(t, "volume_snapshots.json")))
	c := newTestClient(t, do.URL, Config{})

	page, err := c.ListVolumeSnapshots(context.Background(), specVolumeID, ListOptions{PerPage: 200})
	if err != nil {
		t.Fatalf("ListVolumeSnapshots: %v", err)
	}
	want := &SnapshotPage{Snapshots: []Snapshot{{
		ID: "8eb4d51a-873f-11e6-96bf-000f53315a41", Name: "big-data-snapshot1475261752", Regions: []string{"nyc1"},
		CreatedAt: "2020-09-30T18:56:12Z", ResourceID: "82a48a18-873f-11e6-96bf-000f53315a41", ResourceType: "volume",
		MinDiskSize: 10, SizeGigabytes: 0, Tags: nil,
	}}, Links: &Links{}, Meta: Meta{Total: ptr(1)}}
	assertEqual(t, "snapshot page", page, want)
	if u := do.seen()[0].URL; u.Path != "/v2/volumes/"+specVolumeID+"/snapshots" || u.RawQuery != "per_page=200" {
		t.Errorf("request = %s", u)
	}
}

func TestCreateVolumeSnapshotSendsTheSpecRequestAndReadsThe201(t *testing.T) {
	cases := []struct {
		name     string
		req      SnapshotCreateRequest
		wantBody map[string]any
	}{
		{"the spec's example", SnapshotCreateRequest{Name: "big-data-snapshot1475261774"}, map[string]any{"name": "big-data-snapshot1475261774"}},
		{"with tags", SnapshotCreateRequest{Name: "big-data-snapshot1475261774", Tags: []string{"aninterestingtag"}},
			map[string]any{"name": "big-data-snapshot1475261774", "tags": []any{"aninterestingtag"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.Handle("POST /v2/volumes/{id}/snapshots", serveJSON(http.StatusCreated, fixture(t, "volume_snapshot.json")))
			c := newTestClient(t, do.URL, Config{})

			s, err := c.CreateVolumeSnapshot(context.Background(), specVolumeID, tc.req)
			if err != nil {
				t.Fatalf("CreateVolumeSnapshot: %v", err)
			}
			assertEqual(t, "snapshot", s, specSnapshot())
			if r := do.seen()[0]; r.Method != http.MethodPost || r.URL.Path != "/v2/volumes/"+specVolumeID+"/snapshots" {
				t.Errorf("request = %s %s", r.Method, r.URL.Path)
			}
			assertEqual(t, "request body", do.sentJSON(t, 0), any(tc.wantBody))
		})
	}
}

func TestGetVolumeSnapshotDecodesSpecExample(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/volumes/snapshots/{snapshot_id}", serveJSON(http.StatusOK, fixture(t, "volume_snapshot.json")))
	c := newTestClient(t, do.URL, Config{})

	s, err := c.GetVolumeSnapshot(context.Background(), "8fa70202-873f-11e6-8b68-000f533176b1")
	if err != nil {
		t.Fatalf("GetVolumeSnapshot: %v", err)
	}
	assertEqual(t, "snapshot", s, specSnapshot())
	if p := do.seen()[0].URL.Path; p != "/v2/volumes/snapshots/8fa70202-873f-11e6-8b68-000f533176b1" {
		t.Errorf("path = %q", p)
	}
}

func TestDeleteVolumeSnapshotReadsThe204(t *testing.T) {
	do := newFakeDO(t)
	do.mux.HandleFunc("DELETE /v2/volumes/snapshots/{snapshot_id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	c := newTestClient(t, do.URL, Config{})

	if err := c.DeleteVolumeSnapshot(context.Background(), "fbe805e8-866b-11e6-96bf-000f53315a41"); err != nil {
		t.Fatalf("DeleteVolumeSnapshot: %v", err)
	}
	if r := do.seen()[0]; r.Method != http.MethodDelete || r.URL.Path != "/v2/volumes/snapshots/fbe805e8-866b-11e6-96bf-000f53315a41" {
		t.Errorf("request = %s %s", r.Method, r.URL.Path)
	}
}
