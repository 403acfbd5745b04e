package sandbox

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/upstream"
)

// newClientRig is the project's own client against a sandbox on a loopback
// port, with a clock the test moves.
func newClientRig(t *testing.T) (*Sandbox, *testClock, *upstream.Client) {
	t.Helper()
	clock := newTestClock(fixedNow)
	s, srv := newTestServer(t, Options{Now: clock.Now})
	c, err := upstream.New(upstream.Config{BaseURL: srv.URL, Token: testToken, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return s, clock, c
}

// TestClientLifecycle drives the client through create, attach, detach,
// resize, snapshot and delete: the two sides agree on the wire, and each
// write reaches the sandbox exactly once.
func TestClientLifecycle(t *testing.T) {
	s, clock, c := newClientRig(t)
	ctx := context.Background()
	v, err := c.CreateVolume(ctx, upstream.VolumeCreateRequest{Name: "pg-data", Region: "fra1", SizeGigabytes: 20, FilesystemType: "ext4"})
	if err != nil || v.Name != "pg-data" || v.Region.Slug != "fra1" || v.SizeGigabytes != 20 {
		t.Fatalf("CreateVolume: %+v, %v", v, err)
	}
	droplet := ListedDroplets()["fra1"][1]
	ac, err := c.AttachVolume(ctx, v.ID, droplet, "")
	if err != nil || ac.Status != upstream.ActionInProgress || ac.Type != "attach_volume" || ac.CompletedAt != "" {
		t.Fatalf("AttachVolume: %+v, %v", ac, err)
	}
	clock.Advance(DefaultActionDelay)
	if got, err := c.GetVolumeAction(ctx, v.ID, ac.ID); err != nil || got.Status != upstream.ActionCompleted || got.CompletedAt == "" {
		t.Fatalf("GetVolumeAction: %+v, %v", got, err)
	}
	if got, err := c.GetVolume(ctx, v.ID); err != nil || !slices.Equal(got.DropletIDs, []int{droplet}) {
		t.Fatalf("GetVolume after attach: %+v, %v", got, err)
	}
	if _, err := c.DetachVolume(ctx, v.ID, droplet, "fra1"); err != nil {
		t.Fatalf("DetachVolume: %v", err)
	}
	clock.Advance(DefaultActionDelay)
	if _, err := c.ResizeVolume(ctx, v.ID, 40, ""); err != nil {
		t.Fatalf("ResizeVolume: %v", err)
	}
	clock.Advance(DefaultActionDelay)
	page, err := c.ListVolumeActions(ctx, v.ID, upstream.ListOptions{})
	if err != nil || *page.Meta.Total != 3 || page.Actions[0].Type != "resize_volume" {
		t.Fatalf("ListVolumeActions: %+v, %v", page, err)
	}
	snap, err := c.CreateVolumeSnapshot(ctx, v.ID, upstream.SnapshotCreateRequest{Name: "nightly"})
	if err != nil || snap.MinDiskSize != 40 || snap.ResourceID != v.ID {
		t.Fatalf("CreateVolumeSnapshot: %+v, %v", snap, err)
	}
	if snaps, err := c.ListVolumeSnapshots(ctx, v.ID, upstream.ListOptions{}); err != nil || len(snaps.Snapshots) != 1 {
		t.Fatalf("ListVolumeSnapshots: %+v, %v", snaps, err)
	}
	if got, err := c.GetVolumeSnapshot(ctx, snap.ID); err != nil || got.Name != "nightly" {
		t.Fatalf("GetVolumeSnapshot: %+v, %v", got, err)
	}
	if err := c.DeleteVolumeSnapshot(ctx, snap.ID); err != nil {
		t.Fatalf("DeleteVolumeSnapshot: %v", err)
	}
	if err := c.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	var e *upstream.Error
	if _, err := c.GetVolume(ctx, v.ID); !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Fatalf("GetVolume after delete: %v, want a 404", err)
	}
	for route, want := range map[string]int{
		upstream.EndpointCreateVolume: 1, upstream.EndpointPostVolumeAction: 3, upstream.EndpointCreateVolumeSnapshot: 1,
		upstream.EndpointDeleteVolumeSnapshot: 1, upstream.EndpointDeleteVolume: 1,
	} {
		if got := s.Counts()[route]; got != want {
			t.Errorf("%s sent %d times, want %d", route, got, want)
		}
	}
}

// TestClientClassifiesRefusals: each refusal of the sandbox reaches the
// client as the Refusal (code and field) a resolver turns into a UserError.
func TestClientClassifiesRefusals(t *testing.T) {
	s, clock, c := newClientRig(t)
	ctx := context.Background()
	attached, free := pickVolumes(t, s.Account(testToken))
	var elsewhere int
	for slug, ids := range ListedDroplets() {
		if slug != free.Region.Slug {
			elsewhere = ids[0]
		}
	}
	create := func(r upstream.VolumeCreateRequest) func() error {
		return func() error { _, err := c.CreateVolume(ctx, r); return err }
	}
	cases := []struct {
		name  string
		call  func() error
		code  upstream.RefusalCode
		field string
	}{
		{"invalid name", create(upstream.VolumeCreateRequest{Name: "Bad_Name", Region: "nyc1", SizeGigabytes: 1}), upstream.RefusalInvalid, "name"},
		{"size too large", create(upstream.VolumeCreateRequest{Name: "big", Region: "nyc1", SizeGigabytes: 16385}), upstream.RefusalInvalid, "size_gigabytes"},
		{"unknown region", create(upstream.VolumeCreateRequest{Name: "x", Region: "xyz1", SizeGigabytes: 1}), upstream.RefusalInvalid, "region"},
		{"unknown filesystem", create(upstream.VolumeCreateRequest{Name: "x", Region: "nyc1", SizeGigabytes: 1, FilesystemType: "ntfs"}), upstream.RefusalInvalid, "filesystem_type"},
		{"label too long", create(upstream.VolumeCreateRequest{Name: "x", Region: "nyc1", SizeGigabytes: 1, FilesystemType: "xfs", FilesystemLabel: "abcdefghijklm"}), upstream.RefusalInvalid, "filesystem_label"},
		{"unknown snapshot", create(upstream.VolumeCreateRequest{Name: "x", Region: "nyc1", SnapshotID: "b0798135-fb76-11eb-946a-0a58ac146f33"}), upstream.RefusalInvalid, "snapshot_id"},
		{"name taken", create(upstream.VolumeCreateRequest{Name: attached.Name, Region: attached.Region.Slug, SizeGigabytes: 1}), upstream.RefusalTaken, "name"},
		{"delete attached", func() error { return c.DeleteVolume(ctx, attached.ID) }, upstream.RefusalAttached, ""},
		{"attach attached", func() error {
			_, err := c.AttachVolume(ctx, attached.ID, ListedDroplets()[attached.Region.Slug][0], "")
			return err
		}, upstream.RefusalAttached, "droplet_id"},
		{"attach elsewhere", func() error { _, err := c.AttachVolume(ctx, free.ID, elsewhere, ""); return err }, upstream.RefusalWrongRegion, "droplet_id"},
		{"attach unknown Droplet", func() error { _, err := c.AttachVolume(ctx, free.ID, 12345, ""); return err }, upstream.RefusalInvalid, "droplet_id"},
		{"detach not attached", func() error { _, err := c.DetachVolume(ctx, free.ID, elsewhere, ""); return err }, upstream.RefusalInvalid, "droplet_id"},
		{"shrink", func() error { _, err := c.ResizeVolume(ctx, free.ID, free.SizeGigabytes-1, ""); return err }, upstream.RefusalTooSmall, "size_gigabytes"},
		{"grow past 16 TiB", func() error { _, err := c.ResizeVolume(ctx, free.ID, 16385, ""); return err }, upstream.RefusalInvalid, "size_gigabytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			r, ok := upstream.AsRefusal(err)
			if !ok || r.Code != tc.code || r.Field != tc.field || r.Message == "" || r.RequestID == "" {
				t.Errorf("refusal %+v (ok %v, err %v), want code %s field %q", r, ok, err, tc.code, tc.field)
			}
		})
	}
	clock.Advance(time.Hour)
	if got, err := c.GetVolume(ctx, free.ID); err != nil || got.SizeGigabytes != free.SizeGigabytes || len(got.DropletIDs) != 0 {
		t.Errorf("after refusals the volume is %+v (%v), want it unchanged", got, err)
	}
}
