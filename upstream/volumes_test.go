package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// specRegionNYC1 is the full region object of the spec's volume examples.
func specRegion(name, slug string) *Region {
	return &Region{
		Name: name, Slug: slug,
		Sizes:     []string{"s-1vcpu-1gb", "s-1vcpu-2gb", "s-1vcpu-3gb", "s-2vcpu-2gb", "s-3vcpu-1gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "s-6vcpu-16gb", "s-8vcpu-32gb", "s-12vcpu-48gb", "s-16vcpu-64gb", "s-20vcpu-96gb", "s-24vcpu-128gb", "s-32vcpu-192gb"},
		Features:  []string{"private_networking", "backups", "ipv6", "metadata"},
		Available: ptr(true),
	}
}

func specVolume(id string, region *Region, createdAt string) Volume {
	return Volume{
		ID: id, Region: region, DropletIDs: []int{}, Name: "example", Description: "Block store for examples",
		SizeGigabytes: 10, CreatedAt: createdAt, FilesystemType: "ext4", FilesystemLabel: "example",
		Tags: []string{"aninterestingtag"},
	}
}

func TestListVolumesDecodesSpecExamples(t *testing.T) {
	nyc1, nyc3 := specRegion("New York 1", "nyc1"), specRegion("New York 3", "nyc3")
	first := specVolume("506f78a4-e098-11e5-ad9f-000f53306ae1", nyc1, "2016-03-02T17:00:49Z")
	cases := []struct {
		name, fixture string
		opt           VolumeListOptions
		wantQuery     string
		want          *VolumePage
	}{
		{"all volumes", "volumes_all.json", VolumeListOptions{}, "", &VolumePage{
			Volumes: []Volume{first, specVolume("506f78a4-e098-11e5-ad9f-000f53305eb2", nyc3, "2016-03-02T17:01:49Z")},
			Links:   &Links{}, Meta: Meta{Total: ptr(2)},
		}},
		{"filtered by name", "volumes_filtered_by_name.json", VolumeListOptions{Name: "example"}, "name=example", &VolumePage{
			Volumes: []Volume{first}, Links: &Links{}, Meta: Meta{Total: ptr(1)},
		}},
		{"filtered by region", "volumes_filtered_by_region.json", VolumeListOptions{Region: "nyc1", ListOptions: ListOptions{Page: 1, PerPage: 20}}, "page=1&per_page=20&region=nyc1", &VolumePage{
			Volumes: []Volume{first}, Links: &Links{}, Meta: Meta{Total: ptr(1)},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.Handle("GET /v2/volumes", serveJSON(http.StatusOK, fixture(t, tc.fixture)))
			c := newTestClient(t, do.URL, Config{})

			page, err := c.ListVolumes(context.Background(), tc.opt)
			if err != nil {
				t.Fatalf("ListVolumes: %v", err)
			}
			assertEqual(t, "volume page", page, tc.want)
			if page.Links.HasNext() {
				t.Error(`HasNext() = true for "links": {}`)
			}
			if q := do.seen()[0].URL.RawQuery; q != tc.wantQuery {
				t.Errorf("query = %q, want %q", q, tc.wantQuery)
			}
		})
	}
}

func TestGetVolumeDecodesSpecExample(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/volumes/{id}", serveJSON(http.StatusOK, fixture(t, "volume.json")))
	c := newTestClient(t, do.URL, Config{})

	v, err := c.GetVolume(context.Background(), "506f78a4-e098-11e5-ad9f-000f53306ae1")
	if err != nil {
		t.Fatalf("GetVolume: %v", err)
	}
	want := specVolume("506f78a4-e098-11e5-ad9f-000f53306ae1", specRegion("New York 1", "nyc1"), "2020-03-02T17:00:49Z")
	want.Tags = nil // the spec's single-volume example has no tags
	assertEqual(t, "volume", v, &want)
	if p := do.seen()[0].URL.Path; p != "/v2/volumes/506f78a4-e098-11e5-ad9f-000f53306ae1" {
		t.Errorf("path = %q", p)
	}
}

func TestGetVolumeWithoutVolumeKeyIsADecodeError(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/volumes/{id}", serveJSON(http.StatusOK, []byte(`{}`)))
	c := newTestClient(t, do.URL, Config{})

	v, err := c.GetVolume(context.Background(), "x")
	e := asError(t, err)
	if v != nil || e.Kind != KindDecode || e.Status != http.StatusOK {
		t.Errorf("GetVolume on {} = %v, %v; want nil and a KindDecode error with status 200", v, err)
	}
}

// TestLargestRealPageFitsTheBodyLimit measures a page of 200 volumes (the most
// DigitalOcean serves) as full as real ones get, and checks the body limit
// leaves it room, and that a body past the limit is refused unread.
func TestLargestRealPageFitsTheBodyLimit(t *testing.T) {
	v := specVolume("506f78a4-e098-11e5-ad9f-000f53306ae1", specRegion("New York 1", "nyc1"), "2016-03-02T17:00:49Z")
	v.Name, v.Description = strings.Repeat("n", 64), strings.Repeat("d", 256)
	v.Tags = []string{"env:production", "team:storage", "app:oceangraph", "tier:db", "backup:daily"}
	v.DropletIDs = []int{123456789}
	page := VolumePage{Links: &Links{}, Meta: Meta{Total: ptr(200)}}
	for range 200 {
		page.Volumes = append(page.Volumes, v)
	}
	body, err := json.Marshal(page)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a full page of 200 volumes is %d bytes; the limit is %d", len(body), maxJSONBody)
	if len(body)*5 > maxJSONBody {
		t.Errorf("a full page (%d bytes) leaves less than 5x headroom under maxJSONBody (%d)", len(body), maxJSONBody)
	}

	do := newFakeDO(t)
	do.mux.Handle("GET /v2/volumes", serveJSON(http.StatusOK, body))
	do.mux.Handle("GET /v2/volumes/{id}", serveJSON(http.StatusOK, append(bytes.Repeat([]byte(" "), maxJSONBody), fixture(t, "volume.json")...)))
	c := newTestClient(t, do.URL, Config{})
	got, err := c.ListVolumes(context.Background(), VolumeListOptions{})
	if err != nil || len(got.Volumes) != 200 {
		t.Fatalf("ListVolumes of the full page: %d volumes, %v", len(got.Volumes), err)
	}
	_, err = c.GetVolume(context.Background(), v.ID)
	if e := asError(t, err); e.Kind != KindDecode || !strings.Contains(e.Error(), "larger than") {
		t.Errorf("a body past the limit: %v, want KindDecode naming the size", err)
	}
}

// specCreateRequests are the spec's three request examples of POST /v2/volumes.
var specCreateRequests = []struct {
	name string
	req  VolumeCreateRequest
	want string // the body the spec gives
}{
	{"ext4 volume", VolumeCreateRequest{SizeGigabytes: 10, Name: "ext4-example", Description: "Block store for examples", Region: "nyc1", FilesystemType: "ext4", FilesystemLabel: "ext4_volume_01"},
		`{"size_gigabytes":10,"name":"ext4-example","description":"Block store for examples","region":"nyc1","filesystem_type":"ext4","filesystem_label":"ext4_volume_01"}`},
	{"xfs volume", VolumeCreateRequest{SizeGigabytes: 10, Name: "xfs_example", Description: "Block store for examples", Region: "nyc1", FilesystemType: "xfs", FilesystemLabel: "xfs_volume01"},
		`{"size_gigabytes":10,"name":"xfs_example","description":"Block store for examples","region":"nyc1","filesystem_type":"xfs","filesystem_label":"xfs_volume01"}`},
	{"Volume from a snapshot", VolumeCreateRequest{SizeGigabytes: 10, Name: "snapshot_example", SnapshotID: "b0798135-fb76-11eb-946a-0a58ac146f33", Region: "nyc1", Description: "A new volume based on a snapshot", FilesystemType: "ext4", FilesystemLabel: "ext4_volume_01"},
		`{"size_gigabytes":10,"name":"snapshot_example","snapshot_id":"b0798135-fb76-11eb-946a-0a58ac146f33","region":"nyc1","description":"A new volume based on a snapshot","filesystem_type":"ext4","filesystem_label":"ext4_volume_01"}`},
	{"only what is required, with tags", VolumeCreateRequest{Name: "example", Region: "nyc1", Tags: []string{"aninterestingtag"}},
		`{"name":"example","region":"nyc1","tags":["aninterestingtag"]}`},
}

func TestCreateVolumeSendsTheSpecRequestAndReadsThe201(t *testing.T) {
	for _, tc := range specCreateRequests {
		t.Run(tc.name, func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.Handle("POST /v2/volumes", serveJSON(http.StatusCreated, fixture(t, "volume.json")))
			c := newTestClient(t, do.URL, Config{})

			v, err := c.CreateVolume(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("CreateVolume: %v", err)
			}
			want := specVolume("506f78a4-e098-11e5-ad9f-000f53306ae1", specRegion("New York 1", "nyc1"), "2020-03-02T17:00:49Z")
			want.Tags = nil
			assertEqual(t, "created volume", v, &want)
			reqs := do.seen()
			if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].URL.Path != "/v2/volumes" || reqs[0].URL.RawQuery != "" {
				t.Fatalf("requests = %d, first %s %s, want one POST /v2/volumes", len(reqs), reqs[0].Method, reqs[0].URL)
			}
			var wantBody any
			json.Unmarshal([]byte(tc.want), &wantBody)
			assertEqual(t, "request body", do.sentJSON(t, 0), wantBody)
		})
	}
}

