package graph

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

const summaryPath = "/v2/customers/my/invoices/22737513-0ea7-4206-8ceb-98a575af7681/summary"

// A transient failure (5xx) is not kept as the answer: a later field of the
// same request asks DigitalOcean again and gets the data.
func TestTransientFailureIsNotCached(t *testing.T) {
	stub := newStub().
		on(summaryPath, 503, `{"id":"service_unavailable","message":"try again"}`).
		onFile(t, summaryPath, "invoice_summary.json")
	h := newHarness(t, stub)
	// The lookup's summary call fails; the summary field then retries it.
	resp := h.post(`{ invoice(uuid: "22737513-0ea7-4206-8ceb-98a575af7681") { summary { amount } } }`, nil)
	if len(resp.Errors) != 0 {
		t.Fatalf("errors: %+v", resp.Errors)
	}
	assertJSON(t, "summary after a retry", resp.Data, `{"invoice":{"summary":{"amount":"27.13"}}}`)
	assertCalls(t, "a retried summary", stub.calls(), []string{"GET " + summaryPath, "GET " + summaryPath})
}

// A permanent failure (403) is kept: every field that needs the call gets the
// same error, for one call.
func TestPermanentFailureIsCached(t *testing.T) {
	stub := newStub().on(summaryPath, 403, `{"id":"forbidden","message":"You do not have access for the attempted action."}`)
	h := newHarness(t, stub)
	resp := h.post(`{ invoice(uuid: "22737513-0ea7-4206-8ceb-98a575af7681") { amount period summary { amount } } }`, nil)
	if len(resp.Errors) != 3 {
		t.Fatalf("want 3 errors (amount, period, summary), got %+v", resp.Errors)
	}
	for _, e := range resp.Errors {
		if e.Extensions["code"] != "FORBIDDEN" || len(e.Path) != 2 || e.Path[0] != "invoice" {
			t.Errorf("want FORBIDDEN at [invoice, field], got %+v", e)
		}
	}
	assertCalls(t, "one forbidden summary", stub.calls(), []string{"GET " + summaryPath})
}

// No request has more upstream calls in flight than MaxConcurrency.
func TestConcurrencyBound(t *testing.T) {
	const bound, volumes = 3, 10
	stub := newStub()
	stub.hold = make(chan struct{})
	stub.arrived = make(chan struct{}, volumes)
	var q strings.Builder
	q.WriteString("{")
	for i := range volumes {
		id := fmt.Sprintf("vol-%d", i)
		stub.onFile(t, "/v2/volumes/"+id, "volume.json")
		fmt.Fprintf(&q, ` v%d: volume(id: %q) { id }`, i, id)
	}
	q.WriteString(" }")
	h := newHarness(t, stub, func(c *Config) { c.MaxConcurrency = bound })

	var wg sync.WaitGroup
	var resp gqlResponse
	wg.Go(func() { resp = h.post(q.String(), nil) })
	// Let the bound fill up before releasing anything: a broken bound would
	// let more requests in than it allows while these are held.
	for range bound {
		<-stub.arrived
	}
	for range volumes {
		stub.hold <- struct{}{}
	}
	wg.Wait()
	if len(resp.Errors) != 0 {
		t.Fatalf("errors: %+v", resp.Errors)
	}
	if got := stub.maxFlight.Load(); got != bound {
		t.Errorf("most upstream calls in flight: got %d, want the bound %d", got, bound)
	}
	if got := len(stub.calls()); got != volumes {
		t.Errorf("upstream calls: got %d, want %d", got, volumes)
	}
}

