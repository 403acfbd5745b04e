package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestRefusalsAreClassified(t *testing.T) {
	cases := []struct {
		endpoint string
		status   int
		id, msg  string
		code     RefusalCode
		field    string
	}{
		// Messages DigitalOcean is known to send.
		{EndpointCreateVolume, 409, "conflict", "already exists", RefusalTaken, "name"},
		{EndpointDeleteVolume, 409, "conflict", "attached volume cannot be deleted", RefusalAttached, ""},
		{EndpointPostVolumeAction, 422, "unprocessable_entity", "Attachment not found", RefusalInvalid, "droplet_id"},
		{EndpointCreateVolume, 422, "unprocessable_entity", "Storage is not supported for this region", RefusalInvalid, "region"},
		{EndpointCreateVolume, 400, "bad_request", "error parsing request body", RefusalInvalid, ""},
		// The spec's rules, in the words a stand-in may use.
		{EndpointCreateVolume, 422, "unprocessable_entity", "name must be lowercase letters, digits and hyphens, start with a letter, at most 64 characters", RefusalInvalid, "name"},
		{EndpointCreateVolume, 422, "unprocessable_entity", "size_gigabytes must be between 1 and 16384", RefusalInvalid, "size_gigabytes"},
		{EndpointCreateVolume, 422, "unprocessable_entity", "a volume named example already exists in nyc1", RefusalTaken, "name"},
		{EndpointCreateVolume, 422, "unprocessable_entity", "filesystem_label is too long for xfs", RefusalInvalid, "filesystem_label"},
		{EndpointCreateVolume, 422, "unprocessable_entity", "filesystem_type must be ext4 or xfs", RefusalInvalid, "filesystem_type"},
		{EndpointCreateVolume, 422, "unprocessable_entity", "snapshot not found", RefusalInvalid, "snapshot_id"},
		{EndpointPostVolumeAction, 422, "unprocessable_entity", "volumes can only be resized upwards: the new size must be larger than the current size", RefusalTooSmall, "size_gigabytes"},
		{EndpointPostVolumeAction, 422, "unprocessable_entity", "the volume is already attached to a droplet", RefusalAttached, "droplet_id"},
		{EndpointPostVolumeAction, 422, "unprocessable_entity", "droplet and volume must be in the same region", RefusalWrongRegion, "droplet_id"},
		{EndpointPostVolumeAction, 422, "unprocessable_entity", "droplet 123 not found", RefusalInvalid, "droplet_id"},
		{EndpointPostVolumeAction, 422, "unprocessable_entity", "the volume is in region nyc1, not sfo3", RefusalWrongRegion, "region"},
		{EndpointCreateVolume, 422, "unprocessable_entity", "snapshot 1 is not available in region sfo3", RefusalWrongRegion, "snapshot_id"},
		{EndpointDeleteVolume, 422, "unprocessable_entity", "the volume is attached to a Droplet; detach it first", RefusalAttached, ""},
		{EndpointCreateVolumeSnapshot, 409, "conflict", "", RefusalTaken, "name"},
		{EndpointCreateVolumeSnapshot, 422, "unprocessable_entity", "snapshot name is invalid", RefusalInvalid, "name"},
		// What it does not recognise.
		{EndpointDeleteVolumeSnapshot, 409, "conflict", "something new", RefusalUnknown, ""},
		{EndpointPostVolumeAction, 422, "unprocessable_entity", "something new", RefusalInvalid, ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %d %s", tc.endpoint, tc.status, tc.msg), func(t *testing.T) {
			err := fmt.Errorf("create: %w", &Error{Endpoint: tc.endpoint, Kind: KindHTTP, Status: tc.status, ID: tc.id, Message: tc.msg, RequestID: "r-1"})
			r, ok := AsRefusal(err)
			if !ok || !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("AsRefusal ok = %v, errors.Is(ErrInvalidInput) = %v; want both", ok, errors.Is(err, ErrInvalidInput))
			}
			want := Refusal{Code: tc.code, Field: tc.field, Message: tc.msg, ID: tc.id, RequestID: "r-1"}
			if r != want {
				t.Errorf("refusal = %+v, want %+v", r, want)
			}
		})
	}
}

func TestOnlyRefusalsOfTheInputAreRefusals(t *testing.T) {
	for _, err := range []error{
		&Error{Kind: KindHTTP, Status: 401, ID: "unauthorized"},
		&Error{Kind: KindHTTP, Status: 404, ID: "not_found"},
		&Error{Kind: KindHTTP, Status: 429, ID: "too_many_requests"},
		&Error{Kind: KindHTTP, Status: 500, ID: "server_error"},
		&Error{Kind: KindDecode, Status: 422},
		&Error{Kind: KindRequest, Err: ErrInvalidID},
		errors.New("not an upstream error"),
	} {
		if _, ok := AsRefusal(err); ok || errors.Is(err, ErrInvalidInput) {
			t.Errorf("%v: AsRefusal ok = %v, errors.Is(ErrInvalidInput) = %v; want neither", err, ok, errors.Is(err, ErrInvalidInput))
		}
	}
}

func TestARefusalFromTheStubKeepsDigitalOceansWords(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("POST /v2/volumes", serveJSON(http.StatusConflict,
		[]byte(`{"id":"conflict","message":"a volume with the name example already exists in nyc1","request_id":"4851a473-1621-42ea-b2f9-5071c0ea8414"}`)))
	c := newTestClient(t, do.URL, Config{})

	_, err := c.CreateVolume(context.Background(), VolumeCreateRequest{Name: "example", Region: "nyc1", SizeGigabytes: 10})
	r, ok := AsRefusal(err)
	want := Refusal{Code: RefusalTaken, Field: "name", ID: "conflict", Message: "a volume with the name example already exists in nyc1", RequestID: "4851a473-1621-42ea-b2f9-5071c0ea8414"}
	if !ok || r != want {
		t.Errorf("AsRefusal = %+v, %v; want %+v", r, ok, want)
	}
	if e := asError(t, err); e.Outcome != OutcomeNotApplied || len(do.seen()) != 1 {
		t.Errorf("outcome %v after %d requests, want OutcomeNotApplied after 1", e.Outcome, len(do.seen()))
	}
}
