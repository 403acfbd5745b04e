package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"go.yaml.in/yaml/v4"

	"github.com/oceangraph/oceangraph/upstream"
)

// specPath is DigitalOcean's spec subset, beside the repository (../shared),
// relative to this package's directory.
const specPath = "../../../shared/do-api/openapi/specification/billing-and-volumes.yaml"

// specOp is one operation of the spec, loaded as a document of its own.
type specOp struct {
	doc      *openapi3.T
	template string
	method   string
	item     *openapi3.PathItem
	op       *openapi3.Operation
}

// loadSpec loads every operation of the spec, keyed by method and path
// template ("POST /v2/volumes/{volume_id}/actions"). It skips the test when
// ../shared is absent, except in CI (CI=true), where its absence is a failure.
//
// The root file writes each operation as `get: {$ref: resources/….yml}`, a
// $ref OpenAPI 3.0 does not allow on an operation, so kin loads those as
// empty operations (and its Validate then objects to balance_get's
// "responses"). Each operation file is therefore loaded as a one-operation
// document located at that file, so its own relative $refs resolve.
func loadSpec(t *testing.T) map[string]specOp {
	t.Helper()
	specOnce.Do(func() { specOps, specErr = readSpec(t) })
	if specErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the spec is missing (%v): CI must check out ../shared beside the repository", specErr)
		}
		t.Skipf("../shared not present: spec validation runs in CI (%v)", specErr)
	}
	if specOps == nil {
		t.Fatal("the spec failed to load in an earlier test")
	}
	return specOps
}

// The spec is loaded once per test binary: it is the slowest part of these tests.
var (
	specOnce sync.Once
	specOps  map[string]specOp
	specErr  error // the spec is absent
)

