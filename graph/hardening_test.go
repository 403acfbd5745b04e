package graph

// Regression tests of issue 9 (hardening): each fails on the code before its fix.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/complexity"

	"github.com/oceangraph/oceangraph/graph/generated"
)

// rawResponse is one answer of the handler as a client sees it.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
	json   map[string]json.RawMessage
}

// serve sends req to h and decodes the answer's JSON, when it is JSON.
func serve(t *testing.T, h http.Handler, req *http.Request) rawResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	out := rawResponse{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	_ = json.Unmarshal(out.body, &out.json)
	return out
}

// firstCode is errors[0].extensions.code of a GraphQL answer.
func (r rawResponse) firstCode() string {
	var errs []gqlError
	_ = json.Unmarshal(r.json["errors"], &errs)
	if len(errs) == 0 {
		return ""
	}
	code, _ := errs[0].Extensions["code"].(string)
	return code
}

func postRequest(query string, headers ...string) *http.Request {
	body, _ := json.Marshal(map[string]any{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

// ---- 2: base64 aliases multiply memory ----------------------------------

func TestBase64EveryWriteIsChargedBeforeAnyDownload(t *testing.T) {
	stub := newStub().on("/v2/customers/my/invoices/preview/pdf", 200, strings.Repeat("%PDF", 1<<10), "Content-Type", "application/pdf")
	h := newHarness(t, stub, func(c *Config) {
		c.MaxBase64FileBytes = 1 << 20
		c.MaxBase64RequestBytes = 10 << 20 // 7 writes of a 1 MiB file (1.33 MiB of base64 each)
	})
	aliases := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "b%d: base64 ", i)
		}
		return `{ invoice(uuid: "preview") { files { pdf { ` + b.String() + `} } } }`
	}
	// 300 aliases are over the cost limit (100 a write); 150 are within it, and over the byte budget.
	resp := h.post(aliases(300), nil)
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeComplexityLimitExceeded {
		t.Fatalf("300 aliases of base64: errors %+v, want one %s", resp.Errors, codeComplexityLimitExceeded)
	}
	resp = h.post(aliases(150), nil)
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeBase64BudgetExceeded {
		t.Fatalf("150 aliases of base64: errors %+v, want one %s", resp.Errors, codeBase64BudgetExceeded)
	}
	if calls := stub.calls(); len(calls) != 0 {
		t.Errorf("a refused operation made upstream calls %v, want none", calls)
	}
	resp = h.post(aliases(7), nil)
	if len(resp.Errors) != 0 {
		t.Fatalf("7 aliases within the budget: errors %+v", resp.Errors)
	}
	if calls := stub.calls(); len(calls) != 1 {
		t.Errorf("7 aliases of one file made %d downloads, want 1", len(calls))
	}
}

func TestBase64ProcessWideBoundRefusesWhileOthersHoldIt(t *testing.T) {
	stub := newStub().on("/v2/customers/my/invoices/preview/pdf", 200, "%PDF-1.4", "Content-Type", "application/pdf")
	h := newHarness(t, stub, func(c *Config) {
		c.MaxBase64FileBytes = 1 << 20       // 1.4 MB of base64 a write
		c.MaxBase64RequestBytes = 4608 << 10 // 3 writes
		c.MaxBase64ProcessBytes = 5 << 20    // 3 writes, not 4
	})
	const three = `{ invoice(uuid: "preview") { files { pdf { a: base64 b: base64 c: base64 } } } }`
	const one = `{ invoice(uuid: "preview") { files { pdf { base64 } } } }`
	// One request holds most of the process-wide bound while its download waits.
	stub.mu.Lock()
	stub.hold, stub.arrived = make(chan struct{}), make(chan struct{}, 1)
	stub.mu.Unlock()
	first := make(chan gqlResponse, 1)
	go func() { first <- h.post(three, nil) }()
	select {
	case <-stub.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the upstream")
	}
	stub.mu.Lock()
	hold := stub.hold
	stub.hold, stub.arrived = nil, nil
	stub.mu.Unlock()
	resp := h.post(one, nil)
	close(hold)
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeBase64BudgetExceeded {
		t.Errorf("a request over the process-wide bound: errors %+v, want %s", resp.Errors, codeBase64BudgetExceeded)
	}
	if r := <-first; len(r.Errors) != 0 {
		t.Errorf("the request within the bound: errors %+v", r.Errors)
	}
	// Released at the end of the request: it fits again.
	if r := h.post(one, nil); len(r.Errors) != 0 {
		t.Errorf("after the others finished: errors %+v, want none", r.Errors)
	}
}

