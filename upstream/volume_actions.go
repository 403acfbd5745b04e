package upstream

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// The statuses of an action, as DigitalOcean spells them.
const (
	ActionInProgress = "in-progress"
	ActionCompleted  = "completed"
	ActionErrored    = "errored"
)

// VolumeActionRequest is the body of POST /v2/volumes/{id}/actions: Type is
// attach or detach (with DropletID) or resize (with SizeGigabytes). Region is
// the volume's region slug; DigitalOcean uses the volume's when it is empty.
type VolumeActionRequest struct {
	Type          string   `json:"type"`
	DropletID     int      `json:"droplet_id,omitempty"`
	SizeGigabytes int      `json:"size_gigabytes,omitempty"`
	Region        string   `json:"region,omitempty"`
	Tags          []string `json:"tags,omitempty"`
}

// VolumeAction is an asynchronous operation on a volume (attach_volume,
// detach_volume, resize_volume). CompletedAt is empty while it is in progress.
type VolumeAction struct {
	ID           int     `json:"id"`
	Status       string  `json:"status"`
	Type         string  `json:"type"`
	StartedAt    string  `json:"started_at,omitempty"`
	CompletedAt  string  `json:"completed_at,omitempty"`
	ResourceID   *int    `json:"resource_id,omitempty"`
	ResourceType string  `json:"resource_type,omitempty"`
	Region       *Region `json:"region,omitempty"`
	RegionSlug   string  `json:"region_slug,omitempty"`
}

// VolumeActionResponse is the body of an action (202 on POST, 200 on GET).
type VolumeActionResponse struct {
	Action *VolumeAction `json:"action"`
}

// VolumeActionPage is one page of GET /v2/volumes/{id}/actions.
type VolumeActionPage struct {
	Actions []VolumeAction `json:"actions"`
	Links   *Links         `json:"links,omitempty"`
	Meta    Meta           `json:"meta"`
}

// AttachVolume attaches a volume to a Droplet in its region. It is sent once: see Outcome.
func (c *Client) AttachVolume(ctx context.Context, volumeID string, dropletID int, region string) (*VolumeAction, error) {
	return c.postVolumeAction(ctx, volumeID, VolumeActionRequest{Type: "attach", DropletID: dropletID, Region: region})
}

// DetachVolume detaches a volume from a Droplet. It is sent once: see Outcome.
func (c *Client) DetachVolume(ctx context.Context, volumeID string, dropletID int, region string) (*VolumeAction, error) {
	return c.postVolumeAction(ctx, volumeID, VolumeActionRequest{Type: "detach", DropletID: dropletID, Region: region})
}

// ResizeVolume grows a volume to sizeGigabytes (volumes only grow). It is sent once: see Outcome.
func (c *Client) ResizeVolume(ctx context.Context, volumeID string, sizeGigabytes int, region string) (*VolumeAction, error) {
	return c.postVolumeAction(ctx, volumeID, VolumeActionRequest{Type: "resize", SizeGigabytes: sizeGigabytes, Region: region})
}

func (c *Client) postVolumeAction(ctx context.Context, volumeID string, req VolumeActionRequest) (*VolumeAction, error) {
	var body VolumeActionResponse
	if err := c.call(ctx, EndpointPostVolumeAction, "/v2/volumes/"+url.PathEscape(volumeID)+"/actions", nil, req, &body); err != nil {
		return nil, err
	}
	return present(body.Action, EndpointPostVolumeAction, http.StatusAccepted, "action")
}

// ListVolumeActions fetches one page of a volume's actions.
func (c *Client) ListVolumeActions(ctx context.Context, volumeID string, opt ListOptions) (*VolumeActionPage, error) {
	var page VolumeActionPage
	if err := c.getJSON(ctx, EndpointVolumeActions, "/v2/volumes/"+url.PathEscape(volumeID)+"/actions", opt.values(), &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// GetVolumeAction fetches one action of a volume. An actionID below 1 is
// refused before sending (KindRequest wrapping ErrInvalidID).
func (c *Client) GetVolumeAction(ctx context.Context, volumeID string, actionID int) (*VolumeAction, error) {
	if actionID < 1 {
		return nil, &Error{Endpoint: EndpointVolumeAction, Kind: KindRequest, Err: fmt.Errorf("action id %d: %w", actionID, ErrInvalidID)}
	}
	var body VolumeActionResponse
	path := "/v2/volumes/" + url.PathEscape(volumeID) + "/actions/" + strconv.Itoa(actionID)
	if err := c.getJSON(ctx, EndpointVolumeAction, path, nil, &body); err != nil {
		return nil, err
	}
	return present(body.Action, EndpointVolumeAction, http.StatusOK, "action")
}
