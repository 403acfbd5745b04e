package graph

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestCursorCodec(t *testing.T) {
	c := encodeCursor(kindVolumes, 41)
	if off, err := decodeCursor(kindVolumes, c); err != nil || off != 41 {
		t.Errorf("round trip: got %d, %v; want 41", off, err)
	}
	for name, bad := range map[string]string{
		"another connection's cursor":  encodeCursor(kindInvoices, 41),
		"not base64":                   "%%%",
		"foreign text":                 "aGVsbG8",
		"negative offset":              b64("v1:volumes:-1"),
		"overflowing offset":           b64("v1:volumes:9223372036854775807"),
		"offset past any list":         b64("v1:volumes:1073741825"),
		"padded number":                b64("v1:volumes:041"),
		"other version":                b64("v2:volumes:1"),
		"empty":                        "",
		"issued cursor, trailing bits": withTrailingBits(encodeCursor(kindVolumes, 41)),
	} {
		if _, err := decodeCursor(kindVolumes, bad); err != errBadCursor {
			t.Errorf("%s (%q): got %v, want errBadCursor", name, bad, err)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// withTrailingBits is cursor with the lowest of its last character's unused
// bits set or cleared: lenient base64 decodes it to the same bytes. cursor's
// length must leave bits unused (its byte count not a multiple of 3).
func withTrailingBits(cursor string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, cursor[len(cursor)-1])
	return cursor[:len(cursor)-1] + string(alphabet[last^1])
}

func TestWindowPlacement(t *testing.T) {
	i := func(n int) *int { return &n }
	s := func(off int) *string { c := encodeCursor(kindVolumes, off); return &c }
	cases := []struct {
		name  string
		args  pageArgs
		total int
		want  window
	}{
		{"default page", pageArgs{}, 100, window{0, 20}},
		{"first", pageArgs{First: i(5)}, 100, window{0, 5}},
		{"first after", pageArgs{First: i(5), After: s(9)}, 100, window{10, 15}},
		{"first before clamps", pageArgs{First: i(5), Before: s(3)}, 100, window{0, 3}},
		{"first zero", pageArgs{First: i(0)}, 100, window{0, 0}},
		{"last at the end", pageArgs{Last: i(5)}, 100, window{95, 100}},
		{"last before", pageArgs{Last: i(5), Before: s(20)}, 100, window{15, 20}},
		{"last before near the start", pageArgs{Last: i(5), Before: s(2)}, 100, window{0, 2}},
		{"last after and before", pageArgs{Last: i(5), After: s(16), Before: s(20)}, 100, window{17, 20}},
		{"last longer than the list", pageArgs{Last: i(50)}, 7, window{0, 7}},
	}
	for _, c := range cases {
		r, err := parsePageArgs(kindVolumes, c.args)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := r.window(c.total); got != c.want {
			t.Errorf("%s: window got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSpanFor(t *testing.T) {
	cases := []struct {
		w    window
		size int
		want pageSpan
	}{
		{window{0, 20}, 20, pageSpan{20, 1, 1}},
		{window{40, 60}, 20, pageSpan{20, 3, 3}},
		{window{2, 5}, 3, pageSpan{5, 1, 1}},         // one page of 5 rather than two of 3
		{window{19, 24}, 5, pageSpan{6, 4, 4}},       // last 5 of 24: page 4 of 6
		{window{100, 250}, 150, pageSpan{150, 1, 2}}, // no single page up to 200 covers it
		{window{0, 2}, 5, pageSpan{5, 1, 1}},
	}
	for _, c := range cases {
		if got := spanFor(c.w, c.size); got != c.want {
			t.Errorf("spanFor(%v, %d): got %+v, want %+v", c.w, c.size, got, c.want)
		}
		got := spanFor(c.w, c.size)
		from, to := (got.first-1)*got.perPage, got.last*got.perPage
		if c.w.start < from || c.w.end > to || got.perPage > maxPageSize {
			t.Errorf("spanFor(%v, %d) = %+v does not cover the window within per_page %d", c.w, c.size, got, maxPageSize)
		}
	}
}

// Every argument check is BAD_USER_INPUT, at the field's path, before any upstream call.
func TestArgumentChecks(t *testing.T) {
	h := newSandboxHarness(t)
	u := h.sandbox.Account(callerToken).Invoices[0].UUID
	volumesCursor := encodeCursor(kindVolumes, 0)
	connections := map[string]string{
		"billingHistory": `billingHistory(%s) { totalCount }`,
		"invoices":       `invoices(%s) { totalCount }`,
		"volumes":        `volumes(%s) { totalCount }`,
		"items":          `invoice(uuid: "` + u + `") { uuid items(%s) { totalCount } }`,
	}
	args := map[string]string{
		"first and last":       `first: 1, last: 1`,
		"negative first":       `first: -1`,
		"negative last":        `last: -1`,
		"first above 200":      `first: 201`,
		"last above 200":       `last: 201`,
		"after not a cursor":   `after: "nonsense"`,
		"before not a cursor":  `before: "nonsense"`,
		"another kind's after": `after: "` + volumesCursor + `"`,
	}
	for conn, tmpl := range connections {
		for name, a := range args {
			if conn == "volumes" && name == "another kind's after" {
				a = `after: "` + encodeCursor(kindInvoices, 0) + `"`
			}
			t.Run(conn+"/"+name, func(t *testing.T) {
				h.sandbox.Reset()
				resp := h.post("{ "+fmt.Sprintf(tmpl, a)+" }", nil)
				if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
					t.Fatalf("want one BAD_USER_INPUT, got %+v", resp.Errors)
				}
				if calls := h.upstreamCalls(); conn != "items" && len(calls) != 0 {
					t.Errorf("want no upstream call, got %q", calls)
				}
			})
		}
	}
	for name, query := range map[string]string{
		"empty invoice uuid":      `{ invoice(uuid: "") { uuid } }`,
		"empty volume id":         `{ volume(id: "") { id } }`,
		"empty entity uuid":       `{ _entities(representations: [{__typename: "Invoice", uuid: ""}]) { ... on Invoice { uuid } } }`,
		"empty entity id":         `{ _entities(representations: [{__typename: "Volume", id: ""}]) { ... on Volume { id } } }`,
		"volumes cursor on items": `{ invoice(uuid: "preview") { items(after: "` + volumesCursor + `") { totalCount } } }`,
		// Only the exact cursor this server issued is accepted (strict base64url).
		"issued cursor, trailing bits": `{ volumes(after: "` + withTrailingBits(encodeCursor(kindVolumes, 41)) + `") { totalCount } }`,
	} {
		t.Run(name, func(t *testing.T) {
			h.sandbox.Reset()
			resp := h.post(query, nil)
			if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
				t.Fatalf("want one BAD_USER_INPUT, got %+v", resp.Errors)
			}
			if calls := h.upstreamCalls(); len(calls) != 0 {
				t.Errorf("want no upstream call, got %q", calls)
			}
		})
	}
}

// Paging forward and backward through all volumes with the cursors the API
// hands out visits every volume once, in order, with a consistent pageInfo.
func TestPagingThroughVolumes(t *testing.T) {
	h := newSandboxHarness(t)
	want := h.sandbox.Account(callerToken).Volumes
	type page struct {
		Volumes struct {
			TotalCount int
			Edges      []struct {
				Cursor string
				Node   struct{ ID string }
			}
			PageInfo struct {
				HasNextPage, HasPreviousPage bool
				StartCursor, EndCursor       *string
			}
		}
	}
	const q = `query($first: Int, $after: String, $last: Int, $before: String) {
		volumes(first: $first, after: $after, last: $last, before: $before) {
			totalCount edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`

	var forward []string
	vars := map[string]any{"first": 25}
	for n := 0; ; n++ {
		var p page
		h.mustData(q, vars, &p)
		for _, e := range p.Volumes.Edges {
			forward = append(forward, e.Node.ID)
		}
		if p.Volumes.PageInfo.HasPreviousPage != (n > 0) {
			t.Errorf("forward page %d: hasPreviousPage %v", n, p.Volumes.PageInfo.HasPreviousPage)
		}
		if !p.Volumes.PageInfo.HasNextPage {
			break
		}
		vars = map[string]any{"first": 25, "after": *p.Volumes.PageInfo.EndCursor}
	}
	var backward []string
	vars = map[string]any{"last": 30}
	for {
		var p page
		h.mustData(q, vars, &p)
		var ids []string
		for _, e := range p.Volumes.Edges {
			ids = append(ids, e.Node.ID)
		}
		backward = append(ids, backward...)
		if !p.Volumes.PageInfo.HasPreviousPage {
			break
		}
		vars = map[string]any{"last": 30, "before": *p.Volumes.PageInfo.StartCursor}
	}
	for name, got := range map[string][]string{"forward": forward, "backward": backward} {
		if len(got) != len(want) {
			t.Fatalf("%s: visited %d volumes, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i].ID {
				t.Fatalf("%s: volume %d is %s, want %s", name, i, got[i], want[i].ID)
			}
		}
	}
}

// Without meta.total (billing history may leave it out) totalCount is null,
// yet `last` still pages backward from the length links.pages.last gives.
func TestBillingHistoryWithoutTotal(t *testing.T) {
	const length = 5
	var mu sync.Mutex
	var calls []string
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		perPage, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		var entries []string
		for i := (page - 1) * perPage; i < min(page*perPage, length); i++ {
			entries = append(entries, fmt.Sprintf(`{"type":"Payment","description":"event %d"}`, i))
		}
		last := (length + perPage - 1) / perPage
		links := `{}`
		if page < last {
			links = fmt.Sprintf(`{"pages":{"next":"https://api.digitalocean.com/v2/customers/my/billing_history?page=%d&per_page=%d","last":"https://api.digitalocean.com/v2/customers/my/billing_history?page=%d&per_page=%d"}}`, page+1, perPage, last, perPage)
		}
		fmt.Fprintf(w, `{"billing_history":[%s],"links":%s,"meta":{}}`, strings.Join(entries, ","), links)
	})
	h := newHarness(t, upstream)
	taken := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Sorted(slices.Values(calls))
		calls = nil
		return out
	}
	resp := h.post(`{ billingHistory { totalCount } }`, nil)
	assertJSON(t, "count only", resp.Data, `{"billingHistory":{"totalCount":null}}`)
	assertCalls(t, "count only", taken(), []string{"GET /v2/customers/my/billing_history?page=1&per_page=1"})

	resp = h.post(`{ billingHistory(last: 2) { totalCount nodes { description } pageInfo { hasNextPage hasPreviousPage } } }`, nil)
	if len(resp.Errors) > 0 {
		t.Fatalf("errors: %+v", resp.Errors)
	}
	assertJSON(t, "last 2 of 5", resp.Data, `{"billingHistory":{"totalCount":null,
		"nodes":[{"description":"event 3"},{"description":"event 4"}],
		"pageInfo":{"hasNextPage":false,"hasPreviousPage":true}}}`)
	assertCalls(t, "last 2 of 5", taken(), []string{
		"GET /v2/customers/my/billing_history?page=1&per_page=1",
		"GET /v2/customers/my/billing_history?page=2&per_page=3",
	})

	resp = h.post(`{ billingHistory(first: 2) { pageInfo { hasNextPage } } more: billingHistory(first: 3, after: "`+encodeCursor(kindBillingHistory, 1)+`") { pageInfo { hasNextPage } } }`, nil)
	assertJSON(t, "hasNextPage from the pages", resp.Data, `{"billingHistory":{"pageInfo":{"hasNextPage":true}},"more":{"pageInfo":{"hasNextPage":false}}}`)
}