// ---- 3: file links follow Host and X-Forwarded-Host -------------------------

func TestFileLinksHonourForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	const query = `{ invoice(uuid: "preview") { files { pdf { url } } } }`
	linkHost := func(t *testing.T, h *harness, remote string, headers ...string) (string, rawResponse) {
		t.Helper()
		req := postRequest(query, append([]string{"Authorization", "Bearer " + callerToken}, headers...)...)
		req.Host = "og.internal:8080"
		req.RemoteAddr = remote
		r := serve(t, h.handler, req)
		var data struct {
			Invoice *struct {
				Files struct{ PDF struct{ URL string } }
			}
		}
		_ = json.Unmarshal(r.json["data"], &data)
		if data.Invoice == nil {
			return "", r
		}
		u, err := url.Parse(data.Invoice.Files.PDF.URL)
		if err != nil {
			t.Fatalf("link %q does not parse: %v", data.Invoice.Files.PDF.URL, err)
		}
		return u.Scheme + "://" + u.Host, r
	}
	untrusted := newSandboxHarness(t, func(c *Config) {
		c.PublicURL = ""
		c.Links, _ = newTestFileLinks(t, fileTestKey)
	})
	for _, hdr := range [][]string{
		{"X-Forwarded-Host", "attacker.example", "X-Forwarded-Proto", "https"},
		{"Forwarded", `host=attacker.example;proto=https`},
	} {
		if got, _ := linkHost(t, untrusted, "203.0.113.9:4000", hdr...); got != "http://og.internal:8080" {
			t.Errorf("%v from an untrusted peer: link on %s, want the Host header's http://og.internal:8080", hdr, got)
		}
	}
	trusted := newSandboxHarness(t, func(c *Config) {
		c.PublicURL = ""
		c.Links, _ = newTestFileLinks(t, fileTestKey)
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	if got, _ := linkHost(t, trusted, "10.1.2.3:4000", "X-Forwarded-Host", "api.example.com", "X-Forwarded-Proto", "https"); got != "https://api.example.com" {
		t.Errorf("X-Forwarded-* from a trusted proxy: link on %s, want https://api.example.com", got)
	}
	if got, _ := linkHost(t, trusted, "10.1.2.3:4000", "Forwarded", `for=198.51.100.1;host="api.example.com:8443";proto=https`); got != "https://api.example.com:8443" {
		t.Errorf("Forwarded from a trusted proxy: link on %s, want https://api.example.com:8443", got)
	}
	for _, bad := range []string{"legit@attacker.example", "attacker.example/x?a=", "<b>x</b>", "a b", "host:99999"} {
		got, r := linkHost(t, trusted, "10.1.2.3:4000", "X-Forwarded-Host", bad)
		if got != "" || r.firstCode() != CodeBadRequest {
			t.Errorf("X-Forwarded-Host %q: link on %q, code %q; want no link and %s", bad, got, r.firstCode(), CodeBadRequest)
		}
	}
}

// ---- 4: file fields have an overall deadline and stop at the cap -------------

func TestFileFieldsStopAtTheirDeadlineAndAtTheCap(t *testing.T) {
	var written atomic.Int64
	endless := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/summary") { // the lookup's proof that the invoice exists
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"invoice_uuid": "x"}`))
			return
		}
		w.Header().Set("Content-Type", "application/pdf")
		chunk := bytes.Repeat([]byte("x"), 4<<10)
		trickle := strings.HasSuffix(r.URL.Path, "/slow/pdf")
		for end := time.Now().Add(30 * time.Second); r.Context().Err() == nil && time.Now().Before(end); {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if trickle {
				time.Sleep(10 * time.Millisecond) // a trickle: never silent for long, never done
			}
		}
	})
	h := newHarness(t, endless, func(c *Config) {
		c.FileTimeout = 300 * time.Millisecond
		c.MaxBase64FileBytes = 256 << 10
	})
	done := make(chan gqlResponse, 1)
	go func() { done <- h.post(`{ invoice(uuid: "slow") { files { pdf { byteSize } } } }`, nil) }()
	select {
	case resp := <-done:
		if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeUpstreamUnavailable {
			t.Errorf("a trickling file: errors %+v, want one %s (the deadline)", resp.Errors, codeUpstreamUnavailable)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("byteSize of a file that trickles forever did not end")
	}

	written.Store(0)
	resp := h.post(`{ invoice(uuid: "big") { files { pdf { byteSize } } } }`, nil)
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeBadUserInput {
		t.Errorf("an endless fast file: errors %+v, want one %s past the cap", resp.Errors, codeBadUserInput)
	}
	if n := written.Load(); n > 4<<20 {
		t.Errorf("the upstream wrote %d bytes before the read stopped, want about the 256 KiB cap", n)
	}
}

// ---- 5: a bound on the JSON bytes one request holds ---------------------------

func TestRequestBoundsTheJSONBytesItHolds(t *testing.T) {
	page := func(n int) string {
		vols := make([]string, n)
		for i := range vols {
			vols[i] = fmt.Sprintf(`{"id":"v%d","name":"%s"}`, i, strings.Repeat("n", 900))
		}
		return `{"volumes":[` + strings.Join(vols, ",") + `],"meta":{"total":1000}}`
	}
	stub := newStub().on("/v2/volumes", 200, page(100)) // ~92 KB a page
	h := newHarness(t, stub, func(c *Config) { c.MaxUpstreamBytes = 150 << 10 })
	resp := h.post(`{ a: volumes(first: 100) { nodes { id } } b: volumes(first: 100, after: "`+encodeCursor(kindVolumes, 99)+`") { nodes { id } } }`, nil)
	var codes []any
	for _, e := range resp.Errors {
		codes = append(codes, e.Extensions["code"])
	}
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeUpstreamBytesExceeded {
		t.Errorf("two 92 KB pages under a 150 KiB bound: codes %v, want one %s", codes, codeUpstreamBytesExceeded)
	}
}

// ---- 6: client mistakes are not internal errors -------------------------------

func TestClientMistakesAreCodedAndNotLoggedAsErrors(t *testing.T) {
	h := newSandboxHarness(t, func(c *Config) {
		c.Introspection, c.PublicURL = false, ""
		c.Links, _ = newTestFileLinks(t, fileTestKey)
	})

	r := serve(t, h.handler, postRequest(`{ __schema { types { name } } }`, "Authorization", "Bearer "+callerToken))
	if r.firstCode() != "GRAPHQL_VALIDATION_FAILED" {
		t.Errorf("introspection while off: code %q, want GRAPHQL_VALIDATION_FAILED: %s", r.firstCode(), r.body)
	}

	req := postRequest(`{ invoice(uuid: "preview") { files { pdf { url } } } }`, "Authorization", "Bearer "+callerToken)
	req.Host = ""
	if r := serve(t, h.handler, req); r.firstCode() != CodeBadRequest {
		t.Errorf("no Host header: code %q, want %s: %s", r.firstCode(), CodeBadRequest, r.body)
	}

	h.sandbox.Reset()
	long := "Bearer " + strings.Repeat("t", 3000)
	r = serve(t, h.handler, postRequest(`{ invoices(first: 1) { nodes { uuid files { pdf { url } } } } }`, "Authorization", long))
	if r.firstCode() != codeUnauthenticated {
		t.Errorf("a 3000-byte token: code %q, want %s: %s", r.firstCode(), codeUnauthenticated, r.body)
	}
	if calls := h.upstreamCalls(); len(calls) != 0 {
		t.Errorf("a 3000-byte token reached DigitalOcean: %v", calls)
	}
	if strings.Contains(h.logs.String(), "level=ERROR") {
		t.Errorf("client mistakes logged at ERROR:\n%s", h.logs.String())
	}
}

// ---- 8: ids are checked before any upstream call ------------------------------

func TestIDsAreCheckedBeforeAnyUpstreamCall(t *testing.T) {
	h := newSandboxHarness(t)
	huge := strings.Repeat("a", 900<<10)
	for _, q := range []string{
		`{ invoice(uuid: "` + huge + `") { amount } }`,
		`{ invoice(uuid: "a/b") { amount } }`,
		`{ volume(id: "` + huge + `") { name } }`,
		`{ volume(id: "a b") { name } }`,
		`{ invoice(uuid: "x%2F..") { items { totalCount } } }`,
		`{ _entities(representations: [{__typename: "Volume", id: "` + strings.Repeat("v", 300) + `"}]) { ... on Volume { name } } }`,
	} {
		h.sandbox.Reset()
		resp := h.post(q, nil)
		// Refused by the argument check, which names the argument, not by the client's last-line guard.
		if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeBadUserInput ||
			!strings.Contains(resp.Errors[0].Message, "` must be 1 to 64") {
			t.Errorf("%.80s: errors %.300v, want one BAD_USER_INPUT naming the argument", q, resp.Errors)
		}
		if calls := h.upstreamCalls(); len(calls) != 0 {
			t.Errorf("%.80s: upstream calls %v, want none", q, calls)
		}
	}
	// The ids DigitalOcean uses still pass.
	h.sandbox.Reset()
	if resp := h.post(`{ invoice(uuid: "22737513-0ea7-4206-8ceb-98a575af7681") { amount } }`, nil); len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != CodeNotFound {
		t.Errorf("a well-formed unknown uuid: errors %+v, want NOT_FOUND from DigitalOcean", resp.Errors)
	}
}

