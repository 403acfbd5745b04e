package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oceangraph/oceangraph/upstream"
)

// send answers one request with a JSON body ("" for none) in-process.
func send(s *Sandbox, token, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// mustSend is send with testToken, failing unless the status is want.
func mustSend(t *testing.T, s *Sandbox, method, path, body string, want int) *httptest.ResponseRecorder {
	t.Helper()
	rec := send(s, testToken, method, path, body)
	if rec.Code != want {
		t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, body, rec.Code, want, rec.Body)
	}
	return rec
}

func decodeRec[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("body does not decode as %T: %v\n%s", v, err, rec.Body)
	}
	return v
}

// newWriteSandbox is a sandbox on a clock the test moves, actions lasting 2 s.
func newWriteSandbox(t *testing.T, opts Options) (*Sandbox, *testClock) {
	t.Helper()
	clock := newTestClock(fixedNow)
	opts.Now = clock.Now
	return New(opts), clock
}

// listAll reads every volume GET /v2/volumes lists for the token, and meta.total.
func listAll(t *testing.T, s *Sandbox, token string) ([]upstream.Volume, int) {
	t.Helper()
	rec := send(s, token, "GET", "/v2/volumes?per_page=200", "")
	if rec.Code != 200 {
		t.Fatalf("GET /v2/volumes: %d %s", rec.Code, rec.Body)
	}
	p := decodeRec[upstream.VolumePage](t, rec)
	if p.Links.HasNext() {
		t.Fatalf("more than 200 volumes: walk the pages")
	}
	return p.Volumes, *p.Meta.Total
}

func getVolume(t *testing.T, s *Sandbox, id string) upstream.Volume {
	t.Helper()
	return *decodeRec[upstream.VolumeResponse](t, mustSend(t, s, "GET", "/v2/volumes/"+id, "", 200)).Volume
}

// checkRefusal checks a refusal's status and DigitalOcean's error body.
func checkRefusal(t *testing.T, rec *httptest.ResponseRecorder, status int, id, message string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	e := decodeRec[upstream.ErrorBody](t, rec)
	if e.ID != id || !strings.Contains(e.Message, message) {
		t.Errorf("body %+v, want id %q and a message containing %q", e, id, message)
	}
	if e.RequestID == "" || e.RequestID != rec.Header().Get("X-Request-Id") {
		t.Errorf("request_id %q, x-request-id %q: want the same non-empty id", e.RequestID, rec.Header().Get("X-Request-Id"))
	}
}

// pickVolumes returns a generated volume attached to a Droplet and one that is not.
func pickVolumes(t *testing.T, a *Account) (attached, free upstream.Volume) {
	t.Helper()
	i := slices.IndexFunc(a.Volumes, func(v upstream.Volume) bool { return len(v.DropletIDs) > 0 })
	j := slices.IndexFunc(a.Volumes, func(v upstream.Volume) bool { return len(v.DropletIDs) == 0 })
	if i < 0 || j < 0 {
		t.Fatal("the generated account has no attached or no free volume")
	}
	return a.Volumes[i], a.Volumes[j]
}

const createBody = `{"size_gigabytes":10,"name":"ext4-example","description":"Block store for examples","region":"nyc1","filesystem_type":"ext4","filesystem_label":"ext4_volume_01","tags":["web"]}`

// TestCreateVolume: 201 with the volume, which then appears in the list (and
// meta.total), by id and by name, for this token only.
func TestCreateVolume(t *testing.T) {
	s, _ := newWriteSandbox(t, Options{})
	before, total := listAll(t, s, testToken)
	rec := mustSend(t, s, "POST", "/v2/volumes", createBody, http.StatusCreated)
	checkRateLimitHeaders(t, rec.Result())
	v := *decodeRec[upstream.VolumeResponse](t, rec).Volume
	if v.ID == "" || v.Name != "ext4-example" || v.SizeGigabytes != 10 || v.Description != "Block store for examples" ||
		v.FilesystemType != "ext4" || v.FilesystemLabel != "ext4_volume_01" || !slices.Equal(v.Tags, []string{"web"}) ||
		v.DropletIDs == nil || len(v.DropletIDs) != 0 || v.CreatedAt != fixedNow.Format(time.RFC3339) {
		t.Errorf("created volume %+v", v)
	}
	if v.Region == nil || v.Region.Slug != "nyc1" || v.Region.Name != "New York 1" || len(v.Region.Sizes) == 0 {
		t.Errorf("region %+v, want New York 1's full object", v.Region)
	}
	after, newTotal := listAll(t, s, testToken)
	if newTotal != total+1 || len(after) != len(before)+1 || after[len(after)-1].ID != v.ID {
		t.Errorf("after create: total %d (was %d), last listed %s; want one more, the new one last", newTotal, total, after[len(after)-1].ID)
	}
	if got := getVolume(t, s, v.ID); got.Name != v.Name || got.Region.Slug != "nyc1" {
		t.Errorf("GET /v2/volumes/%s = %+v", v.ID, got)
	}
	p := decodeRec[upstream.VolumePage](t, mustSend(t, s, "GET", "/v2/volumes?name=ext4-example&region=nyc1", "", 200))
	if *p.Meta.Total != 1 || p.Volumes[0].ID != v.ID {
		t.Errorf("by name and region: %+v", p)
	}
	if _, other := listAll(t, s, "another-token"); other == newTotal && send(s, "another-token", "GET", "/v2/volumes/"+v.ID, "").Code != 404 {
		t.Errorf("another token sees the created volume")
	}
	if rec := send(s, "another-token", "GET", "/v2/volumes/"+v.ID, ""); rec.Code != 404 {
		t.Errorf("another token: GET the created volume = %d, want 404", rec.Code)
	}
	// The same name is free in another region.
	mustSend(t, s, "POST", "/v2/volumes", strings.Replace(createBody, "nyc1", "ams3", 1), http.StatusCreated)
}