// Every response carries the newest rate-limit headers; null without a call.
func TestRateLimitExtension(t *testing.T) {
	h := newHarness(t, newStub().onFile(t, balancePath, "balance.json"))
	resp := h.post(`{ balance { accountBalance } }`, nil)
	want := map[string]any{"limit": 5000.0, "remaining": 4816.0, "resetAt": "2015-10-15T17:57:13Z"}
	if got := resp.Extensions["rateLimit"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("extensions.rateLimit: got %v, want %v", got, want)
	}
	resp = h.post(`{ __typename }`, nil)
	if got, ok := resp.Extensions["rateLimit"]; !ok || got != nil {
		t.Errorf("without an upstream call: want rateLimit null, got %v (present %v)", got, ok)
	}
	// An error answer carries the headers too.
	h = newHarness(t, newStub().on(balancePath, 500, `{"id":"server_error","message":"Unexpected server-side error"}`))
	if got := h.post(`{ balance { accountBalance } }`, nil).Extensions["rateLimit"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after an upstream error: got %v, want %v", got, want)
	}
}

// The caller's bearer token is used; without one, the configured default; two
// tokens see two accounts.
func TestTokens(t *testing.T) {
	h := newSandboxHarness(t, func(c *Config) { c.DefaultToken = sandbox.DemoToken })
	firstVolume := func(auth string) string {
		resp := h.postAs(auth, `{ volumes(first: 1) { nodes { id } } }`, nil)
		var data struct {
			Volumes struct{ Nodes []struct{ ID string } }
		}
		decode(t, resp, &data)
		if len(data.Volumes.Nodes) != 1 {
			t.Fatalf("%q: no volume: %s %+v", auth, resp.Data, resp.Errors)
		}
		return data.Volumes.Nodes[0].ID
	}
	if got, want := firstVolume("Bearer "+callerToken), h.sandbox.Account(callerToken).Volumes[0].ID; got != want {
		t.Errorf("bearer token: got volume %s, want %s", got, want)
	}
	if got, want := firstVolume(""), h.sandbox.Account(sandbox.DemoToken).Volumes[0].ID; got != want {
		t.Errorf("default token: got volume %s, want %s", got, want)
	}
	if firstVolume("Bearer a") == firstVolume("Bearer b") {
		t.Errorf("two tokens saw the same account")
	}
}

// Strange upstream values never fail a query: an unknown billing type is
// UNKNOWN, unparseable numbers and timestamps are null, timestamps in other
// shapes are normalised to UTC with a Z.
func TestUpstreamQuirksBecomeNulls(t *testing.T) {
	stub := newStub().
		on("/v2/customers/my/billing_history", 200, `{"billing_history":[
			{"type":"FutureThing","amount":"1.00","date":"not a date"},
			{"type":"Credit","amount":"abc","date":"2018-06-01T10:44:38+02:00"},
			{"date":"2018-06-01 08:44:38 +0000"}],
			"links":{"pages":{"next":"https://api.digitalocean.com/v2/customers/my/billing_history?page=2&per_page=3"}},"meta":{}}`).
		on("/v2/customers/my/invoices/u", 200, `{"invoice_items":[
			{"duration":"744.5","start_time":"2020-01-01T00:00:00.250Z","end_time":"2020-02-01T00:00:00.000Z"},
			{"duration":"n/a","start_time":"yesterday"}],"meta":{"total":2}}`).
		on("/v2/customers/my/invoices/u/summary", 200, `{"product_charges":{"items":[{"name":"x","count":"1"},{"name":"y","count":"many"}]}}`)
	h := newHarness(t, stub)
	resp := h.post(`{
		billingHistory(first: 3) { totalCount pageInfo { hasNextPage } nodes { type amount date description } }
		invoice(uuid: "u") { items(first: 2) { nodes { duration startTime endTime product } } summary { productCharges { items { count } } userBillingAddress { city } } }
	}`, nil)
	if len(resp.Errors) != 0 {
		t.Fatalf("errors: %+v", resp.Errors)
	}
	assertJSON(t, "quirks", resp.Data, `{
		"billingHistory":{"totalCount":null,"pageInfo":{"hasNextPage":true},"nodes":[
			{"type":"UNKNOWN","amount":"1.00","date":null,"description":null},
			{"type":"CREDIT","amount":null,"date":"2018-06-01T08:44:38Z","description":null},
			{"type":"UNKNOWN","amount":null,"date":"2018-06-01T08:44:38Z","description":null}]},
		"invoice":{"items":{"nodes":[
			{"duration":744.5,"startTime":"2020-01-01T00:00:00.25Z","endTime":"2020-02-01T00:00:00Z","product":null},
			{"duration":null,"startTime":null,"endTime":null,"product":null}]},
			"summary":{"productCharges":{"items":[{"count":1},{"count":null}]},"userBillingAddress":null}}}`)
}

