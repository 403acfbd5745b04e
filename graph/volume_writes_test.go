package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/upstream"
)

// The write side against httptest stubs answering with DigitalOcean's own
// example bodies (testdata/spec): the exact requests each mutation sends,
// every refusal as a UserError, every other failure as a coded error, and
// never a write sent twice.

const (
	specVolumeID   = "506f78a4-e098-11e5-ad9f-000f53306ae1"
	specSnapshotID = "8fa70202-873f-11e6-8b68-000f533176b1"
)

func specBody(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "spec", file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writes returns the requests with a body the stub received, and forgets them.
func (s *stubUpstream) writes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.bodies
	s.bodies = nil
	return out
}

// assertBody compares the JSON body of the one write received with want.
func assertWrite(t *testing.T, name string, got []string, wantLine, wantBody string) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("%s: %d requests with a body, want 1: %q", name, len(got), got)
	}
	line, body, _ := strings.Cut(got[0], " {")
	body = "{" + body
	if line != wantLine {
		t.Errorf("%s: sent %q, want %q", name, line, wantLine)
	}
	var g, w any
	if json.Unmarshal([]byte(body), &g) != nil || json.Unmarshal([]byte(wantBody), &w) != nil || fmt.Sprint(g) != fmt.Sprint(w) {
		t.Errorf("%s: body\n got: %s\nwant: %s", name, body, wantBody)
	}
}