// TestCreateVolumeRefusals: each refusal DigitalOcean makes, with its
// status and body, and the account unchanged after them.
func TestCreateVolumeRefusals(t *testing.T) {
	s, _ := newWriteSandbox(t, Options{})
	taken := s.Account(testToken).Volumes[3]
	_, total := listAll(t, s, testToken)
	body := func(name string, size int, region string, extra string) string {
		return fmt.Sprintf(`{"name":%q,"size_gigabytes":%d,"region":%q%s}`, name, size, region, extra)
	}
	cases := []struct {
		name, body string
		status     int
		id, msg    string
	}{
		{"not JSON", `{"name":`, 400, "bad_request", "error parsing request body"},
		{"no body", ``, 400, "bad_request", "error parsing request body"},
		{"size of the wrong type", `{"name":"a","size_gigabytes":"ten","region":"nyc1"}`, 400, "bad_request", "error parsing request body"},
		{"no name", body("", 10, "nyc1", ""), 422, "unprocessable_entity", "name"},
		{"upper case", body("Data", 10, "nyc1", ""), 422, "unprocessable_entity", `name "Data" is invalid`},
		{"starts with a digit", body("1data", 10, "nyc1", ""), 422, "unprocessable_entity", "is invalid"},
		{"ends with -", body("data-", 10, "nyc1", ""), 422, "unprocessable_entity", "is invalid"},
		{"underscore", body("xfs_example", 10, "nyc1", ""), 422, "unprocessable_entity", "is invalid"},
		{"65 characters", body("a"+strings.Repeat("b", 64), 10, "nyc1", ""), 422, "unprocessable_entity", "at most 64"},
		{"size 0", body("data", 0, "nyc1", ""), 422, "unprocessable_entity", "size_gigabytes must be from 1 to 16384"},
		{"size negative", body("data", -5, "nyc1", ""), 422, "unprocessable_entity", "size_gigabytes must be from 1 to 16384"},
		{"size 16385", body("data", 16385, "nyc1", ""), 422, "unprocessable_entity", "size_gigabytes must be from 1 to 16384"},
		{"unknown region", body("data", 10, "xyz1", ""), 422, "unprocessable_entity", `region "xyz1" is not a valid region`},
		{"no region", body("data", 10, "", ""), 422, "unprocessable_entity", `region "" is not a valid region`},
		{"unknown filesystem", body("data", 10, "nyc1", `,"filesystem_type":"ntfs"`), 422, "unprocessable_entity", "filesystem_type"},
		{"label without filesystem", body("data", 10, "nyc1", `,"filesystem_label":"x"`), 422, "unprocessable_entity", "filesystem_label may only be used with filesystem_type"},
		{"ext4 label of 17", body("data", 10, "nyc1", `,"filesystem_type":"ext4","filesystem_label":"abcdefghijklmnopq"`), 422, "unprocessable_entity", "at most 16"},
		{"xfs label of 13", body("data", 10, "nyc1", `,"filesystem_type":"xfs","filesystem_label":"abcdefghijklm"`), 422, "unprocessable_entity", "at most 12"},
		{"unknown snapshot", body("data", 10, "nyc1", `,"snapshot_id":"b0798135-fb76-11eb-946a-0a58ac146f33"`), 422, "unprocessable_entity", "does not exist"},
		{"name taken in the region", body(taken.Name, 10, taken.Region.Slug, ""), 409, "conflict", "already exists in region " + taken.Region.Slug},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkRefusal(t, send(s, testToken, "POST", "/v2/volumes", c.body), c.status, c.id, c.msg)
		})
	}
	if _, after := listAll(t, s, testToken); after != total {
		t.Errorf("after refusals: %d volumes, want the %d of before", after, total)
	}
}

// TestDeleteVolume: 204 with no body and the volume gone (created or
// generated); 409 while attached; 404 for an unknown or deleted one; by name.
func TestDeleteVolume(t *testing.T) {
	s, _ := newWriteSandbox(t, Options{})
	attached, free := pickVolumes(t, s.Account(testToken))
	created := decodeRec[upstream.VolumeResponse](t, mustSend(t, s, "POST", "/v2/volumes", createBody, 201)).Volume
	_, total := listAll(t, s, testToken)

	for _, id := range []string{created.ID, free.ID} {
		rec := mustSend(t, s, "DELETE", "/v2/volumes/"+id, "", http.StatusNoContent)
		if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
			t.Errorf("DELETE %s: body %q, content type %q; want neither", id, rec.Body, rec.Header().Get("Content-Type"))
		}
		checkRateLimitHeaders(t, rec.Result())
		checkRefusal(t, send(s, testToken, "GET", "/v2/volumes/"+id, ""), 404, "not_found", "could not be found")
		checkRefusal(t, send(s, testToken, "DELETE", "/v2/volumes/"+id, ""), 404, "not_found", "could not be found")
	}
	vols, after := listAll(t, s, testToken)
	if after != total-2 || slices.ContainsFunc(vols, func(v upstream.Volume) bool { return v.ID == free.ID || v.ID == created.ID }) {
		t.Errorf("after two deletes: total %d (was %d); deleted ones still listed?", after, total)
	}
	checkRefusal(t, send(s, testToken, "DELETE", "/v2/volumes/"+attached.ID, ""), 409, "conflict",
		"A volume that's attached to a Droplet cannot be deleted. Please detach it first before deleting.")
	checkRefusal(t, send(s, testToken, "DELETE", "/v2/volumes/506f78a4-e098-11e5-ad9f-000f53306ae1", ""), 404, "not_found", "")

	t.Run("by name", func(t *testing.T) {
		mustSend(t, s, "POST", "/v2/volumes", createBody, 201)
		checkRefusal(t, send(s, testToken, "DELETE", "/v2/volumes?name=ext4-example", ""), 400, "bad_request", "name and region are required")
		checkRefusal(t, send(s, testToken, "DELETE", "/v2/volumes?name=ext4-example&region=ams3", ""), 404, "not_found", "")
		mustSend(t, s, "DELETE", "/v2/volumes?name=ext4-example&region=nyc1", "", http.StatusNoContent)
		if p := decodeRec[upstream.VolumePage](t, mustSend(t, s, "GET", "/v2/volumes?name=ext4-example", "", 200)); *p.Meta.Total != 0 {
			t.Errorf("after delete by name: %d volumes of that name", *p.Meta.Total)
		}
	})
}