// Introspection follows the configuration; _service { sdl } declares the
// entities and the shared PageInfo.
func TestIntrospectionSwitchAndServiceSDL(t *testing.T) {
	for _, on := range []bool{true, false} {
		h := newHarness(t, newStub(), func(c *Config) { c.Introspection = on })
		resp := h.post(`{ __schema { queryType { name } } }`, nil)
		if got := len(resp.Errors) == 0; got != on {
			t.Errorf("introspection %v: query succeeded %v (%+v)", on, got, resp.Errors)
		}
		if !on {
			continue // _service with introspection off: entities.go's federationSDL, tested in entities_test.go
		}
		var data struct {
			Service struct{ SDL string } `json:"_service"`
		}
		decode(t, h.post(`{ _service { sdl } }`, nil), &data)
		for _, want := range []string{`type Invoice @key(fields: "uuid")`, `type Volume @key(fields: "id")`, `type PageInfo @shareable`, `@link(url: "https://specs.apollo.dev/federation/v2.7"`} {
			if !strings.Contains(data.Service.SDL, want) {
				t.Errorf("_service.sdl lacks %q", want)
			}
		}
	}
}

// A volume read in a list page answers volume(id) without a call of its own.
func TestListedVolumesArePrimed(t *testing.T) {
	// The by-id loader is made after the page (priming waits for it) or before.
	for _, byIDFirst := range []bool{false, true} {
		stub := newStub().onFile(t, "/v2/volumes", "volumes.json")
		srv := httptest.NewServer(stub)
		t.Cleanup(srv.Close)
		s := newRequestScope(Config{Client: mustClient(t, srv.URL), MaxConcurrency: 8}, callerToken, nil)
		ctx := withScope(t.Context(), s)
		want := []string{"GET /v2/volumes?page=1&per_page=2"}
		if byIDFirst {
			_, _ = loadVolume(ctx, "another")
			want = append(want, "GET /v2/volumes/another")
		}
		if _, err := volumePages("", "")(ctx, 1, 2); err != nil {
			t.Fatal(err)
		}
		v, err := loadVolume(ctx, "506f78a4-e098-11e5-ad9f-000f53305eb2")
		if err != nil || v.Region.Slug != "nyc3" {
			t.Fatalf("primed volume (by-id loader first: %v): got %+v, %v", byIDFirst, v, err)
		}
		slices.Sort(want)
		assertCalls(t, fmt.Sprintf("list then by id (by-id loader first: %v)", byIDFirst), stub.calls(), want)
	}
}

// TestALoadMakesNoSpareBatchInput: every batch holds one key, so a Load's
// batcher needs room for one request, not dataloader's default 1,000 (an
// 8 KB channel buffer a Load, held for the whole upstream call).
func TestALoadMakesNoSpareBatchInput(t *testing.T) {
	l := newLoader(false, func(_ context.Context, k int) (int, error) { return k, nil })
	ctx := context.Background()
	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n { // a batcher each (no token in ctx: each answers an error, which costs the same)
		_, _ = load(ctx, l, i)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 4096 {
		t.Fatalf("%d bytes allocated a Load, want at most 4 KiB (a batcher sized for one request; 10 KB with the default)", per)
	}
}
