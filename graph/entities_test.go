package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oceangraph/oceangraph/graph/generated"
)

// A malformed _entities representation is the client's mistake:
// BAD_USER_INPUT with a message saying what is wrong, never an internal error.
// gqlgen fails the malformed representation's whole type group (it checks the
// key of the group's first one), so a well-formed Volume after it still
// resolves only when the malformed one is of no known type.
func TestMalformedRepresentations(t *testing.T) {
	h := newSandboxHarness(t)
	volumeID := h.sandbox.Account(callerToken).Volumes[0].ID
	good := map[string]any{"__typename": "Volume", "id": volumeID}
	for _, tc := range []struct {
		name     string
		rep      any
		wantPath string
		wantMsg  string
		// otherResolves: the well-formed Volume beside it still resolves.
		otherResolves bool
	}{
		{"unknown __typename", map[string]any{"__typename": "Nope", "id": "x"}, "[_entities]", `unknown type: Nope`, true},
		{"missing __typename", map[string]any{"id": "x"}, "[_entities]", "needs a __typename string", true},
		{"__typename not a string", map[string]any{"__typename": 5, "id": "x"}, "[_entities]", "needs a __typename string", true},
		{"missing key field", map[string]any{"__typename": "Volume"}, "[_entities]", "Volume needs id", false},
		{"null key field", map[string]any{"__typename": "Invoice", "uuid": nil}, "[_entities]", "Invoice needs uuid", true},
		{"key field not an ID", map[string]any{"__typename": "Volume", "id": map[string]any{}}, "[_entities]", "must be an ID", false},
		{"a string, not an object", "Volume", "[_entities representations 0]", "must be an object", false},
		{"a number, not an object", 5, "[_entities representations 0]", "must be an object", false},
		{"a list, not an object", []any{good}, "[_entities representations 0]", "must be an object", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.logs.Reset()
			resp := h.post(`query($r: [_Any!]!) { _entities(representations: $r) { ... on Volume { id } } }`,
				map[string]any{"r": []any{tc.rep, good}})
			if len(resp.Errors) != 1 {
				t.Fatalf("want one error, got %+v", resp.Errors)
			}
			e := resp.Errors[0]
			if e.Extensions["code"] != codeBadUserInput || !strings.Contains(e.Message, tc.wantMsg) || fmt.Sprint(e.Path) != tc.wantPath {
				t.Errorf("got %s %q at %v, want BAD_USER_INPUT containing %q at %s", e.Extensions["code"], e.Message, e.Path, tc.wantMsg, tc.wantPath)
			}
			if strings.Contains(h.logs.String(), "internal error") {
				t.Errorf("a client's mistake was logged as an internal error: %s", h.logs)
			}
			if !tc.otherResolves {
				return
			}
			var data struct {
				Entities []*struct{ ID string } `json:"_entities"`
			}
			if err := json.Unmarshal(resp.Data, &data); err != nil || len(data.Entities) != 2 || data.Entities[1] == nil || data.Entities[1].ID != volumeID {
				t.Errorf("the well-formed representation beside it should resolve to volume %s, got %s", volumeID, resp.Data)
			}
		})
	}
}

// Only gqlgen's refusals of a representation are the client's: a fault of this
// server at the same paths stays internal.
func TestBadRepresentationLeavesFaultsAlone(t *testing.T) {
	for name, e := range map[string]*gqlerror.Error{
		"a panic in the entities field":  {Err: errPanic, Path: ast.Path{ast.PathName("_entities")}},
		"an unknown error of the field":  {Err: errors.New("unknown resolver: findVolume"), Path: ast.Path{ast.PathName("_entities")}},
		"one entity's failure":           {Err: fmt.Errorf("wrap: %w", generated.ErrTypeNotFound), Path: ast.Path{ast.PathName("_entities"), ast.PathIndex(0)}},
		"a map error outside _entities":  {Err: errors.New("string is not a map"), Path: ast.Path{ast.PathName("volume"), ast.PathName("id"), ast.PathIndex(0)}},
		"an unknown type outside fields": {Err: generated.ErrUnknownType},
	} {
		if msg, ok := badRepresentation(e); ok {
			t.Errorf("%s: mapped to BAD_USER_INPUT %q, want left to the presenter's other cases", name, msg)
		}
	}
}

func TestServiceSDLWorksWithIntrospectionOff(t *testing.T) {
	h := guardedHarness(t, GuardLimits{}, false)
	var data struct {
		Service struct{ SDL string } `json:"_service"`
	}
	h.mustData(`{ _service { sdl } }`, nil, &data)
	if !strings.Contains(data.Service.SDL, "@key") || !strings.Contains(data.Service.SDL, "type Volume") {
		t.Errorf("_service.sdl does not look like this subgraph's SDL: %.200s", data.Service.SDL)
	}
	if resp := h.post(`{ __schema { types { name } } }`, nil); len(resp.Errors) == 0 {
		t.Errorf("__schema answered with introspection off: %s", resp.Data)
	}
}