// ---- 10: the rest -------------------------------------------------------------

func TestQueryAnswersAreNotStored(t *testing.T) {
	h := newSandboxHarness(t)
	req := httptest.NewRequest(http.MethodGet, "/query?query="+url.QueryEscape(`{ balance { accountBalance } }`), nil)
	req.Header.Set("Authorization", "Bearer "+callerToken)
	r := serve(t, h.handler, req)
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET /query: status %d, Cache-Control %q; want 200 and no-store", r.status, r.header.Get("Cache-Control"))
	}
}

func TestTwoAuthorizationHeadersAreRefused(t *testing.T) {
	h := newSandboxHarness(t)
	h.sandbox.Reset()
	r := serve(t, h.handler, postRequest(`{ balance { accountBalance } }`, "Authorization", "Bearer a", "Authorization", "Bearer b"))
	if r.status != http.StatusBadRequest || r.firstCode() != CodeBadRequest {
		t.Errorf("two Authorization headers: %d %q, want 400 %s: %s", r.status, r.firstCode(), CodeBadRequest, r.body)
	}
	if calls := h.upstreamCalls(); len(calls) != 0 {
		t.Errorf("upstream calls %v, want none", calls)
	}
}

func TestAPQDecodeErrorsAnswer400(t *testing.T) {
	h := newSandboxHarness(t)
	for _, ext := range []string{`{"persistedQuery": "nope"}`, `{"persistedQuery": {"version": 2, "sha256Hash": "x"}}`} {
		req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(`{"extensions": `+ext+`}`))
		req.Header.Set("Content-Type", "application/json")
		r := serve(t, h.handler, req)
		if r.status != http.StatusBadRequest || r.firstCode() != CodeBadRequest {
			t.Errorf("APQ extension %s: %d %q, want 400 %s: %s", ext, r.status, r.firstCode(), CodeBadRequest, r.body)
		}
	}
}