// readSpec loads the operations; an error only when the spec is absent.
func readSpec(t *testing.T) (map[string]specOp, error) {
	t.Helper()
	root, err := os.ReadFile(specPath)
	if err != nil {
		return nil, err
	}
	var spec struct {
		Paths map[string]map[string]struct {
			Ref string `yaml:"$ref"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(root, &spec); err != nil {
		t.Fatalf("%s: %v", specPath, err)
	}
	ops := map[string]specOp{}
	for template, methods := range spec.Paths {
		for method, m := range methods {
			if m.Ref == "" {
				continue
			}
			op := loadOperation(t, template, method, filepath.Join(filepath.Dir(specPath), m.Ref))
			ops[op.method+" "+template] = op
		}
	}
	if len(ops) < 20 {
		t.Fatalf("found %d operations in %s, want the 20 the sandbox serves", len(ops), specPath)
	}
	return ops, nil
}

// loadOperation loads one operation file as a document of its own.
func loadOperation(t *testing.T, template, method, file string) specOp {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%s %s: %v", method, template, err)
	}
	var op map[string]any
	if err := yaml.Unmarshal(raw, &op); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	delete(op, "x-codeSamples") // code samples, not part of the contract
	doc := map[string]any{
		"openapi": "3.0.0",
		"info":    map[string]any{"title": "DigitalOcean " + method + " " + template, "version": "2.0"},
		"servers": []any{map[string]any{"url": "https://api.digitalocean.com"}},
		"paths":   map[string]any{template: map[string]any{method: op}},
		"components": map[string]any{"securitySchemes": map[string]any{
			"bearer_auth": map[string]any{"type": "http", "scheme": "bearer"}}},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true
	abs, _ := filepath.Abs(file)
	loaded, err := loader.LoadFromDataWithPath(data, &url.URL{Path: abs})
	if err != nil {
		t.Fatalf("load %s %s from %s: %v", method, template, file, err)
	}
	if err := loaded.Validate(context.Background()); err != nil {
		t.Fatalf("%s %s (%s) does not validate: %v", method, template, file, err)
	}
	item := loaded.Paths.Find(template)
	upper := strings.ToUpper(method)
	return specOp{doc: loaded, template: template, method: upper, item: item, op: item.GetOperation(upper)}
}

// route is the kin route of the operation.
func (o specOp) route() *routers.Route {
	return &routers.Route{Spec: o.doc, Server: o.doc.Servers[0], Path: o.template, PathItem: o.item, Method: o.method, Operation: o.op}
}

// checkResponse validates an answer (status, headers, body) against the
// operation, and requires every header the spec declares for its status.
func checkResponse(t *testing.T, o specOp, req *http.Request, params map[string]string, rec *httptest.ResponseRecorder) {
	t.Helper()
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: o.route()},
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		t.Errorf("%s %d does not match %s %s: %v\nbody: %.500s", o.op.OperationID, rec.Code, o.method, o.template, err, rec.Body)
	}
	// kin checks the headers the sandbox sends; none is marked required.
	resp := o.op.Responses.Status(rec.Code)
	if resp == nil {
		resp = o.op.Responses.Default()
	}
	if resp != nil && resp.Value != nil {
		for name := range resp.Value.Headers {
			if rec.Header().Get(name) == "" {
				t.Errorf("%s %d: no %s header, which the spec declares", o.op.OperationID, rec.Code, name)
			}
		}
	}
}

func init() {
	// The spec serves the PDF as application/pdf, a type kin has no decoder for.
	openapi3filter.RegisterBodyDecoder("application/pdf", openapi3filter.FileBodyDecoder)
}

// TestResponsesMatchSpec validates the sandbox's answers (status, headers,
// body) for every operation it serves, errors included, against
// DigitalOcean's own spec with kin-openapi.
func TestResponsesMatchSpec(t *testing.T) {
	ops := loadSpec(t)
	s := New(Options{Now: func() time.Time { return fixedNow }})
	limited := New(Options{Now: func() time.Time { return fixedNow }, RateLimitPerMinute: 1})
	failing := New(Options{Now: func() time.Time { return fixedNow }, ErrorRates: map[int]float64{500: 1}})
	a := s.Account(testToken)
	inv, vol := a.Invoices[4].UUID, a.Volumes[9]
	unknown := "11111111-2222-4333-8444-555555555555"

	type call struct {
		name     string
		sandbox  *Sandbox
		token    string
		template string // the spec's path
		path     string
		params   map[string]string
		status   int
	}
	var calls []call
	add := func(template, path string, params map[string]string, notFound bool) {
		calls = append(calls,
			call{"ok", s, testToken, template, path, params, 200},
			call{"no token", s, "", template, path, params, 401},
			call{"rate limited", limited, testToken, template, path, params, 429},
			call{"server error", failing, testToken, template, path, params, 500},
		)
		if notFound {
			unknownPath := strings.Replace(path, params["invoice_uuid"]+params["volume_id"], unknown, 1)
			calls = append(calls, call{"unknown", s, testToken, template, unknownPath, map[string]string{"invoice_uuid": unknown}, 404})
		}
	}
	add("/v2/customers/my/billing_history", "/v2/customers/my/billing_history?per_page=5&page=2", nil, false)
	add("/v2/customers/my/invoices", "/v2/customers/my/invoices?per_page=5", nil, false)
	add("/v2/customers/my/invoices/{invoice_uuid}", "/v2/customers/my/invoices/"+inv+"?per_page=5&page=3", map[string]string{"invoice_uuid": inv}, true)
	add("/v2/customers/my/invoices/{invoice_uuid}", "/v2/customers/my/invoices/preview", map[string]string{"invoice_uuid": "preview"}, false)
	add("/v2/customers/my/invoices/{invoice_uuid}/summary", "/v2/customers/my/invoices/"+inv+"/summary", map[string]string{"invoice_uuid": inv}, true)
	add("/v2/customers/my/invoices/{invoice_uuid}/summary", "/v2/customers/my/invoices/preview/summary", map[string]string{"invoice_uuid": "preview"}, false)
	add("/v2/customers/my/invoices/{invoice_uuid}/csv", "/v2/customers/my/invoices/"+inv+"/csv", map[string]string{"invoice_uuid": inv}, true)
	add("/v2/customers/my/invoices/{invoice_uuid}/pdf", "/v2/customers/my/invoices/"+inv+"/pdf", map[string]string{"invoice_uuid": inv}, true)
	add("/v2/customers/my/balance", "/v2/customers/my/balance", nil, false)
	add("/v2/volumes", "/v2/volumes?per_page=3&page=2", nil, false)
	add("/v2/volumes", "/v2/volumes?name="+vol.Name+"&region="+vol.Region.Slug, nil, false)
	add("/v2/volumes/{volume_id}", "/v2/volumes/"+vol.ID, map[string]string{"volume_id": vol.ID}, true)
	calls = append(calls, call{"bad page", s, testToken, "/v2/volumes", "/v2/volumes?per_page=500", nil, 400})

	for _, c := range calls {
		t.Run(c.name+" "+c.path, func(t *testing.T) {
			spec, ok := ops["GET "+c.template]
			if !ok {
				t.Fatalf("the spec has no GET %s", c.template)
			}
			req := httptest.NewRequest(http.MethodGet, "https://api.digitalocean.com"+c.path, nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			if c.status == 429 {
				c.sandbox.ServeHTTP(httptest.NewRecorder(), req) // spend the one request a minute
			}
			rec := httptest.NewRecorder()
			c.sandbox.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %.300s", rec.Code, c.status, rec.Body)
			}
			checkResponse(t, spec, req, c.params, rec)
		})
	}
}

// TestSpecValidationBites makes sure the validation above can fail: broken
// bodies are refused.
func TestSpecValidationBites(t *testing.T) {
	ops := loadSpec(t)
	for _, c := range []struct {
		op, body string
		status   int
	}{
		{"GET /v2/volumes", `{"volumes":"not a list","meta":{"total":1}}`, 200},
		{"GET /v2/volumes", `{"volumes":[]}`, 200},
		{"GET /v2/customers/my/balance", `{"generated_at":"yesterday"}`, 200},
		{"GET /v2/customers/my/invoices/{invoice_uuid}/summary", `{"amount":12.5}`, 200},
		{"POST /v2/volumes/{volume_id}/actions", `{"action":{"id":1,"status":"done"}}`, 202},
		{"GET /v2/volumes/{volume_id}/actions", `{"actions":[{"id":"1"}],"meta":{"total":1}}`, 200},
		{"POST /v2/volumes/{volume_id}/snapshots", `{"snapshot":{"id":"a","name":"s","created_at":"2020-09-30T18:56:14Z","regions":["nyc1"],"min_disk_size":1,"size_gigabytes":1}}`, 201},
		{"GET /v2/volumes/{volume_id}/snapshots", `{"snapshots":[],"meta":{}}`, 200},
		{"POST /v2/volumes", `{"volume":{"droplet_ids":"none"}}`, 201},
		{"POST /v2/volumes", `{"message":"no id"}`, 422},
	} {
		spec := ops[c.op]
		req := httptest.NewRequest(spec.method, "https://api.digitalocean.com"+spec.template, nil)
		h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
		input := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Route: spec.route()},
			Status:                 c.status, Header: h, Body: io.NopCloser(strings.NewReader(c.body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), input); err == nil {
			t.Errorf("%s: the broken body %s passed validation", c.op, c.body)
		}
	}
	// The requests too: a create without a region, a resize without a size.
	for _, c := range []struct{ op, path, body string }{
		{"POST /v2/volumes", "/v2/volumes", `{"name":"a","size_gigabytes":1}`},
		{"POST /v2/volumes/{volume_id}/actions", "/v2/volumes/506f78a4-e098-11e5-ad9f-000f53306ae1/actions", `{"type":"resize"}`},
	} {
		spec := ops[c.op]
		req := httptest.NewRequest(spec.method, "https://api.digitalocean.com"+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		in := &openapi3filter.RequestValidationInput{Request: req, Route: spec.route(),
			PathParams: map[string]string{"volume_id": "506f78a4-e098-11e5-ad9f-000f53306ae1"},
			Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err == nil {
			t.Errorf("%s: the broken request %s passed validation", c.op, c.body)
		}
	}
}

// TestWriteResponsesMatchSpec validates the answers of the write side and
// of the reads that follow writes (volumes, actions, snapshots), refusals
// included, against DigitalOcean's spec; the requests of the successful
// calls are checked against the spec's request schemas too.
func TestWriteResponsesMatchSpec(t *testing.T) {
	ops := loadSpec(t)
	clock := newTestClock(fixedNow)
	s := New(Options{Now: clock.Now})
	a := s.Account(testToken)
	attached, _ := pickVolumes(t, a)
	droplet := ListedDroplets()["nyc1"][0]

	type call struct {
		name, method, template, path, body string
		params                             map[string]string
		status                             int
		sandbox                            *Sandbox
		token                              string
	}
	run := func(c call) *httptest.ResponseRecorder {
		t.Helper()
		spec, ok := ops[c.method+" "+c.template]
		if !ok {
			t.Fatalf("the spec has no %s %s", c.method, c.template)
		}
		if c.sandbox == nil {
			c.sandbox, c.token = s, testToken
		}
		newReq := func() *http.Request {
			req := httptest.NewRequest(c.method, "https://api.digitalocean.com"+c.path, strings.NewReader(c.body))
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			return req
		}
		if c.status == 429 {
			c.sandbox.ServeHTTP(httptest.NewRecorder(), newReq()) // spend the one request a minute
		}
		rec := httptest.NewRecorder()
		c.sandbox.ServeHTTP(rec, newReq())
		if rec.Code != c.status {
			t.Fatalf("%s: %s %s: status %d, want %d: %.300s", c.name, c.method, c.path, rec.Code, c.status, rec.Body)
		}
		req := newReq()
		if c.status < 300 {
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: c.params, Route: spec.route(),
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Errorf("%s: the test's own request does not match %s: %v", c.name, spec.op.OperationID, err)
			}
			req = newReq()
		}
		t.Run(c.name, func(t *testing.T) { checkResponse(t, spec, req, c.params, rec) })
		return rec
	}
	vol := func(id string) map[string]string { return map[string]string{"volume_id": id} }

	rec := run(call{name: "create", method: "POST", template: "/v2/volumes", path: "/v2/volumes", body: createBody, status: 201})
	v := decodeRec[upstream.VolumeResponse](t, rec).Volume
	run(call{name: "create, invalid name", method: "POST", template: "/v2/volumes", path: "/v2/volumes", body: `{"name":"Bad","size_gigabytes":1,"region":"nyc1"}`, status: 422})
	run(call{name: "create, name taken", method: "POST", template: "/v2/volumes", path: "/v2/volumes", body: createBody, status: 409})
	run(call{name: "create, not JSON", method: "POST", template: "/v2/volumes", path: "/v2/volumes", body: `{"name":`, status: 400})
	run(call{name: "list after create", method: "GET", template: "/v2/volumes", path: "/v2/volumes?name=ext4-example", status: 200})
	run(call{name: "get after create", method: "GET", template: "/v2/volumes/{volume_id}", path: "/v2/volumes/" + v.ID, params: vol(v.ID), status: 200})

	actions := "/v2/volumes/" + v.ID + "/actions"
	rec = run(call{name: "attach", method: "POST", template: "/v2/volumes/{volume_id}/actions", path: actions,
		body: fmt.Sprintf(`{"type":"attach","droplet_id":%d,"region":"nyc1","tags":["aninterestingtag"]}`, droplet), params: vol(v.ID), status: 202})
	ac := decodeRec[actionResponse](t, rec).Action
	one := actions + "/" + strconv.Itoa(ac.ID)
	actionParams := map[string]string{"volume_id": v.ID, "action_id": strconv.Itoa(ac.ID)}
	run(call{name: "action in progress", method: "GET", template: "/v2/volumes/{volume_id}/actions/{action_id}", path: one, params: actionParams, status: 200})
	run(call{name: "attach while busy", method: "POST", template: "/v2/volumes/{volume_id}/actions", path: actions, body: `{"type":"resize","size_gigabytes":100}`, params: vol(v.ID), status: 422})
	clock.Advance(DefaultActionDelay)
	run(call{name: "action completed", method: "GET", template: "/v2/volumes/{volume_id}/actions/{action_id}", path: one, params: actionParams, status: 200})
	run(call{name: "unknown action", method: "GET", template: "/v2/volumes/{volume_id}/actions/{action_id}", path: actions + "/7", params: map[string]string{"volume_id": v.ID, "action_id": "7"}, status: 404})
	run(call{name: "resize", method: "POST", template: "/v2/volumes/{volume_id}/actions", path: actions, body: `{"type":"resize","size_gigabytes":100,"region":"nyc1"}`, params: vol(v.ID), status: 202})
	run(call{name: "actions", method: "GET", template: "/v2/volumes/{volume_id}/actions", path: actions, params: vol(v.ID), status: 200})
	run(call{name: "actions, paged", method: "GET", template: "/v2/volumes/{volume_id}/actions", path: actions + "?per_page=1&page=2", params: vol(v.ID), status: 200})
	run(call{name: "actions of an unknown volume", method: "GET", template: "/v2/volumes/{volume_id}/actions", path: "/v2/volumes/506f78a4-e098-11e5-ad9f-000f53306ae1/actions", params: vol("506f78a4-e098-11e5-ad9f-000f53306ae1"), status: 404})
	run(call{name: "delete while attached", method: "DELETE", template: "/v2/volumes/{volume_id}", path: "/v2/volumes/" + attached.ID, params: vol(attached.ID), status: 409})
	run(call{name: "detach, wrong Droplet", method: "POST", template: "/v2/volumes/{volume_id}/actions", path: "/v2/volumes/" + attached.ID + "/actions", body: fmt.Sprintf(`{"type":"detach","droplet_id":%d}`, droplet), params: vol(attached.ID), status: 422})
	clock.Advance(DefaultActionDelay)
	run(call{name: "detach by name", method: "POST", template: "/v2/volumes/actions", path: "/v2/volumes/actions",
		body: fmt.Sprintf(`{"type":"detach","volume_name":"ext4-example","droplet_id":%d,"region":"nyc1"}`, droplet), status: 202})
	run(call{name: "by name, unknown volume", method: "POST", template: "/v2/volumes/actions", path: "/v2/volumes/actions",
		body: fmt.Sprintf(`{"type":"attach","volume_name":"nope","droplet_id":%d,"region":"nyc1"}`, droplet), status: 404})

	snaps := "/v2/volumes/" + v.ID + "/snapshots"
	rec = run(call{name: "snapshot", method: "POST", template: "/v2/volumes/{volume_id}/snapshots", path: snaps, body: `{"name":"big-data-snapshot1475261774","tags":["x"]}`, params: vol(v.ID), status: 201})
	snap := decodeRec[snapshotResponse](t, rec).Snapshot
	run(call{name: "snapshot without a name", method: "POST", template: "/v2/volumes/{volume_id}/snapshots", path: snaps, body: `{"name":""}`, params: vol(v.ID), status: 422})
	run(call{name: "snapshots", method: "GET", template: "/v2/volumes/{volume_id}/snapshots", path: snaps, params: vol(v.ID), status: 200})
	snapParams := map[string]string{"snapshot_id": snap.ID}
	run(call{name: "snapshot by id", method: "GET", template: "/v2/volumes/snapshots/{snapshot_id}", path: "/v2/volumes/snapshots/" + snap.ID, params: snapParams, status: 200})
	run(call{name: "delete snapshot", method: "DELETE", template: "/v2/volumes/snapshots/{snapshot_id}", path: "/v2/volumes/snapshots/" + snap.ID, params: snapParams, status: 204})
	run(call{name: "deleted snapshot", method: "GET", template: "/v2/volumes/snapshots/{snapshot_id}", path: "/v2/volumes/snapshots/" + snap.ID, params: snapParams, status: 404})
	run(call{name: "delete a deleted snapshot", method: "DELETE", template: "/v2/volumes/snapshots/{snapshot_id}", path: "/v2/volumes/snapshots/" + snap.ID, params: snapParams, status: 404})

	clock.Advance(DefaultActionDelay)
	run(call{name: "delete", method: "DELETE", template: "/v2/volumes/{volume_id}", path: "/v2/volumes/" + v.ID, params: vol(v.ID), status: 204})
	run(call{name: "delete a deleted volume", method: "DELETE", template: "/v2/volumes/{volume_id}", path: "/v2/volumes/" + v.ID, params: vol(v.ID), status: 404})
	run(call{name: "create again", method: "POST", template: "/v2/volumes", path: "/v2/volumes", body: createBody, status: 201})
	run(call{name: "delete by name", method: "DELETE", template: "/v2/volumes", path: "/v2/volumes?name=ext4-example&region=nyc1", status: 204})
	run(call{name: "delete by name, unknown", method: "DELETE", template: "/v2/volumes", path: "/v2/volumes?name=ext4-example&region=nyc1", status: 404})

	// Every write refused before it is looked at: no token, rate limited, a server fault.
	limited := New(Options{Now: clock.Now, RateLimitPerMinute: 1})
	failing := New(Options{Now: clock.Now, ErrorRates: map[int]float64{500: 1}})
	for _, w := range []call{
		{method: "POST", template: "/v2/volumes", path: "/v2/volumes", body: createBody},
		{method: "DELETE", template: "/v2/volumes", path: "/v2/volumes?name=a&region=nyc1"},
		{method: "DELETE", template: "/v2/volumes/{volume_id}", path: "/v2/volumes/" + attached.ID, params: vol(attached.ID)},
		{method: "POST", template: "/v2/volumes/{volume_id}/actions", path: "/v2/volumes/" + attached.ID + "/actions", body: `{"type":"resize","size_gigabytes":16000}`, params: vol(attached.ID)},
		{method: "POST", template: "/v2/volumes/actions", path: "/v2/volumes/actions", body: `{"type":"detach","volume_name":"a","droplet_id":1,"region":"nyc1"}`},
		{method: "POST", template: "/v2/volumes/{volume_id}/snapshots", path: "/v2/volumes/" + attached.ID + "/snapshots", body: `{"name":"s"}`, params: vol(attached.ID)},
		{method: "DELETE", template: "/v2/volumes/snapshots/{snapshot_id}", path: "/v2/volumes/snapshots/x", params: map[string]string{"snapshot_id": "x"}},
	} {
		for _, c := range []call{
			{name: "no token", status: 401, sandbox: s},
			{name: "rate limited", status: 429, sandbox: limited, token: testToken},
			{name: "server error", status: 500, sandbox: failing, token: testToken},
		} {
			c.method, c.template, c.path, c.body, c.params = w.method, w.template, w.path, w.body, w.params
			c.name += " " + w.method + " " + w.path
			run(c)
		}
	}
}
