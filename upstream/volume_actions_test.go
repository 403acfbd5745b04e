package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

const specVolumeID = "7724db7c-e098-11e5-b522-000f53304e51"

func specAttachAction() *VolumeAction {
	return &VolumeAction{
		ID: 72531856, Status: ActionCompleted, Type: "attach_volume",
		StartedAt: "2020-11-12T17:51:03Z", CompletedAt: "2020-11-12T17:51:14Z",
		ResourceType: "volume", Region: specRegion("New York 1", "nyc1"), RegionSlug: "nyc1",
	}
}

func TestVolumeActionsSendTheSpecBodiesAndReadThe202(t *testing.T) {
	detach := &VolumeAction{
		ID: 68212773, Status: ActionInProgress, Type: "detach_volume", StartedAt: "2015-10-15T17:46:15Z",
		ResourceType: "backend", Region: specRegion("New York 1", "nyc1"), RegionSlug: "nyc1",
	}
	cases := []struct {
		name     string
		call     func(context.Context, *Client) (*VolumeAction, error)
		wantBody string // the spec's example (attach's without its optional tags)
		fixture  string
		want     *VolumeAction
	}{
		{"attach", func(ctx context.Context, c *Client) (*VolumeAction, error) {
			return c.AttachVolume(ctx, specVolumeID, 11612190, "nyc1")
		}, `{"type":"attach","droplet_id":11612190,"region":"nyc1"}`, "volume_action_attach.json", specAttachAction()},
		{"detach", func(ctx context.Context, c *Client) (*VolumeAction, error) {
			return c.DetachVolume(ctx, specVolumeID, 11612190, "nyc1")
		}, `{"type":"detach","droplet_id":11612190,"region":"nyc1"}`, "volume_action_detach.json", detach},
		{"resize", func(ctx context.Context, c *Client) (*VolumeAction, error) {
			return c.ResizeVolume(ctx, specVolumeID, 100, "nyc1")
		}, `{"type":"resize","size_gigabytes":100,"region":"nyc1"}`, "volume_action_attach.json", specAttachAction()},
		{"attach without a region", func(ctx context.Context, c *Client) (*VolumeAction, error) {
			return c.AttachVolume(ctx, specVolumeID, 11612190, "")
		}, `{"type":"attach","droplet_id":11612190}`, "volume_action_attach.json", specAttachAction()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.Handle("POST /v2/volumes/{id}/actions", serveJSON(http.StatusAccepted, fixture(t, tc.fixture)))
			c := newTestClient(t, do.URL, Config{})

			a, err := tc.call(context.Background(), c)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			assertEqual(t, "action", a, tc.want)
			r := do.seen()[0]
			if r.Method != http.MethodPost || r.URL.Path != "/v2/volumes/"+specVolumeID+"/actions" {
				t.Errorf("request = %s %s, want POST /v2/volumes/%s/actions", r.Method, r.URL.Path, specVolumeID)
			}
			var want any
			json.Unmarshal([]byte(tc.wantBody), &want)
			assertEqual(t, "request body", do.sentJSON(t, 0), want)
		})
	}
}

func TestListVolumeActionsDecodesSpecExample(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/volumes/{id}/actions", serveJSON(http.StatusOK, fixture(t, "volume_actions.json")))
	c := newTestClient(t, do.URL, Config{})

	page, err := c.ListVolumeActions(context.Background(), specVolumeID, ListOptions{Page: 2, PerPage: 1})
	if err != nil {
		t.Fatalf("ListVolumeActions: %v", err)
	}
	a := *specAttachAction()
	a.StartedAt, a.CompletedAt = "2020-11-21T21:51:09Z", "2020-11-21T21:51:09Z"
	assertEqual(t, "action page", page, &VolumeActionPage{Actions: []VolumeAction{a}, Links: &Links{}, Meta: Meta{Total: ptr(1)}})
	if u := do.seen()[0].URL; u.Path != "/v2/volumes/"+specVolumeID+"/actions" || u.RawQuery != "page=2&per_page=1" {
		t.Errorf("request = %s, want /v2/volumes/%s/actions?page=2&per_page=1", u, specVolumeID)
	}
}

func TestGetVolumeActionDecodesSpecExample(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/volumes/{id}/actions/{action_id}", serveJSON(http.StatusOK, fixture(t, "volume_action_attach.json")))
	c := newTestClient(t, do.URL, Config{})

	a, err := c.GetVolumeAction(context.Background(), specVolumeID, 72531856)
	if err != nil {
		t.Fatalf("GetVolumeAction: %v", err)
	}
	assertEqual(t, "action", a, specAttachAction())
	if p := do.seen()[0].URL.Path; p != "/v2/volumes/"+specVolumeID+"/actions/72531856" {
		t.Errorf("path = %q", p)
	}

	for _, id := range []int{0, -1} {
		if _, err := c.GetVolumeAction(context.Background(), specVolumeID, id); !errors.Is(err, ErrInvalidID) || asError(t, err).Kind != KindRequest {
			t.Errorf("GetVolumeAction(%d) = %v, want KindRequest wrapping ErrInvalidID", id, err)
		}
	}
	if n := len(do.seen()); n != 1 {
		t.Errorf("server saw %d requests, want 1: action ids below 1 are not sent", n)
	}
}
