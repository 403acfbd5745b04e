package upstream

import (
	"errors"
	"net/http"
	"strings"
)

// RefusalCode is a stable reason for DigitalOcean's refusal of a write's
// input, for a GraphQL UserError's code.
type RefusalCode string

// The refusal codes. DigitalOcean's messages are not a contract, so the
// classification is best-effort: what it does not recognise is INVALID (a 400)
// or UNKNOWN, and DigitalOcean's own message is always kept.
const (
	RefusalInvalid     RefusalCode = "INVALID"      // a value DigitalOcean does not accept
	RefusalTaken       RefusalCode = "TAKEN"        // the name is in use in that region
	RefusalTooSmall    RefusalCode = "TOO_SMALL"    // a resize that does not grow the volume
	RefusalWrongRegion RefusalCode = "WRONG_REGION" // the Droplet (or snapshot) is in another region
	RefusalAttached    RefusalCode = "ATTACHED"     // the volume is attached (delete) or already attached (attach)
	RefusalUnknown     RefusalCode = "UNKNOWN"      // a refusal this classifier does not recognise
)

// Refusal is DigitalOcean's refusal (400, 409, 422) of a write's input.
type Refusal struct {
	Code RefusalCode
	// Field is the request body's JSON field the refusal concerns, as
	// DigitalOcean names it ("name", "size_gigabytes", "region", "droplet_id",
	// "filesystem_type", "filesystem_label", "snapshot_id", "tags"); empty when
	// it concerns the whole request or the resource in its path.
	Field string
	// Message is DigitalOcean's message, unchanged; ID its error id
	// (bad_request, unprocessable_entity, conflict).
	Message, ID, RequestID string
}

// AsRefusal reports whether err is DigitalOcean's refusal of the input and
// classifies it from the endpoint, the status, DigitalOcean's id and its message.
func AsRefusal(err error) (Refusal, bool) {
	var e *Error
	if !errors.As(err, &e) || !e.Refused() {
		return Refusal{}, false
	}
	r := Refusal{Message: e.Message, ID: e.ID, RequestID: e.RequestID}
	r.Code, r.Field = classify(e.Endpoint, e.Status, strings.ToLower(e.ID+" "+e.Message))
	return r, true
}

// classify maps a refusal to its code and field. The messages are those
// DigitalOcean is known to send ("already exists", "attached volume cannot be
// deleted", "Attachment not found", "Storage is not supported for this
// region") and the rules the spec states (name pattern, size 1 to 16,384,
// resize only upwards, one Droplet per volume, same region); msg is lower case.
func classify(endpoint string, status int, msg string) (RefusalCode, string) {
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(msg, w) {
				return true
			}
		}
		return false
	}
	action := endpoint == EndpointPostVolumeAction
	switch {
	case endpoint == EndpointDeleteVolume && (status == http.StatusConflict || has("attached")):
		return RefusalAttached, ""
	case has("attachment not found", "not attached"):
		return RefusalInvalid, "droplet_id"
	case has("already attached", "currently attached", "attached to another", "attached to a droplet", "one droplet"):
		return RefusalAttached, fieldIf(action, "droplet_id")
	case has("same region", "different region", "another region", "other region", "own region", "region mismatch",
		"must be in the region", "not in the region", "is in region", "not available in region"):
		switch {
		case action && has("droplet"):
			return RefusalWrongRegion, "droplet_id"
		case endpoint == EndpointCreateVolume && has("snapshot"):
			return RefusalWrongRegion, "snapshot_id"
		}
		return RefusalWrongRegion, "region"
	case has("already exists", "already in use", "already taken", "must be unique", "is taken", "duplicate") ||
		(status == http.StatusConflict && (endpoint == EndpointCreateVolume || endpoint == EndpointCreateVolumeSnapshot)):
		return RefusalTaken, "name"
	case has("size") && has("smaller", "larger", "greater", "less than", "upward", "shrink", "decrease", "only grow", "only be resized", "current size"):
		return RefusalTooSmall, "size_gigabytes"
	case has("size"):
		return RefusalInvalid, "size_gigabytes"
	case has("filesystem_label", "filesystem label", "label"):
		return RefusalInvalid, "filesystem_label"
	case has("filesystem"):
		return RefusalInvalid, "filesystem_type"
	case endpoint == EndpointCreateVolume && has("snapshot"):
		return RefusalInvalid, "snapshot_id"
	case has("region"):
		return RefusalInvalid, "region"
	case has("droplet"):
		return RefusalInvalid, "droplet_id"
	case has("name"):
		return RefusalInvalid, "name"
	case has("tag"):
		return RefusalInvalid, "tags"
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return RefusalInvalid, ""
	}
	return RefusalUnknown, ""
}

func fieldIf(ok bool, field string) string {
	if ok {
		return field
	}
	return ""
}