func TestDeleteVolumeSendsNoBodyAndReadsThe204(t *testing.T) {
	do := newFakeDO(t)
	do.mux.HandleFunc("DELETE /v2/volumes/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeRateLimit(w)
		w.WriteHeader(http.StatusNoContent)
	})
	c := newTestClient(t, do.URL, Config{})

	if err := c.DeleteVolume(context.Background(), "7724db7c-e098-11e5-b522-000f53304e51"); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	r := do.seen()[0]
	if r.Method != http.MethodDelete || r.URL.Path != "/v2/volumes/7724db7c-e098-11e5-b522-000f53304e51" || r.ContentLength > 0 || r.Header.Get("Content-Type") != "" {
		t.Errorf("request = %s %s (length %d, type %q), want DELETE /v2/volumes/7724db7c-e098-11e5-b522-000f53304e51 without a body",
			r.Method, r.URL.Path, r.ContentLength, r.Header.Get("Content-Type"))
	}
}

func TestCreateVolumeWithoutVolumeKeyWasStillApplied(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("POST /v2/volumes", serveJSON(http.StatusCreated, []byte(`{}`)))
	c := newTestClient(t, do.URL, Config{})

	_, err := c.CreateVolume(context.Background(), VolumeCreateRequest{Name: "example", Region: "nyc1", SizeGigabytes: 10})
	if e := asError(t, err); e.Kind != KindDecode || e.Outcome != OutcomeApplied {
		t.Errorf("error = %v (outcome %v), want KindDecode with OutcomeApplied: DigitalOcean said 201", err, e.Outcome)
	}
}
