package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// Fuzz targets for everything a client controls: cursors and whole GraphQL
// requests here, file links in filelinks_test.go. No input may crash or hang the server, and every
// bad one must come back as an error with a code. CI runs each for ~30s:
//
//	go test -run '^$' -fuzz '^FuzzCursor$' -fuzztime 30s ./graph
//	go test -run '^$' -fuzz '^FuzzFileLink$' -fuzztime 30s ./graph
//	go test -run '^$' -fuzz '^FuzzGraphQLRequest$' -fuzztime 30s ./graph

var fuzzKinds = []connectionKind{kindBillingHistory, kindInvoices, kindInvoiceItems, kindVolumes}

// FuzzCursor: a cursor is either one this server issued (its offset
// round-trips) or BAD_USER_INPUT; and whatever page arguments come with it, the
// window they select is a sane range that maps onto sane upstream pages.
func FuzzCursor(f *testing.F) {
	for i, k := range fuzzKinds {
		f.Add(uint8(i), encodeCursor(k, 0), int32(20), true, false, int32(100))
		f.Add(uint8(i), encodeCursor(k, 199), int32(200), false, true, int32(24))
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []string{
		"", "=", "djE6dm9sdW1lczow", // v1:volumes:0
		b64("v1:volumes:-1"), b64("v1:volumes:007"), b64("v1:volumes:1e3"), b64("v1:volumes: 1"),
		b64("v1:volumes:9223372036854775807"), b64("v1:volumes:9223372036854775808"), b64("v1:invoices:5"),
		base64.StdEncoding.EncodeToString([]byte("v1:volumes:5")), b64("v2:volumes:5"), "not base64!", "\x00\xff",
	} {
		f.Add(uint8(3), c, int32(-1), true, true, int32(0))
		f.Add(uint8(3), c, int32(5), false, false, int32(math.MaxInt32))
		f.Add(uint8(3), c, int32(20), true, false, int32(100))
	}
	f.Fuzz(func(t *testing.T, kindIndex uint8, cursor string, size int32, forward, useBefore bool, total int32) {
		kind := fuzzKinds[int(kindIndex)%len(fuzzKinds)]
		offset, err := decodeCursor(kind, cursor)
		if err != nil {
			var input *inputError
			if !errors.As(err, &input) {
				t.Fatalf("decodeCursor(%q): error %T %v is not BAD_USER_INPUT", cursor, err, err)
			}
		} else if back, err := decodeCursor(kind, encodeCursor(kind, offset)); offset < 0 || err != nil || back != offset {
			// (Base64 without Strict() also accepts a cursor whose unused last
			// bits differ from the issued one's: the same offset, harmless.)
			t.Fatalf("decodeCursor(%q) accepted offset %d, which does not round-trip (%d, %v)", cursor, offset, back, err)
		}

		n := int(size)
		args := pageArgs{}
		if forward {
			args.First = &n
		} else {
			args.Last = &n
		}
		if useBefore {
			args.Before = &cursor
		} else {
			args.After = &cursor
		}
		r, err := parsePageArgs(kind, args)
		if err != nil {
			var input *inputError
			if !errors.As(err, &input) {
				t.Fatalf("parsePageArgs: error %T %v is not BAD_USER_INPUT", err, err)
			}
			return
		}
		w := r.window(max(int(total), 0))
		if w.size() > maxPageSize || (w.size() > 0 && w.start < 0) {
			t.Fatalf("cursor %q (offset %d), size %d, forward %v, before %v, total %d: window [%d, %d) is not a range of at most %d",
				cursor, offset, n, forward, useBefore, total, w.start, w.end, maxPageSize)
		}
		if w.size() == 0 {
			return
		}
		span := spanFor(w, r.size)
		base := (span.first - 1) * span.perPage
		if span.first < 1 || span.last < span.first || span.last-span.first > 1 || span.perPage < 1 || span.perPage > maxPageSize ||
			base > w.start || span.last*span.perPage < w.end {
			t.Fatalf("window [%d, %d) maps onto pages %+v, which do not cover it with at most two pages of at most %d",
				w.start, w.end, span, maxPageSize)
		}
	})
}

// newFuzzServer is one handler in front of one sandbox for a whole fuzz run,
// built as server.go builds it (guards and telemetry included).
func newFuzzServer(f *testing.F) http.Handler {
	sb := sandbox.New(sandbox.Options{Seed: 1})
	up := httptest.NewServer(sb)
	client, err := upstream.New(upstream.Config{BaseURL: up.URL, Timeout: 5 * time.Second, MaxRetries: -1, Observe: ObserveUpstream})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { client.CloseIdleConnections(); up.Close() })
	return newHarnessAt(f, up.URL, func(c *Config) {
		c.Client = client
		c.Logger = slog.New(slog.DiscardHandler) // a whole fuzz run's lines would pile up
	}).handler
}

