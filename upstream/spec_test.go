package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// specRoot is DigitalOcean's spec subset, beside the repository (../shared).
// The tests reading it skip when it is absent, except in CI (CI=true).
const specRoot = "../../shared/do-api/openapi/specification"

// readSpec decodes a YAML file of the spec into JSON's types.
func readSpec(t *testing.T, file string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(specRoot, file))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the spec is missing (%v): CI must check out ../shared beside the repository", err)
		}
		t.Skipf("../shared not present, so the fixtures are not compared with the spec here (CI does): %v", err)
	}
	var v any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return asJSON(t, v).(map[string]any)
}

// asJSON round-trips v through JSON, so YAML's ints and JSON's float64s compare equal.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

// dig walks keys down a decoded document.
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok || m[k] == nil {
			t.Fatalf("spec has no %q (in %s)", k, strings.Join(keys, "."))
		}
		v = m[k]
	}
	return v
}

// TestEndpointsAreTheSpecs: every volume endpoint the client calls is an
// operation of the spec, with that method and path.
func TestEndpointsAreTheSpecs(t *testing.T) {
	paths := dig(t, readSpec(t, "billing-and-volumes.yaml"), "paths").(map[string]any)
	params := regexp.MustCompile(`\{[^}]+\}`)
	ops := map[string]bool{}
	for path, methods := range paths {
		for m := range methods.(map[string]any) {
			ops[strings.ToUpper(m)+" "+params.ReplaceAllString(path, "{}")] = true
		}
	}
	for _, ep := range []string{
		EndpointVolumes, EndpointVolume, EndpointCreateVolume, EndpointDeleteVolume, EndpointPostVolumeAction,
		EndpointVolumeActions, EndpointVolumeAction, EndpointVolumeSnapshots, EndpointCreateVolumeSnapshot,
		EndpointVolumeSnapshot, EndpointDeleteVolumeSnapshot,
	} {
		if !ops[params.ReplaceAllString(ep, "{}")] {
			t.Errorf("%s is not an operation of the spec", ep)
		}
	}
}

// TestFixturesAreTheSpecsExamples: the bodies the stubs serve are the spec's
// own examples, written out by hand (the spec is never copied into the project).
func TestFixturesAreTheSpecsExamples(t *testing.T) {
	examples := readSpec(t, "resources/volumes/examples.yml")
	example := func(file string) any {
		// The responses put their example inside the schema.
		return dig(t, readSpec(t, "resources/volumes/responses/"+file), "content", "application/json", "schema", "example")
	}
	for fixtureName, want := range map[string]any{
		"volume.json":               example("volume.yml"),
		"volume_actions.json":       example("volumeActions.yml"),
		"volume_snapshot.json":      example("volumeSnapshot.yml"),
		"volume_snapshots.json":     example("volumeSnapshots.yml"),
		"volume_action_attach.json": dig(t, examples, "volume_action_attach_response", "value"),
		"volume_action_detach.json": dig(t, examples, "volume_action_detach_response", "value"),
	} {
		var got any
		if err := json.Unmarshal(fixture(t, fixtureName), &got); err != nil {
			t.Fatalf("%s: %v", fixtureName, err)
		}
		assertEqual(t, fixtureName, got, want)
	}
}

// TestRequestBodiesAreTheSpecsExamples: what each write sends is the spec's
// request example.
func TestRequestBodiesAreTheSpecsExamples(t *testing.T) {
	create := dig(t, readSpec(t, "resources/volumes/volumes_create.yml"), "requestBody", "content", "application/json", "examples")
	actions := dig(t, readSpec(t, "resources/volumes/volumeActions_post_byId.yml"), "requestBody", "content", "application/json", "examples")
	snapshot := dig(t, readSpec(t, "resources/volumes/volumeSnapshots_create.yml"), "requestBody", "content", "application/json", "example")
	attach := dig(t, actions, "VolumeActionAttach", "value").(map[string]any)
	delete(attach, "tags") // optional, and not a field of attachVolume's input
	cases := []struct {
		name string
		call func(context.Context, *Client) error
		want any
	}{
		{"attach", func(ctx context.Context, c *Client) error {
			_, err := c.AttachVolume(ctx, specVolumeID, 11612190, "nyc1")
			return err
		}, attach},
		{"detach", func(ctx context.Context, c *Client) error {
			_, err := c.DetachVolume(ctx, specVolumeID, 11612190, "nyc1")
			return err
		}, dig(t, actions, "VolumeActionDetach", "value")},
		{"resize", func(ctx context.Context, c *Client) error {
			_, err := c.ResizeVolume(ctx, specVolumeID, 100, "nyc1")
			return err
		}, dig(t, actions, "VolumeActionResize", "value")},
		{"snapshot", func(ctx context.Context, c *Client) error {
			_, err := c.CreateVolumeSnapshot(ctx, specVolumeID, SnapshotCreateRequest{Name: "big-data-snapshot1475261774"})
			return err
		}, snapshot},
	}
	for _, tc := range specCreateRequests[:3] {
		cases = append(cases, struct {
			name string
			call func(context.Context, *Client) error
			want any
		}{"create " + tc.name, func(ctx context.Context, c *Client) error {
			_, err := c.CreateVolume(ctx, tc.req)
			return err
		}, dig(t, create, tc.name, "value")})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			do := newFakeDO(t)
			do.mux.Handle("/", serveJSON(http.StatusCreated, []byte(`{"volume":{"id":"v"},"action":{"id":1},"snapshot":{"id":"s"}}`)))
			c := newTestClient(t, do.URL, Config{})
			if err := tc.call(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			assertEqual(t, "request body", do.sentJSON(t, 0), tc.want)
		})
	}
}