// TestActionLifecycle: attach, detach and resize answer 202 in-progress,
// change the volume only once the delay has passed, then read completed.
func TestActionLifecycle(t *testing.T) {
	s, clock := newWriteSandbox(t, Options{})
	v := decodeRec[upstream.VolumeResponse](t, mustSend(t, s, "POST", "/v2/volumes", createBody, 201)).Volume
	droplet := ListedDroplets()["nyc1"][0]
	base := "/v2/volumes/" + v.ID + "/actions"

	step := func(body string, wantType string, check func(upstream.Volume) bool) actionWire {
		t.Helper()
		started := clock.Now()
		rec := mustSend(t, s, "POST", base, body, http.StatusAccepted)
		checkRateLimitHeaders(t, rec.Result())
		ac := decodeRec[actionResponse](t, rec).Action
		if ac.Status != "in-progress" || ac.Type != wantType || ac.CompletedAt != nil || ac.ResourceID != nil ||
			ac.ResourceType != "volume" || ac.RegionSlug != "nyc1" || ac.Region == nil || ac.Region.Slug != "nyc1" ||
			ac.StartedAt != started.Format(time.RFC3339) || ac.ID <= 0 {
			t.Errorf("POST %s: action %+v", body, ac)
		}
		clock.Advance(time.Second)
		if check(getVolume(t, s, v.ID)) {
			t.Errorf("%s: the volume changed before the action completed", wantType)
		}
		path := base + "/" + strconv.Itoa(ac.ID)
		if got := decodeRec[actionResponse](t, mustSend(t, s, "GET", path, "", 200)).Action; got.Status != "in-progress" {
			t.Errorf("GET %s after 1 s: %s, want in-progress", path, got.Status)
		}
		clock.Advance(time.Second)
		got := decodeRec[actionResponse](t, mustSend(t, s, "GET", path, "", 200)).Action
		if want := started.Add(DefaultActionDelay).Format(time.RFC3339); got.Status != "completed" || got.CompletedAt == nil || *got.CompletedAt != want {
			t.Errorf("GET %s after 2 s: %s completed_at %v, want completed at %s", path, got.Status, got.CompletedAt, want)
		}
		if !check(getVolume(t, s, v.ID)) {
			t.Errorf("%s completed but the volume is %+v", wantType, getVolume(t, s, v.ID))
		}
		return got
	}
	attach := step(fmt.Sprintf(`{"type":"attach","droplet_id":%d,"region":"nyc1","tags":["aninterestingtag"]}`, droplet), "attach_volume",
		func(v upstream.Volume) bool { return slices.Equal(v.DropletIDs, []int{droplet}) })
	if vols, _ := listAll(t, s, testToken); !slices.Equal(vols[len(vols)-1].DropletIDs, []int{droplet}) {
		t.Errorf("the list does not show the attachment: %+v", vols[len(vols)-1])
	}
	detach := step(fmt.Sprintf(`{"type":"detach","droplet_id":%d,"region":"nyc1"}`, droplet), "detach_volume",
		func(v upstream.Volume) bool { return len(v.DropletIDs) == 0 && v.DropletIDs != nil })
	resize := step(`{"type":"resize","size_gigabytes":100,"region":"nyc1"}`, "resize_volume",
		func(v upstream.Volume) bool { return v.SizeGigabytes == 100 })

	p := decodeRec[actionPage](t, mustSend(t, s, "GET", base, "", 200))
	if *p.Meta.Total != 3 || len(p.Actions) != 3 || p.Actions[0].ID != resize.ID || p.Actions[1].ID != detach.ID || p.Actions[2].ID != attach.ID {
		t.Errorf("GET %s: %+v, want the three actions newest first", base, p)
	}
	p = decodeRec[actionPage](t, mustSend(t, s, "GET", base+"?per_page=1&page=2", "", 200))
	if *p.Meta.Total != 3 || len(p.Actions) != 1 || p.Actions[0].ID != detach.ID || p.Links == nil || p.Links.Pages.Next == "" || p.Links.Pages.Prev == "" {
		t.Errorf("page 2 of 1: %+v", p)
	}
	checkRefusal(t, send(s, testToken, "GET", base+"/1", ""), 404, "not_found", "")
	checkRefusal(t, send(s, testToken, "GET", base+"/abc", ""), 404, "not_found", "")
	mustSend(t, s, "DELETE", "/v2/volumes/"+v.ID, "", http.StatusNoContent)
	checkRefusal(t, send(s, testToken, "GET", base, ""), 404, "not_found", "")
}

// TestGeneratedVolumeActions: a generated volume starts with no actions,
// and a write changes it as it would a created one.
func TestGeneratedVolumeActions(t *testing.T) {
	s, _ := newWriteSandbox(t, Options{ActionDelay: -1})
	attached, _ := pickVolumes(t, s.Account(testToken))
	base := "/v2/volumes/" + attached.ID + "/actions"
	if p := decodeRec[actionPage](t, mustSend(t, s, "GET", base, "", 200)); *p.Meta.Total != 0 || p.Actions == nil {
		t.Errorf("a generated volume's actions: %+v, want an empty list", p)
	}
	d := attached.DropletIDs[0]
	mustSend(t, s, "POST", base, fmt.Sprintf(`{"type":"detach","droplet_id":%d}`, d), 202)
	if v := getVolume(t, s, attached.ID); len(v.DropletIDs) != 0 {
		t.Errorf("after detach (no delay): %v", v.DropletIDs)
	}
	// Its Droplet, learnt from droplet_ids, takes it back.
	mustSend(t, s, "POST", base, fmt.Sprintf(`{"type":"attach","droplet_id":%d}`, d), 202)
	if v := getVolume(t, s, attached.ID); !slices.Equal(v.DropletIDs, []int{d}) {
		t.Errorf("after attach (no delay): %v", v.DropletIDs)
	}
	if a := s.Account(testToken).Volume(attached.ID); !slices.Equal(a.DropletIDs, attached.DropletIDs) {
		t.Errorf("the generated Account changed: %v", a.DropletIDs)
	}
}

