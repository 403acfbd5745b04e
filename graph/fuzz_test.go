package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/oceangraph/oceangraph/internal/queries"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// Fuzz targets for everything a client controls: cursors, file links and
// whole GraphQL requests. No input may crash or hang the server, and every
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

// FuzzFileLink: Open accepts exactly the links this key sealed. Anything
// else, however it was altered, is errFileLinkInvalid (403 at the route).
func FuzzFileLink(f *testing.F) {
	links, err := NewFileLinks(bytes.Repeat([]byte{7}, minFileLinkKeySize), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	other, _ := NewFileLinks(bytes.Repeat([]byte{8}, minFileLinkKeySize), time.Hour)
	seal := func(l *FileLinks, uuid string, format upstream.FileFormat, token string) string {
		s, err := l.seal(uuid, format, token)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	good := seal(links, "22737513-0ea7-4206-8ceb-98a575af7681", upstream.FormatPDF, "dop_v1_secret")
	f.Add(good, "22737513-0ea7-4206-8ceb-98a575af7681", "dop_v1_secret", uint16(0), uint8(0))
	f.Add(good, "preview", "", uint16(10), uint8(1))
	f.Add(good[:len(good)-1], "x", "t", uint16(40), uint8(0x80))
	f.Add(seal(other, "u", upstream.FormatCSV, ""), "u", "", uint16(0), uint8(0))
	f.Add("", "", "", uint16(0), uint8(0))
	f.Add("AQ", "..", strings.Repeat("t", 2049), uint16(1), uint8(1))
	f.Add(strings.Repeat("A", 5000), "u", "t", uint16(0), uint8(0))
	// The download route in front of an upstream that is never reached: a
	// forged link must be refused before any call.
	refusing, err := upstream.New(upstream.Config{BaseURL: "http://127.0.0.1:1", MaxRetries: -1})
	if err != nil {
		f.Fatal(err)
	}
	route := downloadRoutes(refusing, links, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, opaque, uuid, token string, flipAt uint16, flipBits uint8) {
		// Arbitrary input: refused unless it is a link this key sealed.
		g, err := links.open(opaque)
		if err != nil {
			if !errors.Is(err, errFileLinkInvalid) && !errors.Is(err, errFileLinkExpired) {
				t.Fatalf("Open(%q): error %v is neither invalid nor expired", opaque, err)
			}
		} else if g.UUID == "" || (g.Format != upstream.FormatCSV && g.Format != upstream.FormatPDF) {
			t.Fatalf("Open(%q) granted %+v", opaque, g)
		}
		// (An empty, "." or ".." segment is net/http's path cleaning, not a link.)
		if err != nil && opaque != "" && opaque != "." && opaque != ".." {
			rec := httptest.NewRecorder()
			route.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/files/"+url.PathEscape(opaque)+"/invoice.pdf", nil))
			if rec.Code != http.StatusForbidden && rec.Code != http.StatusNotFound {
				t.Fatalf("GET /files/%q: HTTP %d, want 403 (or 404 for a path that is no link): %s", opaque, rec.Code, rec.Body)
			}
			var body struct{ Error struct{ Code string } }
			if json.Unmarshal(rec.Body.Bytes(), &body) != nil || (body.Error.Code != codeForbidden && body.Error.Code != CodeNotFound) {
				t.Fatalf("GET /files/%q: body without FORBIDDEN or NOT_FOUND: %s", opaque, rec.Body)
			}
		}

		// A sealed link opens to exactly what was sealed, and never shows the token.
		for _, format := range []upstream.FileFormat{upstream.FormatCSV, upstream.FormatPDF} {
			sealed, err := links.seal(uuid, format, token)
			if err != nil {
				return // out of the documented limits (empty or long uuid, long token)
			}
			if token != "" && len(token) >= 4 && strings.Contains(sealed, token) {
				t.Fatalf("the sealed link %q shows the token %q", sealed, token)
			}
			g, err := links.open(sealed)
			if err != nil || g.UUID != uuid || g.Format != format || g.Token != token {
				t.Fatalf("seal(%q, %s, %q) opened as %+v, %v", uuid, format, token, g, err)
			}
			// Any change to it is refused.
			raw := []byte(sealed)
			i := int(flipAt) % len(raw)
			if flipBits == 0 {
				flipBits = 1
			}
			raw[i] ^= flipBits
			if _, err := links.open(string(raw)); err == nil && string(raw) != sealed {
				if decoded, derr := base64.RawURLEncoding.DecodeString(string(raw)); derr == nil {
					orig, _ := base64.RawURLEncoding.DecodeString(sealed)
					if !bytes.Equal(decoded, orig) {
						t.Fatalf("an altered link (byte %d ^ %#x) still opens", i, flipBits)
					}
				}
			}
			if _, err := other.open(sealed); !errors.Is(err, errFileLinkInvalid) {
				t.Fatalf("a link sealed with another key: got %v, want errFileLinkInvalid", err)
			}
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
	links, _ := NewFileLinks(bytes.Repeat([]byte{7}, minFileLinkKeySize), 0)
	return NewHandler(Config{
		Client:        client,
		Introspection: true,
		PublicURL:     "https://og.example",
		Links:         links,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Extensions:    []graphql.HandlerExtension{NewTelemetry(nil)},
	})
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