func TestMistypedVariableSaysWhatIsWrong(t *testing.T) {
	h := newSandboxHarness(t)
	resp := h.post(`query($n: Int) { volumes(first: $n) { totalCount } }`, map[string]any{"n": 0.5})
	if len(resp.Errors) != 1 || strings.Contains(resp.Errors[0].Message, "value 0") ||
		!strings.Contains(resp.Errors[0].Message, "$n") || !strings.Contains(resp.Errors[0].Message, "0.5") {
		t.Errorf("first: 0.5 as $n: errors %+v, want a message naming $n and 0.5", resp.Errors)
	}
}

// ---- 12: the GraphQL-over-HTTP media types ------------------------------------

func TestMediaTypesOfGraphQLOverHTTP(t *testing.T) {
	h := newSandboxHarness(t)
	cases := []struct {
		name, accept, query string
		vars                string
		status              int
	}{
		{"parse failure, application/json", "application/json", `{`, "", 200},
		{"validation failure, application/json", "application/json", `{ nope }`, "", 200},
		{"variable coercion, application/json", "application/json", `query($id: ID!) { volume(id: $id) { name } }`, `{"id": null}`, 200},
		{"parse failure, graphql-response+json", "application/graphql-response+json", `{`, "", 400},
		{"validation failure, graphql-response+json", "application/graphql-response+json", `{ nope }`, "", 400},
		{"variable coercion, graphql-response+json", "application/graphql-response+json", `query($id: ID!) { volume(id: $id) { name } }`, `{"id": null}`, 400},
		{"parse failure, no Accept", "", `{`, "", 200},
	}
	for _, c := range cases {
		body := `{"query": ` + string(must(json.Marshal(c.query)))
		if c.vars != "" {
			body += `, "variables": ` + c.vars
		}
		req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(body+"}"))
		req.Header.Set("Content-Type", "application/json")
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		r := serve(t, h.handler, req)
		wantType := c.accept
		if wantType == "" {
			wantType = "application/json"
		}
		if r.status != c.status || !strings.HasPrefix(r.header.Get("Content-Type"), wantType) {
			t.Errorf("%s: %d %s, want %d %s: %s", c.name, r.status, r.header.Get("Content-Type"), c.status, wantType, r.body)
		}
		if _, ok := r.json["data"]; ok {
			t.Errorf("%s: the answer has a data entry, want none (the request never ran): %s", c.name, r.body)
		}
		if r.json["errors"] == nil {
			t.Errorf("%s: no errors: %s", c.name, r.body)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var _ = io.Discard

func TestBase64WritesCostEach(t *testing.T) {
	es := entitiesCost{generated.NewExecutableSchema(*executableSchema())}
	cost := func(q string) int {
		return complexity.Calculate(context.Background(), es, operation(t, q), nil)
	}
	one := cost(`{ invoice(uuid: "u") { files { pdf { a: base64 } } } }`)
	three := cost(`{ invoice(uuid: "u") { files { pdf { a: base64 b: base64 c: base64 } } } }`)
	if three-one != 2*base64Cost || base64Cost < 100 {
		t.Errorf("cost of 1 base64 %d, of 3 aliases %d: want each write to cost %d", one, three, base64Cost)
	}
	if c := cost(`{ invoices(first: 20) { nodes { files { pdf { base64 } } } } }`); c < 20*base64Cost {
		t.Errorf("base64 on 20 invoices costs %d, want at least %d", c, 20*base64Cost)
	}
}