// TestActionRefusals: each refusal of an action, status and body, and the
// volume unchanged after it.
func TestActionRefusals(t *testing.T) {
	s, clock := newWriteSandbox(t, Options{})
	a := s.Account(testToken)
	attached, free := pickVolumes(t, a)
	here := ListedDroplets()[free.Region.Slug][0]
	var elsewhere int
	for slug, ids := range ListedDroplets() {
		if slug != free.Region.Slug {
			elsewhere = ids[0]
		}
	}
	path := func(v upstream.Volume) string { return "/v2/volumes/" + v.ID + "/actions" }
	cases := []struct {
		name, path, body string
		status           int
		id, msg          string
	}{
		{"unknown volume", "/v2/volumes/506f78a4-e098-11e5-ad9f-000f53306ae1/actions", `{"type":"resize","size_gigabytes":100}`, 404, "not_found", "could not be found"},
		{"not JSON", path(free), `{"type":`, 400, "bad_request", "error parsing request body"},
		{"unknown type", path(free), `{"type":"format"}`, 422, "unprocessable_entity", `type "format" is not an action a volume takes`},
		{"no type", path(free), `{"droplet_id":1}`, 422, "unprocessable_entity", `type "" is not an action a volume takes`},
		{"another region", path(free), fmt.Sprintf(`{"type":"attach","droplet_id":%d,"region":"zzz9"}`, here), 422, "unprocessable_entity", "not zzz9"},
		{"attach without a Droplet", path(free), `{"type":"attach"}`, 422, "unprocessable_entity", "droplet_id is required"},
		{"attach an unknown Droplet", path(free), `{"type":"attach","droplet_id":12345}`, 422, "unprocessable_entity", "Droplet 12345 was not found"},
		{"attach a Droplet of another region", path(free), fmt.Sprintf(`{"type":"attach","droplet_id":%d}`, elsewhere), 422, "unprocessable_entity", "is in another region"},
		{"attach an attached volume", path(attached), fmt.Sprintf(`{"type":"attach","droplet_id":%d}`, ListedDroplets()[attached.Region.Slug][0]), 422, "unprocessable_entity", "already attached"},
		{"detach a free volume", path(free), fmt.Sprintf(`{"type":"detach","droplet_id":%d}`, here), 422, "unprocessable_entity", "Attachment not found"},
		{"detach from another Droplet", path(attached), fmt.Sprintf(`{"type":"detach","droplet_id":%d}`, here), 422, "unprocessable_entity", "Attachment not found"},
		{"resize down", path(free), fmt.Sprintf(`{"type":"resize","size_gigabytes":%d}`, free.SizeGigabytes-1), 422, "unprocessable_entity", "only be resized upwards"},
		{"resize to the same size", path(free), fmt.Sprintf(`{"type":"resize","size_gigabytes":%d}`, free.SizeGigabytes), 422, "unprocessable_entity", "only be resized upwards"},
		{"resize past 16 TiB", path(free), `{"type":"resize","size_gigabytes":16385}`, 422, "unprocessable_entity", "at most 16384"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkRefusal(t, send(s, testToken, "POST", c.path, c.body), c.status, c.id, c.msg)
		})
	}
	if got := getVolume(t, s, free.ID); got.SizeGigabytes != free.SizeGigabytes || len(got.DropletIDs) != 0 {
		t.Errorf("after refusals the volume is %+v", got)
	}

	t.Run("one action at a time", func(t *testing.T) {
		mustSend(t, s, "POST", path(free), fmt.Sprintf(`{"type":"attach","droplet_id":%d}`, here), 202)
		checkRefusal(t, send(s, testToken, "POST", path(free), `{"type":"resize","size_gigabytes":16000}`), 422, "unprocessable_entity", "Volume already has a pending event.")
		checkRefusal(t, send(s, testToken, "DELETE", "/v2/volumes/"+free.ID, ""), 422, "unprocessable_entity", "Volume already has a pending event.")
		clock.Advance(DefaultActionDelay)
		checkRefusal(t, send(s, testToken, "DELETE", "/v2/volumes/"+free.ID, ""), 409, "conflict", "attached to a Droplet")
		mustSend(t, s, "POST", path(free), `{"type":"resize","size_gigabytes":16000}`, 202)
	})
	t.Run("fifteen volumes a Droplet", func(t *testing.T) {
		d := ListedDroplets()["fra1"][1]
		for i := range maxDropletVolumes + 1 {
			rec := mustSend(t, s, "POST", "/v2/volumes", fmt.Sprintf(`{"name":"many-%d","size_gigabytes":1,"region":"fra1"}`, i), 201)
			id := decodeRec[upstream.VolumeResponse](t, rec).Volume.ID
			rec = send(s, testToken, "POST", "/v2/volumes/"+id+"/actions", fmt.Sprintf(`{"type":"attach","droplet_id":%d}`, d))
			if i < maxDropletVolumes && rec.Code != 202 {
				t.Fatalf("attach volume %d: %d %s", i+1, rec.Code, rec.Body)
			}
			if i == maxDropletVolumes {
				checkRefusal(t, rec, 422, "unprocessable_entity", "already has 15 volumes attached")
			}
		}
	})
}

