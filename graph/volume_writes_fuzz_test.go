package graph

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzMutationInput sends createVolume and attachVolume with arbitrary input
// through the whole handler (guards, validation, idempotency) to a stub that
// accepts every write. Whatever the input: no internal error, at most one
// write per mutation, none when the input was refused here, and a write's
// body carries the input's name unchanged. CI runs it for 30 s:
//
//	go test -run '^$' -fuzz '^FuzzMutationInput$' -fuzztime 30s ./graph
func FuzzMutationInput(f *testing.F) {
	f.Add("example", "nyc1", 10, "ext4", "label", "key-1", int64(11612190))
	f.Add("Bad_Name", "", 0, "ntfs", strings.Repeat("x", 40), "", int64(0))
	f.Add("a"+strings.Repeat("b", 63), "nyc1", 16384, "xfs", "twelve-chars", strings.Repeat("k", 300), int64(-1))
	f.Add("\x00é", "../..", -5, "", "", "same", int64(1<<40))
	stub := newStub().
		on("POST /v2/volumes", 201, `{"volume":{"id":"v-1","name":"example","size_gigabytes":10,"droplet_ids":[]}}`).
		on("POST /v2/volumes/v-1/actions", 202, `{"action":{"id":1,"status":"in-progress","type":"attach_volume"}}`)
	h := newHarness(f, stub)
	f.Fuzz(func(t *testing.T, name, region string, size int, fsType, label, key string, droplet int64) {
		h.t = t // the harness reports through this input's T
		in := map[string]any{"name": name, "region": region, "sizeGigabytes": size, "filesystemType": fsType, "filesystemLabel": label, "idempotencyKey": key}
		for _, m := range []struct {
			query string
			vars  map[string]any
		}{
			{`mutation($in: CreateVolumeInput!) { createVolume(input: $in) { volume { id name } userErrors { field message code } } }`, map[string]any{"in": in}},
			{`mutation($d: Int!, $k: String) { attachVolume(input: {volumeId: "v-1", dropletId: $d, idempotencyKey: $k}) { action { id status } userErrors { field code } } }`, map[string]any{"d": droplet, "k": key}},
		} {
			stub.calls()
			stub.writes()
			resp := h.post(m.query, m.vars)
			for _, e := range resp.Errors {
				if e.Extensions["code"] == codeInternal || e.Extensions["code"] == nil {
					t.Fatalf("input %v: an internal or uncoded error: %+v", m.vars, e)
				}
			}
			writes := stub.writes()
			if len(writes) > 1 {
				t.Fatalf("input %v: %d writes for one mutation: %q", m.vars, len(writes), writes)
			}
			var data map[string]struct {
				UserErrors []struct{ Field []string } `json:"userErrors"`
			}
			json.Unmarshal(resp.Data, &data)
			for _, payload := range data {
				if len(payload.UserErrors) > 0 && len(writes) > 0 {
					t.Fatalf("input %v: refused here (%+v) yet sent upstream: %q", m.vars, payload.UserErrors, writes)
				}
			}
			if len(writes) == 1 && strings.HasPrefix(writes[0], "POST /v2/volumes ") {
				var body struct{ Name string }
				json.Unmarshal([]byte(strings.TrimPrefix(writes[0], "POST /v2/volumes ")), &body)
				if body.Name != name {
					t.Fatalf("sent name %q, input %q", body.Name, name)
				}
			}
		}
	})
}