// fuzzQueries are the seeds of FuzzGraphQLRequest: the canonical queries and
// a bad input of every kind the API documents.
var fuzzQueries = []struct{ query, variables string }{
	{queries.Dashboard, ``},
	{queries.VolumesPage, ``},
	{queries.InvoiceItems, `{"uuid":"preview"}`},
	{queries.BillingPage, ``},
	{`{ billingHistory(first: 20) { totalCount edges { cursor node { type amount invoice { uuid } } } } }`, ``},
	{`{ balance { monthToDateBalance accountBalance generatedAt } invoicePreview { uuid amount } }`, ``},
	{`query($a: String) { volumes(first: 2, after: $a) { nodes { id } pageInfo { endCursor } } }`, `{"a":"djE6dm9sdW1lczox"}`},
	{`query($a: String) { volumes(last: 3, before: $a) { nodes { id } } }`, `{"a":"bm90IGEgY3Vyc29y"}`},
	{`{ volumes(first: 1, last: 1) { nodes { id } } }`, ``},
	{`query($a: String) { volumes(first: 20, after: $a) { totalCount nodes { id } pageInfo { hasNextPage } } }`, `{"a":"djE6dm9sdW1lczo5MjIzMzcyMDM2ODU0Nzc1ODA3"}`},
	{`query($a: String) { volumes(first: 20, after: $a) { nodes { id } } }`, `{"a":"djE6dm9sdW1lczo5MjIzMzcyMDM2ODU0Nzc1ODA2"}`},
	{`{ volumes(first: -1) { nodes { id } } }`, ``},
	{`{ invoices(first: 201) { nodes { uuid } } }`, ``},
	{`{ invoice(uuid: "") { uuid } volume(id: "") { id } }`, ``},
	{`{ invoice(uuid: "../../volumes") { uuid amount } volume(id: "..") { name } }`, ``},
	{`{ invoice(uuid: "00000000-0000-0000-0000-000000000000") { uuid amount files { pdf { url byteSize } } } }`, ``},
	{`{ a: volumes(first: 5) { nodes { id } } b: volumes(first: 5) { nodes { id } } }`, ``},
	{`fragment V on Volume { id name } { volumes { nodes { ...V } } }`, ``},
	{`{ volumes { nodes { id`, ``},
	{`{ nope }`, ``},
	{`query($n: Int) { volumes(first: $n) { nodes { id } } }`, `{"n":"twenty"}`},
	{`{ __schema { types { name } } }`, ``},
	{`{ _service { sdl } }`, ``},
	{`query($r: [_Any!]!) { _entities(representations: $r) { ... on Volume { id name } ... on Invoice { uuid amount } } }`,
		`{"r":[{"__typename":"Volume","id":"x"},{"__typename":"Invoice","uuid":"preview"}]}`},
	{`query($r: [_Any!]!) { _entities(representations: $r) { ... on Volume { id } } }`, `{"r":[{"__typename":"Nope"},{"__typename":"Volume"},{"id":"x"},1]}`},
	{`mutation { x }`, ``},
	{`subscription { x }`, ``},
	{``, ``},
	{`{ invoices(first: 200) { nodes { items(first: 200) { nodes { amount } } } } }`, ``},
}

// FuzzGraphQLRequest sends whole requests through the handler (against the
// sandbox): the answer is always a JSON GraphQL response, never a 5xx, every
// error carries a code and none is an internal error, and it comes in time.
func FuzzGraphQLRequest(f *testing.F) {
	h := newFuzzServer(f)
	for _, q := range fuzzQueries {
		f.Add(q.query, q.variables, "")
	}
	f.Add(`{ volumes { nodes { id } } }`, ``, "Basic dXNlcjpwYXNz")
	f.Add(`{ volumes { nodes { id } } }`, ``, "Bearer ")
	f.Fuzz(func(t *testing.T, query, variables, authorization string) {
		body := map[string]any{"query": query}
		if variables != "" {
			var vars map[string]any
			if json.Unmarshal([]byte(variables), &vars) == nil {
				body["variables"] = vars
			} else {
				body["variables"] = variables // a string where an object belongs
			}
		}
		raw, _ := json.Marshal(body)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/query", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		if authorization == "" {
			authorization = "Bearer " + callerToken
		}
		req.Header.Set("Authorization", authorization)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ctx.Err() != nil {
			t.Fatalf("no answer within 20s to %s", raw)
		}
		checkGraphQLAnswer(t, rec.Code, rec.Body.Bytes(), raw)
	})
}

// checkGraphQLAnswer asserts what every answer to any request must be.
func checkGraphQLAnswer(t *testing.T, status int, body, request []byte) {
	t.Helper()
	if status >= 500 {
		t.Fatalf("HTTP %d for %s: %s", status, request, body)
	}
	var resp gqlResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("HTTP %d, body is not JSON (%v) for %s: %s", status, err, request, body)
	}
	if status != http.StatusOK && len(resp.Errors) == 0 {
		t.Fatalf("HTTP %d without errors for %s: %s", status, request, body)
	}
	for _, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		switch {
		case code == "":
			t.Fatalf("error without extensions.code for %s: %+v", request, e)
		case code == codeInternal:
			t.Fatalf("INTERNAL_SERVER_ERROR (a panic or bug) for %s: %+v", request, e)
		}
	}
}
