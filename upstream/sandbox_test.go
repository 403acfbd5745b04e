package upstream_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// The client against the sandbox's stateful account: the two sides of the
// wire were written apart (the sandbox validates against the spec, the
// client's fixtures are the spec's examples), so this is where they must agree.

func sandboxClient(t *testing.T) *upstream.Client {
	t.Helper()
	sb := httptest.NewServer(sandbox.New(sandbox.Options{ActionDelay: -1}))
	t.Cleanup(sb.Close)
	c, err := upstream.New(upstream.Config{BaseURL: sb.URL, Token: "dop_v1_writes_" + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestAVolumesLifeAgainstTheSandbox(t *testing.T) {
	c := sandboxClient(t)
	ctx := context.Background()
	nyc1 := sandbox.ListedDroplets()["nyc1"][0]

	v, err := c.CreateVolume(ctx, upstream.VolumeCreateRequest{Name: "life", Region: "nyc1", SizeGigabytes: 10, FilesystemType: "ext4"})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	if v.ID == "" || v.Name != "life" || v.SizeGigabytes != 10 || v.Region == nil || v.Region.Slug != "nyc1" {
		t.Fatalf("created volume = %+v", v)
	}
	attach, err := c.AttachVolume(ctx, v.ID, nyc1, "")
	if err != nil {
		t.Fatalf("AttachVolume: %v", err)
	}
	if attach.Type != "attach_volume" || attach.ID < 1 {
		t.Errorf("attach action = %+v", attach)
	}
	got, err := c.GetVolumeAction(ctx, v.ID, attach.ID)
	if err != nil || got.Status != upstream.ActionCompleted {
		t.Fatalf("GetVolumeAction = %+v, %v; want it completed", got, err)
	}
	if v, err = c.GetVolume(ctx, v.ID); err != nil || len(v.DropletIDs) != 1 || v.DropletIDs[0] != nyc1 {
		t.Fatalf("volume after attach = %+v, %v; want droplet_ids [%d]", v, err, nyc1)
	}
	if _, err := c.ResizeVolume(ctx, v.ID, 20, "nyc1"); err != nil {
		t.Fatalf("ResizeVolume: %v", err)
	}
	if _, err := c.DetachVolume(ctx, v.ID, nyc1, "nyc1"); err != nil {
		t.Fatalf("DetachVolume: %v", err)
	}
	actions, err := c.ListVolumeActions(ctx, v.ID, upstream.ListOptions{PerPage: 2})
	if err != nil || actions.Meta.Total == nil || *actions.Meta.Total != 3 || len(actions.Actions) != 2 || !actions.Links.HasNext() {
		t.Fatalf("ListVolumeActions = %+v, %v; want 2 of 3 with a next page", actions, err)
	}
	snap, err := c.CreateVolumeSnapshot(ctx, v.ID, upstream.SnapshotCreateRequest{Name: "life-1", Tags: []string{"t"}})
	if err != nil || snap.ResourceID != v.ID || snap.Name != "life-1" {
		t.Fatalf("CreateVolumeSnapshot = %+v, %v", snap, err)
	}
	if s, err := c.GetVolumeSnapshot(ctx, snap.ID); err != nil || s.ID != snap.ID {
		t.Fatalf("GetVolumeSnapshot = %+v, %v", s, err)
	}
	if page, err := c.ListVolumeSnapshots(ctx, v.ID, upstream.ListOptions{}); err != nil || len(page.Snapshots) != 1 {
		t.Fatalf("ListVolumeSnapshots = %+v, %v", page, err)
	}
	if err := c.DeleteVolumeSnapshot(ctx, snap.ID); err != nil {
		t.Fatalf("DeleteVolumeSnapshot: %v", err)
	}
	if err := c.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	if _, err := c.GetVolume(ctx, v.ID); !isStatus(err, 404) {
		t.Errorf("GetVolume after delete: %v, want a 404", err)
	}
}

func isStatus(err error, status int) bool {
	var e *upstream.Error
	return errors.As(err, &e) && e.Status == status
}

func TestTheSandboxsRefusalsAreClassified(t *testing.T) {
	c := sandboxClient(t)
	ctx := context.Background()
	nyc1, sfo3 := sandbox.ListedDroplets()["nyc1"], sandbox.ListedDroplets()["sfo3"]
	v, err := c.CreateVolume(ctx, upstream.VolumeCreateRequest{Name: "taken", Region: "nyc1", SizeGigabytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	free, err := c.CreateVolume(ctx, upstream.VolumeCreateRequest{Name: "free", Region: "nyc1", SizeGigabytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachVolume(ctx, v.ID, nyc1[0], "nyc1"); err != nil {
		t.Fatal(err)
	}
	create := func(req upstream.VolumeCreateRequest) func() error {
		return func() error { _, err := c.CreateVolume(ctx, req); return err }
	}
	cases := []struct {
		name  string
		call  func() error
		code  upstream.RefusalCode
		field string
	}{
		{"taken name", create(upstream.VolumeCreateRequest{Name: "taken", Region: "nyc1", SizeGigabytes: 10}), upstream.RefusalTaken, "name"},
		{"bad name", create(upstream.VolumeCreateRequest{Name: "Bad_Name", Region: "nyc1", SizeGigabytes: 10}), upstream.RefusalInvalid, "name"},
		{"size too big", create(upstream.VolumeCreateRequest{Name: "big", Region: "nyc1", SizeGigabytes: 16385}), upstream.RefusalInvalid, "size_gigabytes"},
		{"unknown region", create(upstream.VolumeCreateRequest{Name: "nowhere", Region: "atl9", SizeGigabytes: 10}), upstream.RefusalInvalid, "region"},
		{"bad filesystem", create(upstream.VolumeCreateRequest{Name: "zfs", Region: "nyc1", SizeGigabytes: 10, FilesystemType: "zfs"}), upstream.RefusalInvalid, "filesystem_type"},
		{"label without filesystem", create(upstream.VolumeCreateRequest{Name: "lbl", Region: "nyc1", SizeGigabytes: 10, FilesystemLabel: "x"}), upstream.RefusalInvalid, "filesystem_label"},
		{"unknown snapshot", create(upstream.VolumeCreateRequest{Name: "snap", Region: "nyc1", SizeGigabytes: 10, SnapshotID: "b0798135-fb76-11eb-946a-0a58ac146f33"}), upstream.RefusalInvalid, "snapshot_id"},
		{"delete attached", func() error { return c.DeleteVolume(ctx, v.ID) }, upstream.RefusalAttached, ""},
		{"attach attached", func() error { _, err := c.AttachVolume(ctx, v.ID, nyc1[1], ""); return err }, upstream.RefusalAttached, "droplet_id"},
		{"attach across regions", func() error { _, err := c.AttachVolume(ctx, free.ID, sfo3[0], ""); return err }, upstream.RefusalWrongRegion, "droplet_id"},
		{"action in another region", func() error { _, err := c.AttachVolume(ctx, free.ID, nyc1[1], "sfo3"); return err }, upstream.RefusalWrongRegion, "region"},
		{"unknown droplet", func() error { _, err := c.AttachVolume(ctx, free.ID, 7, ""); return err }, upstream.RefusalInvalid, "droplet_id"},
		{"detach unattached", func() error { _, err := c.DetachVolume(ctx, free.ID, nyc1[0], ""); return err }, upstream.RefusalInvalid, "droplet_id"},
		{"shrink", func() error { _, err := c.ResizeVolume(ctx, free.ID, 5, ""); return err }, upstream.RefusalTooSmall, "size_gigabytes"},
		{"grow past the max", func() error { _, err := c.ResizeVolume(ctx, free.ID, 16385, ""); return err }, upstream.RefusalInvalid, "size_gigabytes"},
		{"snapshot without a name", func() error {
			_, err := c.CreateVolumeSnapshot(ctx, free.ID, upstream.SnapshotCreateRequest{})
			return err
		}, upstream.RefusalInvalid, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			r, ok := upstream.AsRefusal(err)
			if !ok {
				t.Fatalf("error = %v, want a refusal", err)
			}
			if r.Code != tc.code || r.Field != tc.field || r.Message == "" || r.ID == "" {
				t.Errorf("refusal = %+v, want code %s on field %q with DigitalOcean's message and id", r, tc.code, tc.field)
			}
		})
	}
}
