package upstream

import (
	"context"
	"net/http"
	"net/url"
)

// Snapshot is a volume snapshot. SizeGigabytes is the billable size, a float
// (e.g. 2.34); ResourceID is the volume it was taken from.
type Snapshot struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	CreatedAt     string   `json:"created_at,omitempty"`
	Regions       []string `json:"regions"`
	MinDiskSize   int      `json:"min_disk_size"`
	SizeGigabytes float64  `json:"size_gigabytes"`
	ResourceID    string   `json:"resource_id"`
	ResourceType  string   `json:"resource_type"`
	Tags          []string `json:"tags"`
}

// SnapshotCreateRequest is the body of POST /v2/volumes/{id}/snapshots.
type SnapshotCreateRequest struct {
	Name string   `json:"name"`
	Tags []string `json:"tags,omitempty"`
}

// SnapshotResponse is the body of one snapshot (201 on POST, 200 on GET).
type SnapshotResponse struct {
	Snapshot *Snapshot `json:"snapshot"`
}

// SnapshotPage is one page of GET /v2/volumes/{id}/snapshots.
type SnapshotPage struct {
	Snapshots []Snapshot `json:"snapshots"`
	Links     *Links     `json:"links,omitempty"`
	Meta      Meta       `json:"meta"`
}

// ListVolumeSnapshots fetches one page of the snapshots taken of a volume.
func (c *Client) ListVolumeSnapshots(ctx context.Context, volumeID string, opt ListOptions) (*SnapshotPage, error) {
	var page SnapshotPage
	if err := c.getJSON(ctx, EndpointVolumeSnapshots, "/v2/volumes/"+url.PathEscape(volumeID)+"/snapshots", opt.values(), &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// CreateVolumeSnapshot snapshots a volume. It is sent once: see Outcome.
func (c *Client) CreateVolumeSnapshot(ctx context.Context, volumeID string, req SnapshotCreateRequest) (*Snapshot, error) {
	var body SnapshotResponse
	if err := c.call(ctx, EndpointCreateVolumeSnapshot, "/v2/volumes/"+url.PathEscape(volumeID)+"/snapshots", nil, req, &body); err != nil {
		return nil, err
	}
	return present(body.Snapshot, EndpointCreateVolumeSnapshot, http.StatusCreated, "snapshot")
}

// GetVolumeSnapshot fetches a volume snapshot by id (GET /v2/volumes/snapshots/{snapshot_id}).
func (c *Client) GetVolumeSnapshot(ctx context.Context, snapshotID string) (*Snapshot, error) {
	var body SnapshotResponse
	if err := c.getJSON(ctx, EndpointVolumeSnapshot, "/v2/volumes/snapshots/"+url.PathEscape(snapshotID), nil, &body); err != nil {
		return nil, err
	}
	return present(body.Snapshot, EndpointVolumeSnapshot, http.StatusOK, "snapshot")
}

// DeleteVolumeSnapshot deletes a volume snapshot (204). It is sent once: see Outcome.
func (c *Client) DeleteVolumeSnapshot(ctx context.Context, snapshotID string) error {
	return c.call(ctx, EndpointDeleteVolumeSnapshot, "/v2/volumes/snapshots/"+url.PathEscape(snapshotID), nil, nil, nil)
}
