package upstream

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Volume is a block storage volume. DropletIDs and Tags may be null upstream.
type Volume struct {
	ID              string   `json:"id,omitempty"`
	DropletIDs      []int    `json:"droplet_ids"`
	Name            string   `json:"name,omitempty"`
	Description     string   `json:"description,omitempty"`
	SizeGigabytes   int      `json:"size_gigabytes,omitempty"`
	CreatedAt       string   `json:"created_at,omitempty"`
	Tags            []string `json:"tags"`
	Region          *Region  `json:"region,omitempty"`
	FilesystemType  string   `json:"filesystem_type,omitempty"`
	FilesystemLabel string   `json:"filesystem_label,omitempty"`
}

// Region is the region object embedded in a volume; it may carry only Slug.
type Region struct {
	Name      string   `json:"name,omitempty"`
	Slug      string   `json:"slug,omitempty"`
	Features  []string `json:"features,omitempty"`
	Available *bool    `json:"available,omitempty"`
	Sizes     []string `json:"sizes,omitempty"`
}

// regionFields is Region without its UnmarshalJSONFrom.
type regionFields Region

// maxDecodedRegions bounds decodedRegions; DigitalOcean has about fifteen regions.
const maxDecodedRegions = 256

// decodedRegions are the regions decoded so far, by their exact JSON text.
var decodedRegions = struct {
	sync.RWMutex
	m map[string]Region
}{m: map[string]Region{}}

// UnmarshalJSONFrom decodes each distinct region object once per process:
// every volume of a page repeats its region's names, features and sizes (about
// 60% of a page's bytes and of its decoding). Regions found again share their
// Features and Sizes, which nothing writes. A region decoded into one already
// filled (a repeated key, which encoding/json merges) is decoded in place.
func (r *Region) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if r.Name != "" || r.Slug != "" || r.Features != nil || r.Available != nil || r.Sizes != nil {
		// Decoding into a slice reuses its array, which may be a shared region's.
		r.Features, r.Sizes = slices.Clone(r.Features), slices.Clone(r.Sizes)
		return jsonv2.UnmarshalDecode(dec, (*regionFields)(r))
	}
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	decodedRegions.RLock()
	known, ok := decodedRegions.m[string(raw)]
	decodedRegions.RUnlock()
	if ok {
		*r = known
		return nil
	}
	if err := jsonv2.Unmarshal(raw, (*regionFields)(r), dec.Options()); err != nil {
		return err
	}
	decodedRegions.Lock()
	if len(decodedRegions.m) < maxDecodedRegions {
		decodedRegions.m[string(raw)] = *r
	}
	decodedRegions.Unlock()
	return nil
}

const volumesPath = "/v2/volumes"

// The volume endpoints' labels in metrics and errors.
const (
	EndpointVolumes = "GET " + volumesPath
	EndpointVolume  = "GET " + volumesPath + "/{id}"
)

// VolumeResponse is the body of GET /v2/volumes/{id}.
type VolumeResponse struct {
	Volume *Volume `json:"volume"`
}

// VolumeListOptions filters and pages GET /v2/volumes. Region is not checked
// against the spec's stale enum (REFERENCE Q9).
type VolumeListOptions struct {
	ListOptions
	Name   string
	Region string
}

// VolumePage is one page of GET /v2/volumes.
type VolumePage struct {
	Volumes []Volume `json:"volumes"`
	Links   *Links   `json:"links,omitempty"`
	Meta    Meta     `json:"meta"`
}

// ListVolumes fetches one page of volumes, filtered by exact name and/or region.
func (c *Client) ListVolumes(ctx context.Context, opt VolumeListOptions) (*VolumePage, error) {
	q := opt.values()
	if opt.Name != "" {
		q.Set("name", opt.Name)
	}
	if opt.Region != "" {
		q.Set("region", opt.Region)
	}
	var page VolumePage
	if err := c.getJSON(ctx, EndpointVolumes, volumesPath, q, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// GetVolume fetches one volume by id.
func (c *Client) GetVolume(ctx context.Context, id string) (*Volume, error) {
	var body VolumeResponse
	if err := c.getJSON(ctx, EndpointVolume, volumesPath+"/"+url.PathEscape(id), nil, &body); err != nil {
		return nil, err
	}
	return present(body.Volume, EndpointVolume, http.StatusOK, "volume")
}

// VolumeCreateRequest is the body of POST /v2/volumes. Name and Region are
// required; SizeGigabytes (1 to 16,384) is left out when 0, as when the
// volume is made from SnapshotID. FilesystemLabel goes with FilesystemType
// (ext4 or xfs); an empty type leaves the volume unformatted.
type VolumeCreateRequest struct {
	Name            string   `json:"name"`
	Region          string   `json:"region"`
	SizeGigabytes   int      `json:"size_gigabytes,omitempty"`
	Description     string   `json:"description,omitempty"`
	SnapshotID      string   `json:"snapshot_id,omitempty"`
	FilesystemType  string   `json:"filesystem_type,omitempty"`
	FilesystemLabel string   `json:"filesystem_label,omitempty"`
	Tags            []string `json:"tags,omitempty"`
}

// CreateVolume creates a volume (201 {"volume": …}). It is sent once: see Outcome.
func (c *Client) CreateVolume(ctx context.Context, req VolumeCreateRequest) (*Volume, error) {
	var body VolumeResponse
	if err := c.call(ctx, EndpointCreateVolume, "/v2/volumes", nil, req, &body); err != nil {
		return nil, err
	}
	return present(body.Volume, EndpointCreateVolume, http.StatusCreated, "volume")
}

// DeleteVolume deletes a volume attached to no Droplet (204). It is sent once: see Outcome.
func (c *Client) DeleteVolume(ctx context.Context, id string) error {
	return c.call(ctx, EndpointDeleteVolume, "/v2/volumes/"+url.PathEscape(id), nil, nil, nil)
}