// TestActionsErrored: with error_rate 1 an action ends errored and changes nothing.
func TestActionsErrored(t *testing.T) {
	s, clock := newWriteSandbox(t, Options{ActionErrorRate: 1})
	_, free := pickVolumes(t, s.Account(testToken))
	rec := mustSend(t, s, "POST", "/v2/volumes/"+free.ID+"/actions", `{"type":"resize","size_gigabytes":16384}`, 202)
	ac := decodeRec[actionResponse](t, rec).Action
	clock.Advance(DefaultActionDelay)
	got := decodeRec[actionResponse](t, mustSend(t, s, "GET", "/v2/volumes/"+free.ID+"/actions/"+strconv.Itoa(ac.ID), "", 200)).Action
	if got.Status != "errored" || got.CompletedAt == nil {
		t.Errorf("action %+v, want errored with completed_at", got)
	}
	if v := getVolume(t, s, free.ID); v.SizeGigabytes != free.SizeGigabytes {
		t.Errorf("an errored resize changed the size to %d", v.SizeGigabytes)
	}
}

// TestActionDelayKnobs: 2 s by default, at once with a negative Options
// value, and changed over HTTP for the actions started after.
func TestActionDelayKnobs(t *testing.T) {
	if d := New(Options{}).ActionKnobs().Delay; d != 2*time.Second {
		t.Errorf("default delay %v, want 2s", d)
	}
	s, clock := newWriteSandbox(t, Options{ActionDelay: -1})
	if d := s.ActionKnobs().Delay; d != 0 {
		t.Errorf("Options.ActionDelay -1 gives %v, want 0", d)
	}
	_, free := pickVolumes(t, s.Account(testToken))
	resize := func(size int) actionWire {
		rec := mustSend(t, s, "POST", "/v2/volumes/"+free.ID+"/actions", fmt.Sprintf(`{"type":"resize","size_gigabytes":%d}`, size), 202)
		if ac := decodeRec[actionResponse](t, rec).Action; ac.Status != "in-progress" {
			t.Errorf("POST answers %s, want in-progress whatever the delay", ac.Status)
		}
		return decodeRec[actionResponse](t, mustSend(t, s, "GET", "/v2/volumes/"+free.ID+"/actions/"+strconv.Itoa(decodeRec[actionResponse](t, rec).Action.ID), "", 200)).Action
	}
	if ac := resize(free.SizeGigabytes + 1); ac.Status != "completed" || *ac.CompletedAt != ac.StartedAt {
		t.Errorf("with no delay: %+v, want completed at once", ac)
	}

	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, body := do(t, srv, "GET", "", "/_sandbox/actions", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"delay":"0s","error_rate":0}` {
		t.Errorf("GET /_sandbox/actions: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, srv, "PUT", "", "/_sandbox/actions", strings.NewReader(`{"delay":"5s","error_rate":0.25}`))
	if resp.StatusCode != 200 || s.ActionKnobs() != (ActionKnobs{Delay: 5 * time.Second, ErrorRate: 0.25}) {
		t.Errorf("PUT /_sandbox/actions: %d %s; knobs %+v", resp.StatusCode, body, s.ActionKnobs())
	}
	for _, bad := range []string{`{"delay":"soon"}`, `{"delay":"-1s"}`, `{"error_rate":2}`, `{"dealy":"1s"}`} {
		if resp, body := do(t, srv, "PUT", "", "/_sandbox/actions", strings.NewReader(bad)); resp.StatusCode != 400 {
			t.Errorf("PUT /_sandbox/actions %s: %d %s, want 400", bad, resp.StatusCode, body)
		}
	}
	s.SetActionKnobs(ActionKnobs{Delay: 5 * time.Second})
	if ac := resize(free.SizeGigabytes + 2); ac.Status != "in-progress" {
		t.Errorf("with a 5 s delay, at once: %s", ac.Status)
	}
	clock.Advance(5 * time.Second)
	if v := getVolume(t, s, free.ID); v.SizeGigabytes != free.SizeGigabytes+2 {
		t.Errorf("after 5 s: size %d, want %d", v.SizeGigabytes, free.SizeGigabytes+2)
	}
}

// TestSnapshots: a snapshot appears under its volume and by id, outlives its
// volume, makes a new volume, and goes away when deleted.
func TestSnapshots(t *testing.T) {
	s, _ := newWriteSandbox(t, Options{})
	_, free := pickVolumes(t, s.Account(testToken))
	base := "/v2/volumes/" + free.ID + "/snapshots"
	if p := decodeRec[snapshotPage](t, mustSend(t, s, "GET", base, "", 200)); *p.Meta.Total != 0 || p.Snapshots == nil {
		t.Errorf("a generated volume's snapshots: %+v, want an empty list", p)
	}
	rec := mustSend(t, s, "POST", base, `{"name":"big-data-snapshot1475261774","tags":["aninterestingtag"]}`, http.StatusCreated)
	snap := *decodeRec[snapshotResponse](t, rec).Snapshot
	if snap.ID == "" || snap.Name != "big-data-snapshot1475261774" || !slices.Equal(snap.Regions, []string{free.Region.Slug}) ||
		snap.CreatedAt != fixedNow.Format(time.RFC3339) || snap.ResourceID != free.ID || snap.ResourceType != "volume" ||
		snap.MinDiskSize != free.SizeGigabytes || !slices.Equal(snap.Tags, []string{"aninterestingtag"}) {
		t.Errorf("snapshot %+v", snap)
	}
	second := *decodeRec[snapshotResponse](t, mustSend(t, s, "POST", base, `{"name":"second"}`, 201)).Snapshot
	if second.Tags == nil {
		t.Errorf("tags null, want []")
	}
	p := decodeRec[snapshotPage](t, mustSend(t, s, "GET", base, "", 200))
	if *p.Meta.Total != 2 || p.Snapshots[0].ID != snap.ID || p.Snapshots[1].ID != second.ID {
		t.Errorf("GET %s: %+v, want both, oldest first", base, p)
	}
	if got := *decodeRec[snapshotResponse](t, mustSend(t, s, "GET", "/v2/volumes/snapshots/"+snap.ID, "", 200)).Snapshot; got.Name != snap.Name {
		t.Errorf("by id: %+v", got)
	}
	checkRefusal(t, send(s, testToken, "POST", base, `{"tags":["x"]}`), 422, "unprocessable_entity", "name is required")
	checkRefusal(t, send(s, testToken, "POST", "/v2/volumes/506f78a4-e098-11e5-ad9f-000f53306ae1/snapshots", `{"name":"x"}`), 404, "not_found", "")
	checkRefusal(t, send(s, testToken, "GET", "/v2/volumes/506f78a4-e098-11e5-ad9f-000f53306ae1/snapshots", ""), 404, "not_found", "")
	checkRefusal(t, send(s, "another-token", "GET", "/v2/volumes/snapshots/"+snap.ID, ""), 404, "not_found", "")

	// A volume from the snapshot: its size by default, in its region only.
	body := fmt.Sprintf(`{"name":"restored","region":%q,"snapshot_id":%q}`, free.Region.Slug, snap.ID)
	restored := *decodeRec[upstream.VolumeResponse](t, mustSend(t, s, "POST", "/v2/volumes", body, 201)).Volume
	if restored.SizeGigabytes != free.SizeGigabytes {
		t.Errorf("restored size %d, want the snapshot's %d", restored.SizeGigabytes, free.SizeGigabytes)
	}
	other := "ams3"
	if free.Region.Slug == other {
		other = "nyc1"
	}
	checkRefusal(t, send(s, testToken, "POST", "/v2/volumes", fmt.Sprintf(`{"name":"elsewhere","region":%q,"snapshot_id":%q}`, other, snap.ID)), 422, "unprocessable_entity", "is in another region")
	checkRefusal(t, send(s, testToken, "POST", "/v2/volumes", fmt.Sprintf(`{"name":"small","region":%q,"snapshot_id":%q,"size_gigabytes":%d}`, free.Region.Slug, snap.ID, free.SizeGigabytes-1)), 422, "unprocessable_entity", "min_disk_size")

	mustSend(t, s, "DELETE", "/v2/volumes/"+free.ID, "", 204)
	mustSend(t, s, "GET", "/v2/volumes/snapshots/"+snap.ID, "", 200) // outlives its volume
	rec = mustSend(t, s, "DELETE", "/v2/volumes/snapshots/"+snap.ID, "", http.StatusNoContent)
	if rec.Body.Len() != 0 {
		t.Errorf("DELETE snapshot: body %q", rec.Body)
	}
	checkRefusal(t, send(s, testToken, "GET", "/v2/volumes/snapshots/"+snap.ID, ""), 404, "not_found", "")
	checkRefusal(t, send(s, testToken, "DELETE", "/v2/volumes/snapshots/"+snap.ID, ""), 404, "not_found", "")
}

// TestUnwrittenAccountsAnswerAsBefore: another token's writes leave a
// token's answers byte for byte those of a sandbox nobody wrote to.
func TestUnwrittenAccountsAnswerAsBefore(t *testing.T) {
	written, _ := newWriteSandbox(t, Options{ActionDelay: -1})
	fresh, _ := newWriteSandbox(t, Options{})
	_, free := pickVolumes(t, written.Account("writer"))
	send(written, "writer", "POST", "/v2/volumes", createBody)
	send(written, "writer", "DELETE", "/v2/volumes/"+free.ID, "")
	v := fresh.Account(testToken).Volumes[5]
	for _, path := range []string{"/v2/volumes?per_page=200", "/v2/volumes?region=nyc1", "/v2/volumes/" + v.ID,
		"/v2/volumes/" + v.ID + "/actions", "/v2/volumes/" + v.ID + "/snapshots"} {
		got, want := send(written, testToken, "GET", path, ""), send(fresh, testToken, "GET", path, "")
		if got.Code != want.Code || got.Body.String() != want.Body.String() {
			t.Errorf("GET %s: %d %.200s\nwant %d %.200s", path, got.Code, got.Body, want.Code, want.Body)
		}
	}
	if written.states.get(testToken, false) != nil {
		t.Errorf("reads made a state for a token nobody wrote with")
	}
}

// TestWriteCaps: past each per-account cap a 422 says so, and deleting frees room.
func TestWriteCaps(t *testing.T) {
	s, _ := newWriteSandbox(t, Options{ActionDelay: -1})
	s.limits = stateLimits{volumes: 2, actions: 3, snapshots: 2}
	var ids []string
	for i := range 2 {
		rec := mustSend(t, s, "POST", "/v2/volumes", fmt.Sprintf(`{"name":"cap-%d","size_gigabytes":1,"region":"nyc1"}`, i), 201)
		ids = append(ids, decodeRec[upstream.VolumeResponse](t, rec).Volume.ID)
	}
	checkRefusal(t, send(s, testToken, "POST", "/v2/volumes", `{"name":"cap-2","size_gigabytes":1,"region":"nyc1"}`), 422, "unprocessable_entity", "already holds 2 created volumes, its limit")

	for size := 2; size <= 4; size++ {
		mustSend(t, s, "POST", "/v2/volumes/"+ids[0]+"/actions", fmt.Sprintf(`{"type":"resize","size_gigabytes":%d}`, size), 202)
	}
	checkRefusal(t, send(s, testToken, "POST", "/v2/volumes/"+ids[1]+"/actions", `{"type":"resize","size_gigabytes":9}`), 422, "unprocessable_entity", "already holds 3 volume actions, its limit")

	for i := range 2 {
		mustSend(t, s, "POST", "/v2/volumes/"+ids[1]+"/snapshots", fmt.Sprintf(`{"name":"s%d"}`, i), 201)
	}
	checkRefusal(t, send(s, testToken, "POST", "/v2/volumes/"+ids[1]+"/snapshots", `{"name":"s2"}`), 422, "unprocessable_entity", "already holds 2 snapshots, its limit")

	mustSend(t, s, "DELETE", "/v2/volumes/"+ids[0], "", 204) // frees a volume and its three actions
	mustSend(t, s, "POST", "/v2/volumes", `{"name":"cap-2","size_gigabytes":1,"region":"nyc1"}`, 201)
	mustSend(t, s, "POST", "/v2/volumes/"+ids[1]+"/actions", `{"type":"resize","size_gigabytes":9}`, 202)
}

// TestWrittenAccountsAreBounded: past MaxWrittenAccounts the least recently
// used account forgets its writes.
func TestWrittenAccountsAreBounded(t *testing.T) {
	s, _ := newWriteSandbox(t, Options{MaxWrittenAccounts: 2})
	_, base := listAll(t, s, "a")
	for _, token := range []string{"a", "b", "c"} {
		if rec := send(s, token, "POST", "/v2/volumes", createBody); rec.Code != 201 {
			t.Fatalf("%s: create %d %s", token, rec.Code, rec.Body)
		}
	}
	if _, n := listAll(t, s, "a"); n != base {
		t.Errorf("token a, evicted: %d volumes, want the generated %d", n, base)
	}
	if _, n := listAll(t, s, "c"); n != len(s.Account("c").Volumes)+1 {
		t.Errorf("token c: %d volumes, want its created one too", n)
	}
	if s.states.cache.Len() != 2 {
		t.Errorf("%d accounts hold writes, want at most 2", s.states.cache.Len())
	}
}

// TestConcurrentWrites runs creates, actions, snapshots and reads of one
// account at once (run with -race): one of the same-named creates wins, and
// every other lands.
func TestConcurrentWrites(t *testing.T) {
	s, _ := newWriteSandbox(t, Options{ActionDelay: -1})
	_, base := listAll(t, s, testToken)
	const n = 24
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			rec := send(s, testToken, "POST", "/v2/volumes", fmt.Sprintf(`{"name":"par-%d","size_gigabytes":1,"region":"lon1"}`, i))
			if rec.Code != 201 {
				t.Errorf("create par-%d: %d %s", i, rec.Code, rec.Body)
				return
			}
			id := decodeRec[upstream.VolumeResponse](t, rec).Volume.ID
			if rec := send(s, testToken, "POST", "/v2/volumes/"+id+"/actions", `{"type":"resize","size_gigabytes":2}`); rec.Code != 202 {
				t.Errorf("resize: %d %s", rec.Code, rec.Body)
			}
			if rec := send(s, testToken, "POST", "/v2/volumes/"+id+"/snapshots", `{"name":"snap"}`); rec.Code != 201 {
				t.Errorf("snapshot: %d %s", rec.Code, rec.Body)
			}
		})
		wg.Go(func() {
			statuses[i] = send(s, testToken, "POST", "/v2/volumes", `{"name":"same","size_gigabytes":1,"region":"lon1"}`).Code
		})
		wg.Go(func() { listAll(t, s, testToken) })
	}
	wg.Wait()
	if slices.Sort(statuses); statuses[0] != 201 || statuses[1] != 409 || statuses[n-1] != 409 {
		t.Errorf("same-named creates answered %v, want one 201 and the rest 409", statuses)
	}
	vols, total := listAll(t, s, testToken)
	if total != base+n+1 {
		t.Errorf("%d volumes, want %d", total, base+n+1)
	}
	for _, v := range vols {
		if strings.HasPrefix(v.Name, "par-") && v.SizeGigabytes != 2 {
			t.Errorf("%s: size %d, want 2 after its resize", v.Name, v.SizeGigabytes)
		}
	}
}

// TestWritesAreCounted: each write is counted once under its method and
// route, so tests can assert that exactly one POST was sent.
func TestWritesAreCounted(t *testing.T) {
	s, _ := newWriteSandbox(t, Options{ActionDelay: -1})
	v := decodeRec[upstream.VolumeResponse](t, mustSend(t, s, "POST", "/v2/volumes", createBody, 201)).Volume
	ac := decodeRec[actionResponse](t, mustSend(t, s, "POST", "/v2/volumes/"+v.ID+"/actions", `{"type":"resize","size_gigabytes":20}`, 202)).Action
	mustSend(t, s, "GET", "/v2/volumes/"+v.ID+"/actions", "", 200)
	mustSend(t, s, "GET", "/v2/volumes/"+v.ID+"/actions/"+strconv.Itoa(ac.ID), "", 200)
	snap := decodeRec[snapshotResponse](t, mustSend(t, s, "POST", "/v2/volumes/"+v.ID+"/snapshots", `{"name":"s"}`, 201)).Snapshot
	mustSend(t, s, "GET", "/v2/volumes/"+v.ID+"/snapshots", "", 200)
	mustSend(t, s, "GET", "/v2/volumes/snapshots/"+snap.ID, "", 200)
	mustSend(t, s, "DELETE", "/v2/volumes/snapshots/"+snap.ID, "", 204)
	mustSend(t, s, "DELETE", "/v2/volumes/"+v.ID, "", 204)
	send(s, testToken, "DELETE", "/v2/volumes?name=nope&region=nyc1", "")
	send(s, testToken, "PATCH", "/v2/volumes/"+v.ID, "")
	want := map[string]int{
		"POST /v2/volumes": 1, "POST /v2/volumes/{id}/actions": 1, "GET /v2/volumes/{id}/actions": 1,
		"GET /v2/volumes/{id}/actions/{action_id}": 1, "POST /v2/volumes/{id}/snapshots": 1,
		"GET /v2/volumes/{id}/snapshots": 1, "GET /v2/volumes/snapshots/{snapshot_id}": 1,
		"DELETE /v2/volumes/snapshots/{snapshot_id}": 1, "DELETE /v2/volumes/{id}": 1, "DELETE /v2/volumes": 1,
		"PATCH /v2/volumes/{id}": 1,
	}
	if got := s.Counts(); !mapsEqual(got, want) {
		t.Errorf("Counts() = %v\nwant %v", got, want)
	}
	if rec := send(s, testToken, "PATCH", "/v2/volumes", ""); rec.Code != 405 || rec.Header().Get("Allow") != "DELETE, GET, POST" {
		t.Errorf("PATCH /v2/volumes: %d Allow %q, want 405 with DELETE, GET, POST", rec.Code, rec.Header().Get("Allow"))
	}
	if rec := send(s, testToken, "GET", "/v2/volumes/"+v.ID+"/backups", ""); rec.Code != 404 || s.Counts()["GET (unknown path)"] != 1 {
		t.Errorf("GET an unknown sub-resource: %d, counted %v", rec.Code, s.Counts())
	}
}

// TestListedDroplets: two per catalog region, attachable from any account,
// and the README lists every one.
func TestListedDroplets(t *testing.T) {
	listed := ListedDroplets()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("README: %v", err)
	}
	for _, r := range regionCatalog {
		ids := listed[r.slug]
		if len(ids) != 2 {
			t.Errorf("%s: %v, want two Droplets", r.slug, ids)
		}
		for _, id := range ids {
			if !strings.Contains(string(readme), strconv.Itoa(id)) {
				t.Errorf("the README does not list Droplet %d (%s)", id, r.slug)
			}
		}
	}
	s, _ := newWriteSandbox(t, Options{ActionDelay: -1})
	for _, token := range []string{"one", "two"} {
		id := decodeRec[upstream.VolumeResponse](t, send(s, token, "POST", "/v2/volumes", `{"name":"x","size_gigabytes":1,"region":"syd1"}`)).Volume.ID
		if rec := send(s, token, "POST", "/v2/volumes/"+id+"/actions", fmt.Sprintf(`{"type":"attach","droplet_id":%d}`, listed["syd1"][1])); rec.Code != 202 {
			t.Errorf("%s: attach to a listed Droplet: %d %s", token, rec.Code, rec.Body)
		}
	}
}

// TestActionsLeaveNoGoroutine: 300 actions waiting an hour hold no
// goroutine; they end when the clock says so, read lazily.
func TestActionsLeaveNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, clock := newWriteSandbox(t, Options{ActionDelay: time.Hour})
	s.limits.volumes = 300
	ids := make([]string, 0, 300)
	for i := range 300 {
		rec := mustSend(t, s, "POST", "/v2/volumes", fmt.Sprintf(`{"name":"v%d","size_gigabytes":1,"region":"tor1"}`, i), 201)
		id := decodeRec[upstream.VolumeResponse](t, rec).Volume.ID
		mustSend(t, s, "POST", "/v2/volumes/"+id+"/actions", `{"type":"resize","size_gigabytes":2}`, 202)
		ids = append(ids, id)
	}
	if v := getVolume(t, s, ids[0]); v.SizeGigabytes != 1 {
		t.Errorf("size %d before the hour is up, want 1", v.SizeGigabytes)
	}
	clock.Advance(time.Hour)
	for _, id := range []string{ids[0], ids[299]} {
		if v := getVolume(t, s, id); v.SizeGigabytes != 2 {
			t.Errorf("size %d after the hour, want 2", v.SizeGigabytes)
		}
	}
}

// TestHangAfterWrite: the write happens, then its answer never comes until
// the client gives up (a timeout whose write did happen); refusals and reads
// are not held.
func TestHangAfterWrite(t *testing.T) {
	s, srv := newTestServer(t, Options{HangAfterWrite: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v2/volumes", strings.NewReader(createBody))
	req.Header.Set("Authorization", "Bearer "+testToken)
	if resp, err := srv.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("POST with hang_after_write: %v %v, want the client's deadline", resp, err)
	}
	if resp, body := do(t, srv, "POST", testToken, "/v2/volumes", strings.NewReader(createBody)); resp.StatusCode != 409 {
		t.Errorf("a refused write: %d %s, want 409 at once", resp.StatusCode, body)
	}
	resp, body := get(t, srv, testToken, "/v2/volumes?name=ext4-example&region=nyc1")
	if p := decode[upstream.VolumePage](t, "volumes", body); resp.StatusCode != 200 || *p.Meta.Total != 1 {
		t.Errorf("after the timed-out create: %d %s, want the volume listed", resp.StatusCode, body)
	}
	if n := s.Counts()["POST /v2/volumes"]; n != 2 {
		t.Errorf("%d POSTs counted, want 2", n)
	}
}

// BenchmarkWrites measures the sandbox's cost of the write side in-process:
// a create and its delete, and a page of volumes of an account with writes.
func BenchmarkWrites(b *testing.B) {
	s := New(Options{Now: func() time.Time { return fixedNow }, ActionDelay: -1})
	b.Run("create+delete", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			rec := send(s, testToken, "POST", "/v2/volumes", fmt.Sprintf(`{"name":"b%d","size_gigabytes":1,"region":"nyc1"}`, i))
			var v upstream.VolumeResponse
			json.Unmarshal(rec.Body.Bytes(), &v)
			if rec := send(s, testToken, "DELETE", "/v2/volumes/"+v.Volume.ID, ""); rec.Code != 204 {
				b.Fatalf("delete: %d %s", rec.Code, rec.Body)
			}
		}
	})
	for i := range 50 {
		send(s, testToken, "POST", "/v2/volumes", fmt.Sprintf(`{"name":"kept-%d","size_gigabytes":1,"region":"nyc1"}`, i))
	}
	b.Run("list a written account", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			send(s, testToken, "GET", "/v2/volumes?per_page=20&page=3", "")
		}
	})
}