// Each mutation sends exactly one request, with DigitalOcean's method, path
// and body, and answers with the spec's example turned into the payload.
func TestMutationsSendExactRequests(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		vars        map[string]any
		route, file string
		status      int
		wantCall    string
		wantBody    string // "" for a request without a body
		wantData    string
	}{
		{
			name:  "createVolume",
			query: `mutation($in: CreateVolumeInput!) { createVolume(input: $in) { volume { id name sizeGigabytes dropletIds filesystemType filesystemLabel region { slug } createdAt } userErrors { field } } }`,
			vars:  map[string]any{"in": map[string]any{"name": "example", "region": "nyc1", "sizeGigabytes": 10, "description": "Block store for examples", "filesystemType": "ext4", "filesystemLabel": "example", "tags": []string{"prod"}}},
			route: "POST /v2/volumes", file: "volume_created.json", status: 201,
			wantCall: "POST /v2/volumes",
			wantBody: `{"name":"example","region":"nyc1","size_gigabytes":10,"description":"Block store for examples","filesystem_type":"ext4","filesystem_label":"example","tags":["prod"]}`,
			wantData: `{"createVolume":{"volume":{"id":"` + specVolumeID + `","name":"example","sizeGigabytes":10,"dropletIds":[],"filesystemType":"ext4","filesystemLabel":"example","region":{"slug":"nyc1"},"createdAt":"2020-03-02T17:00:49Z"},"userErrors":[]}}`,
		},
		{
			name:  "createVolume from a snapshot",
			query: `mutation($in: CreateVolumeInput!) { createVolume(input: $in) { volume { id } userErrors { field } } }`,
			vars:  map[string]any{"in": map[string]any{"name": "example", "region": "nyc1", "snapshotId": "b0798135-fb76-11eb-946a-0a58ac146f33"}},
			route: "POST /v2/volumes", file: "volume_created.json", status: 201,
			wantCall: "POST /v2/volumes",
			wantBody: `{"name":"example","region":"nyc1","snapshot_id":"b0798135-fb76-11eb-946a-0a58ac146f33"}`,
			wantData: `{"createVolume":{"volume":{"id":"` + specVolumeID + `"},"userErrors":[]}}`,
		},
		{
			name:  "deleteVolume",
			query: `mutation { deleteVolume(input: {id: "` + specVolumeID + `"}) { deletedVolumeId userErrors { field } } }`,
			route: "DELETE /v2/volumes/" + specVolumeID, status: 204,
			wantCall: "DELETE /v2/volumes/" + specVolumeID,
			wantData: `{"deleteVolume":{"deletedVolumeId":"` + specVolumeID + `","userErrors":[]}}`,
		},
		{
			name:  "attachVolume",
			query: `mutation { attachVolume(input: {volumeId: "` + specVolumeID + `", dropletId: 11612190, region: "nyc1"}) { action { id type status startedAt completedAt region { slug } } userErrors { field } } }`,
			route: "POST /v2/volumes/" + specVolumeID + "/actions", file: "volume_action_attached.json", status: 202,
			wantCall: "POST /v2/volumes/" + specVolumeID + "/actions",
			wantBody: `{"type":"attach","droplet_id":11612190,"region":"nyc1"}`,
			wantData: `{"attachVolume":{"action":{"id":"72531856","type":"attach_volume","status":"COMPLETED","startedAt":"2020-11-12T17:51:03Z","completedAt":"2020-11-12T17:51:14Z","region":{"slug":"nyc1"}},"userErrors":[]}}`,
		},
		{
			name:  "detachVolume",
			query: `mutation { detachVolume(input: {volumeId: "` + specVolumeID + `", dropletId: 11612190}) { action { id type status completedAt } userErrors { field } } }`,
			route: "POST /v2/volumes/" + specVolumeID + "/actions", file: "volume_action_detaching.json", status: 202,
			wantCall: "POST /v2/volumes/" + specVolumeID + "/actions",
			wantBody: `{"type":"detach","droplet_id":11612190}`,
			wantData: `{"detachVolume":{"action":{"id":"68212773","type":"detach_volume","status":"IN_PROGRESS","completedAt":null},"userErrors":[]}}`,
		},
		{
			name:  "resizeVolume",
			query: `mutation { resizeVolume(input: {volumeId: "` + specVolumeID + `", sizeGigabytes: 100, region: "nyc1"}) { action { id status } userErrors { field } } }`,
			route: "POST /v2/volumes/" + specVolumeID + "/actions", file: "volume_action_detaching.json", status: 202,
			wantCall: "POST /v2/volumes/" + specVolumeID + "/actions",
			wantBody: `{"type":"resize","size_gigabytes":100,"region":"nyc1"}`,
			wantData: `{"resizeVolume":{"action":{"id":"68212773","status":"IN_PROGRESS"},"userErrors":[]}}`,
		},
		{
			name:  "createVolumeSnapshot",
			query: `mutation { createVolumeSnapshot(input: {volumeId: "82a48a18-873f-11e6-96bf-000f53315a41", name: "big-data-snapshot1475261774", tags: ["aninterestingtag"]}) { snapshot { id name regions minDiskSize sizeGigabytes tags volumeId createdAt } userErrors { field } } }`,
			route: "POST /v2/volumes/82a48a18-873f-11e6-96bf-000f53315a41/snapshots", file: "volume_snapshot_created.json", status: 201,
			wantCall: "POST /v2/volumes/82a48a18-873f-11e6-96bf-000f53315a41/snapshots",
			wantBody: `{"name":"big-data-snapshot1475261774","tags":["aninterestingtag"]}`,
			wantData: `{"createVolumeSnapshot":{"snapshot":{"id":"` + specSnapshotID + `","name":"big-data-snapshot1475261774","regions":["nyc1"],"minDiskSize":10,"sizeGigabytes":10,"tags":["aninterestingtag"],"volumeId":"82a48a18-873f-11e6-96bf-000f53315a41","createdAt":"2020-09-30T18:56:14Z"},"userErrors":[]}}`,
		},
		{
			name:  "deleteVolumeSnapshot",
			query: `mutation { deleteVolumeSnapshot(input: {id: "` + specSnapshotID + `"}) { deletedSnapshotId userErrors { field } } }`,
			route: "DELETE /v2/volumes/snapshots/" + specSnapshotID, status: 204,
			wantCall: "DELETE /v2/volumes/snapshots/" + specSnapshotID,
			wantData: `{"deleteVolumeSnapshot":{"deletedSnapshotId":"` + specSnapshotID + `","userErrors":[]}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := newStub()
			body := ""
			if tc.file != "" {
				body = specBody(t, tc.file)
			}
			stub.on(tc.route, tc.status, body)
			h := newHarness(t, stub)
			resp := h.post(tc.query, tc.vars)
			if len(resp.Errors) > 0 {
				t.Fatalf("errors: %+v", resp.Errors)
			}
			assertJSON(t, tc.name, resp.Data, tc.wantData)
			if got := stub.calls(); !slices.Equal(got, []string{tc.wantCall}) {
				t.Errorf("upstream requests %q, want exactly [%s]", got, tc.wantCall)
			}
			writes := stub.writes()
			if tc.wantBody == "" {
				if len(writes) != 0 {
					t.Errorf("sent a body: %q", writes)
				}
				return
			}
			assertWrite(t, tc.name, writes, tc.wantCall, tc.wantBody)
		})
	}
}

// DigitalOcean's refusals of the input (400, 409, 422) are UserErrors with the
// input field and a stable code, the result null; nothing is retried.
func TestMutationRefusalsAreUserErrors(t *testing.T) {
	for _, tc := range []struct {
		name, query, route string
		status             int
		body               string
		want               string
	}{
		{"taken name", `mutation { createVolume(input: {name: "example", region: "nyc1", sizeGigabytes: 10}) { volume { id } userErrors { field message code } } }`,
			"POST /v2/volumes", 409, `{"id":"conflict","message":"a volume with that name already exists in this region"}`,
			`{"createVolume":{"volume":null,"userErrors":[{"field":["input","name"],"message":"a volume with that name already exists in this region","code":"TAKEN"}]}}`},
		{"resize downwards", `mutation { resizeVolume(input: {volumeId: "` + specVolumeID + `", sizeGigabytes: 5}) { action { id } userErrors { field message code } } }`,
			"POST /v2/volumes/" + specVolumeID + "/actions", 422, `{"id":"unprocessable_entity","message":"new size must be larger than the current size"}`,
			`{"resizeVolume":{"action":null,"userErrors":[{"field":["input","sizeGigabytes"],"message":"new size must be larger than the current size","code":"TOO_SMALL"}]}}`},
		{"droplet in another region", `mutation { attachVolume(input: {volumeId: "` + specVolumeID + `", dropletId: 7}) { action { id } userErrors { field message code } } }`,
			"POST /v2/volumes/" + specVolumeID + "/actions", 422, `{"id":"unprocessable_entity","message":"droplet and volume must be in the same region"}`,
			`{"attachVolume":{"action":null,"userErrors":[{"field":["input","dropletId"],"message":"droplet and volume must be in the same region","code":"WRONG_REGION"}]}}`},
		{"delete while attached", `mutation { deleteVolume(input: {id: "` + specVolumeID + `"}) { deletedVolumeId userErrors { field message code } } }`,
			"DELETE /v2/volumes/" + specVolumeID, 409, `{"id":"conflict","message":"attached volume cannot be deleted"}`,
			`{"deleteVolume":{"deletedVolumeId":null,"userErrors":[{"field":[],"message":"attached volume cannot be deleted","code":"ATTACHED"}]}}`},
		{"bad request", `mutation { createVolumeSnapshot(input: {volumeId: "` + specVolumeID + `", name: "x"}) { snapshot { id } userErrors { field message code } } }`,
			"POST /v2/volumes/" + specVolumeID + "/snapshots", 400, `{"id":"bad_request","message":"request could not be processed"}`,
			`{"createVolumeSnapshot":{"snapshot":null,"userErrors":[{"field":[],"message":"request could not be processed","code":"INVALID"}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := newStub().on(tc.route, tc.status, tc.body)
			h := newHarness(t, stub)
			resp := h.post(tc.query, nil)
			if len(resp.Errors) > 0 {
				t.Fatalf("a refusal of the input must not be an error: %+v", resp.Errors)
			}
			assertJSON(t, tc.name, resp.Data, tc.want)
			if got := stub.calls(); len(got) != 1 {
				t.Errorf("upstream requests %q, want exactly one", got)
			}
		})
	}
}

// What is plainly wrong is refused here, as a UserError, without a call.
func TestMutationInputCheckedBeforeAnyCall(t *testing.T) {
	for _, tc := range []struct{ name, query, want string }{
		{"name pattern", `mutation { createVolume(input: {name: "Bad_Name", region: "nyc1", sizeGigabytes: 10}) { userErrors { field code } } }`,
			`{"createVolume":{"userErrors":[{"field":["input","name"],"code":"INVALID"}]}}`},
		{"name too long", `mutation { createVolume(input: {name: "` + "a" + strings.Repeat("b", 64) + `", region: "nyc1", sizeGigabytes: 10}) { userErrors { field code } } }`,
			`{"createVolume":{"userErrors":[{"field":["input","name"],"code":"INVALID"}]}}`},
		{"size range", `mutation { createVolume(input: {name: "ok", region: "nyc1", sizeGigabytes: 16385}) { userErrors { field code } } }`,
			`{"createVolume":{"userErrors":[{"field":["input","sizeGigabytes"],"code":"INVALID"}]}}`},
		{"no size, no snapshot", `mutation { createVolume(input: {name: "ok", region: "nyc1"}) { userErrors { field code } } }`,
			`{"createVolume":{"userErrors":[{"field":["input","sizeGigabytes"],"code":"INVALID"}]}}`},
		{"filesystem", `mutation { createVolume(input: {name: "ok", region: "nyc1", sizeGigabytes: 1, filesystemType: "ntfs"}) { userErrors { field code } } }`,
			`{"createVolume":{"userErrors":[{"field":["input","filesystemType"],"code":"INVALID"}]}}`},
		{"label length", `mutation { createVolume(input: {name: "ok", region: "nyc1", sizeGigabytes: 1, filesystemType: "xfs", filesystemLabel: "thirteen-char"}) { userErrors { field code } } }`,
			`{"createVolume":{"userErrors":[{"field":["input","filesystemLabel"],"code":"INVALID"}]}}`},
		{"empty region and empty key", `mutation { createVolume(input: {name: "ok", region: "", sizeGigabytes: 1, idempotencyKey: ""}) { userErrors { field code } } }`,
			`{"createVolume":{"userErrors":[{"field":["input","region"],"code":"INVALID"},{"field":["input","idempotencyKey"],"code":"INVALID"}]}}`},
		{"resize size", `mutation { resizeVolume(input: {volumeId: "v", sizeGigabytes: 0}) { userErrors { field code } } }`,
			`{"resizeVolume":{"userErrors":[{"field":["input","sizeGigabytes"],"code":"INVALID"}]}}`},
		{"droplet id", `mutation { attachVolume(input: {volumeId: "", dropletId: 0}) { userErrors { field code } } }`,
			`{"attachVolume":{"userErrors":[{"field":["input","volumeId"],"code":"INVALID"},{"field":["input","dropletId"],"code":"INVALID"}]}}`},
		{"empty ids", `mutation { a: deleteVolume(input: {id: ""}) { userErrors { field code } } b: deleteVolumeSnapshot(input: {id: ""}) { userErrors { field code } } c: createVolumeSnapshot(input: {volumeId: "v", name: ""}) { userErrors { field code } } }`,
			`{"a":{"userErrors":[{"field":["input","id"],"code":"INVALID"}]},"b":{"userErrors":[{"field":["input","id"],"code":"INVALID"}]},"c":{"userErrors":[{"field":["input","name"],"code":"INVALID"}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := newStub()
			h := newHarness(t, stub)
			resp := h.post(tc.query, nil)
			if len(resp.Errors) > 0 {
				t.Fatalf("errors: %+v", resp.Errors)
			}
			assertJSON(t, tc.name, resp.Data, tc.want)
			if got := stub.calls(); len(got) != 0 {
				t.Errorf("a refused input reached DigitalOcean: %q", got)
			}
		})
	}
}

// Everything that is not a refusal of the input is a coded error, as for
// queries, after exactly one request: a write is never retried.
func TestMutationFailuresAreCodedAndNeverRetried(t *testing.T) {
	mutation := `mutation { attachVolume(input: {volumeId: "` + specVolumeID + `", dropletId: 1}) { action { id } userErrors { code } } }`
	for _, tc := range []struct {
		status  int
		body    string
		headers []string
		code    string
		// outcome: a 5xx may come after the write was carried out.
		outcome any
	}{
		{401, `{"id":"unauthorized","message":"Unable to authenticate you."}`, nil, codeUnauthenticated, nil},
		{403, `{"id":"forbidden","message":"You do not have access for the attempted action."}`, nil, codeForbidden, nil},
		{404, `{"id":"not_found","message":"The resource you were accessing could not be found."}`, nil, CodeNotFound, nil},
		{429, `{"id":"too_many_requests","message":"API Rate limit exceeded."}`, []string{"Retry-After", "3"}, codeRateLimited, nil},
		{500, `{"id":"server_error","message":"Unexpected server-side error"}`, nil, codeUpstreamUnavailable, "UNKNOWN"},
		{503, `{"id":"service_unavailable","message":"down"}`, nil, codeUpstreamUnavailable, "UNKNOWN"},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			stub := newStub().on("POST /v2/volumes/"+specVolumeID+"/actions", tc.status, tc.body, tc.headers...)
			// Retries on: a GET would be retried on 429 and 503; a write never.
			h := newRetryingHarness(t, stub, 0)
			resp := h.post(mutation, nil)
			if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != tc.code {
				t.Fatalf("errors %+v, want one %s", resp.Errors, tc.code)
			}
			if p := resp.Errors[0].Path; len(p) != 1 || p[0] != "attachVolume" {
				t.Errorf("error path %v, want [attachVolume]", p)
			}
			if got := resp.Errors[0].Extensions["outcome"]; got != tc.outcome {
				t.Errorf("extensions.outcome %v, want %v: %v", got, tc.outcome, resp.Errors[0].Extensions)
			}
			if got := stub.calls(); len(got) != 1 {
				t.Errorf("upstream requests %q, want exactly one: a write is never retried", got)
			}
		})
	}
}

// A write whose answer never came (a timeout, or a connection reset after
// the request was sent) may have happened: UPSTREAM_UNAVAILABLE with
// extensions.outcome UNKNOWN, after exactly one request.
func TestMutationOutcomeUnknown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(w http.ResponseWriter, r *http.Request)
	}{
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body) // then the server notices the client giving up
			<-r.Context().Done()
		}},
		{"reset after sending", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			if tcp, ok := conn.(*net.TCPConn); ok {
				tcp.SetLinger(0) // RST, not FIN
			}
			conn.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := &countingHandler{serve: tc.serve}
			h := newRetryingHarness(t, calls, 200*time.Millisecond)
			resp := h.post(`mutation { createVolume(input: {name: "example", region: "nyc1", sizeGigabytes: 10}) { volume { id } } }`, nil)
			if len(resp.Errors) != 1 {
				t.Fatalf("errors %+v, want one", resp.Errors)
			}
			ext := resp.Errors[0].Extensions
			if ext["code"] != codeUpstreamUnavailable || ext["outcome"] != "UNKNOWN" {
				t.Errorf("extensions %v, want code UPSTREAM_UNAVAILABLE and outcome UNKNOWN", ext)
			}
			if n := calls.n.Load(); n != 1 {
				t.Errorf("%d POST /v2/volumes sent, want exactly one", n)
			}
		})
	}
}

// newRetryingHarness is the harness with the client's retries on (3, at 1 ms),
// as production has them, and an upstream timeout (0: none).
func newRetryingHarness(t *testing.T, upstreamHandler http.Handler, timeout time.Duration) *harness {
	t.Helper()
	srv := httptest.NewServer(upstreamHandler)
	t.Cleanup(srv.Close)
	return newHarnessAt(t, srv.URL, func(c *Config) {
		client, err := upstream.New(upstream.Config{BaseURL: srv.URL, MaxRetries: 3, Timeout: timeout,
			RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond, Observe: ObserveUpstream})
		if err != nil {
			t.Fatal(err)
		}
		c.Client = client
	})
}

// countingHandler counts the requests it serves.
type countingHandler struct {
	n     atomic.Int32
	serve func(w http.ResponseWriter, r *http.Request)
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.serve(w, r)
}

// The same idempotencyKey with the same token and input gives the first
// answer again without a second call, whatever the selection; another input
// is BAD_USER_INPUT; another token is another key; a failed write keeps the
// key usable.
func TestIdempotencyKey(t *testing.T) {
	stub := newStub().on("POST /v2/volumes", 201, specBody(t, "volume_created.json"))
	h := newHarness(t, stub)
	create := `mutation($in: CreateVolumeInput!) { createVolume(input: $in) { volume { id name } userErrors { code } } }`
	in := map[string]any{"name": "example", "region": "nyc1", "sizeGigabytes": 10, "idempotencyKey": "k-1"}
	first := h.post(create, map[string]any{"in": in})
	again := h.post(`mutation($in: CreateVolumeInput!) { createVolume(input: $in) { volume { id sizeGigabytes } } }`, map[string]any{"in": in})
	if len(first.Errors)+len(again.Errors) > 0 {
		t.Fatalf("errors: %+v %+v", first.Errors, again.Errors)
	}
	assertJSON(t, "first", first.Data, `{"createVolume":{"volume":{"id":"`+specVolumeID+`","name":"example"},"userErrors":[]}}`)
	assertJSON(t, "repeat", again.Data, `{"createVolume":{"volume":{"id":"`+specVolumeID+`","sizeGigabytes":10}}}`)
	if got := stub.calls(); len(got) != 1 {
		t.Errorf("upstream requests %q, want one POST for two mutations with one key", got)
	}

	other := map[string]any{"name": "example-2", "region": "nyc1", "sizeGigabytes": 10, "idempotencyKey": "k-1"}
	if resp := h.post(create, map[string]any{"in": other}); len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeBadUserInput {
		t.Errorf("same key, other input: %+v, want BAD_USER_INPUT", resp.Errors)
	}
	if resp := h.post(`mutation { deleteVolume(input: {id: "`+specVolumeID+`", idempotencyKey: "k-1"}) { deletedVolumeId } }`, nil); len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeBadUserInput {
		t.Errorf("same key, other mutation: %+v, want BAD_USER_INPUT", resp.Errors)
	}
	if resp := h.postAs("Bearer another-token", create, map[string]any{"in": in}); len(resp.Errors) > 0 {
		t.Errorf("another token: %+v", resp.Errors)
	}
	if got := stub.calls(); len(got) != 1 {
		t.Errorf("upstream requests %q, want one: another token's key is its own", got)
	}

	failing := newStub().on("POST /v2/volumes", 500, `{"id":"server_error","message":"boom"}`).on("POST /v2/volumes", 201, specBody(t, "volume_created.json"))
	h2 := newHarness(t, failing)
	if resp := h2.post(create, map[string]any{"in": in}); len(resp.Errors) != 1 {
		t.Fatalf("want the 500 as an error: %+v", resp.Errors)
	}
	if resp := h2.post(create, map[string]any{"in": in}); len(resp.Errors) > 0 {
		t.Errorf("after a failed write the key is usable again: %+v", resp.Errors)
	}
	if got := failing.calls(); len(got) != 2 {
		t.Errorf("upstream requests %q, want two (the failure, then the repeat)", got)
	}
}

// A refusal is an answer too: repeating it with its key replays the UserError.
func TestIdempotencyKeyReplaysARefusal(t *testing.T) {
	stub := newStub().on("POST /v2/volumes", 422, `{"id":"unprocessable_entity","message":"a volume with that name already exists"}`)
	h := newHarness(t, stub)
	q := `mutation { createVolume(input: {name: "example", region: "nyc1", sizeGigabytes: 10, idempotencyKey: "k"}) { volume { id } userErrors { field code } } }`
	for range 2 {
		assertJSON(t, "refusal", h.post(q, nil).Data, `{"createVolume":{"volume":null,"userErrors":[{"field":["input","name"],"code":"TAKEN"}]}}`)
	}
	if got := stub.calls(); len(got) != 1 {
		t.Errorf("upstream requests %q, want one", got)
	}
}

// After a write, what the request had read of volumes is stale: a later field
// of the same request reads DigitalOcean again (here two mutations of one
// document, each reading the volume after its action).
func TestWriteDropsStaleLoaderEntries(t *testing.T) {
	attached := strings.Replace(specBody(t, "volume_created.json"), `"droplet_ids": []`, `"droplet_ids": [11612190]`, 1)
	stub := newStub().
		on("POST /v2/volumes/"+specVolumeID+"/actions", 202, specBody(t, "volume_action_attached.json")).
		on("GET /v2/volumes/"+specVolumeID, 200, attached).
		on("GET /v2/volumes/"+specVolumeID, 200, specBody(t, "volume_created.json"))
	h := newHarness(t, stub)
	resp := h.post(`mutation {
		a: attachVolume(input: {volumeId: "`+specVolumeID+`", dropletId: 11612190}) { action { volume { dropletIds } } }
		d: detachVolume(input: {volumeId: "`+specVolumeID+`", dropletId: 11612190}) { action { volume { dropletIds } } }
	}`, nil)
	if len(resp.Errors) > 0 {
		t.Fatalf("errors: %+v", resp.Errors)
	}
	assertJSON(t, "volumes after each write", resp.Data, `{"a":{"action":{"volume":{"dropletIds":[11612190]}}},"d":{"action":{"volume":{"dropletIds":[]}}}}`)
	assertCalls(t, "two writes, two reads", stub.calls(), []string{
		"POST /v2/volumes/" + specVolumeID + "/actions", "POST /v2/volumes/" + specVolumeID + "/actions",
		"GET /v2/volumes/" + specVolumeID, "GET /v2/volumes/" + specVolumeID,
	})
}

// A volume's actions and snapshots page both ways like the other
// connections, through one call each; volumeAction reads one action.
func TestVolumeActionsAndSnapshots(t *testing.T) {
	stub := newStub().
		on("GET /v2/volumes/"+specVolumeID, 200, specBody(t, "volume_created.json")).
		on("GET /v2/volumes/"+specVolumeID+"/actions", 200, specBody(t, "volume_actions.json")).
		on("GET /v2/volumes/"+specVolumeID+"/snapshots", 200, specBody(t, "volume_snapshots.json")).
		on("GET /v2/volumes/"+specVolumeID+"/actions/72531856", 200, specBody(t, "volume_action_attached.json"))
	h := newHarness(t, stub)
	resp := h.post(`{
		volume(id: "`+specVolumeID+`") {
			actions(first: 5) { totalCount pageInfo { hasNextPage hasPreviousPage } nodes { id type status region { slug } volume { id } } }
			snapshots(last: 1) { totalCount edges { node { id name sizeGigabytes tags volumeId } } }
		}
		volumeAction(volumeId: "`+specVolumeID+`", actionId: "72531856") { id status completedAt }
	}`, nil)
	if len(resp.Errors) > 0 {
		t.Fatalf("errors: %+v", resp.Errors)
	}
	assertJSON(t, "actions and snapshots", resp.Data, `{
		"volume": {
			"actions": {"totalCount": 1, "pageInfo": {"hasNextPage": false, "hasPreviousPage": false},
				"nodes": [{"id": "72531856", "type": "attach_volume", "status": "COMPLETED", "region": {"slug": "nyc1"}, "volume": {"id": "`+specVolumeID+`"}}]},
			"snapshots": {"totalCount": 1, "edges": [{"node": {"id": "8eb4d51a-873f-11e6-96bf-000f53315a41", "name": "big-data-snapshot1475261752", "sizeGigabytes": 0, "tags": [], "volumeId": "82a48a18-873f-11e6-96bf-000f53315a41"}}]}
		},
		"volumeAction": {"id": "72531856", "status": "COMPLETED", "completedAt": "2020-11-12T17:51:14Z"}
	}`)
	assertCalls(t, "one call per resource", stub.calls(), []string{
		"GET /v2/volumes/" + specVolumeID,
		"GET /v2/volumes/" + specVolumeID + "/actions?page=1&per_page=5",
		// `last` learns the length with page 1 of 1, which is also the window.
		"GET /v2/volumes/" + specVolumeID + "/snapshots?page=1&per_page=1",
		"GET /v2/volumes/" + specVolumeID + "/actions/72531856",
	})
	for _, q := range []string{
		`{ volumeAction(volumeId: "v", actionId: "abc") { id } }`,
		`{ volumeAction(volumeId: "", actionId: "1") { id } }`,
		`{ volume(id: "v") { actions(first: 1, after: "bm90LWEtY3Vyc29y") { totalCount } } }`,
	} {
		stub.on("GET /v2/volumes/v", 200, specBody(t, "volume_created.json"))
		resp := h.post(q, nil)
		if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeBadUserInput {
			t.Errorf("%s: %+v, want BAD_USER_INPUT", q, resp.Errors)
		}
	}
}
