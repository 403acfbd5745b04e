package graph

// Connection math: the arguments first/after/last/before become a window
// [start, end) of offsets into the upstream list, the window becomes one or two
// upstream pages, and the pages are sliced back into the window.
//
// Cursors are offsets ("v1:<kind>:<offset>", base64url) checked against the
// connection kind, so a volumes cursor is refused by invoices. Offset cursors
// mean: when DigitalOcean adds an item at the head of a list between two page
// requests (a new invoice, a new billing event, a new volume), every later
// item shifts by one, so the next page repeats the last item of the previous
// one; when one is removed, the next page skips one. Nothing breaks and no
// item is shown twice within one response; clients that need exactness
// re-read from the start.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oceangraph/oceangraph/graph/model"
)

const (
	defaultPageSize = 20
	maxPageSize     = 200
	// maxCursorOffset is beyond any list DigitalOcean serves; a larger offset
	// was not issued here, and refusing it keeps the page arithmetic far from overflow.
	maxCursorOffset = 1 << 30
)

// connectionKind names a connection in its cursors.
type connectionKind string

const (
	kindBillingHistory connectionKind = "billing"
	kindInvoices       connectionKind = "invoices"
	kindInvoiceItems   connectionKind = "items"
	kindVolumes        connectionKind = "volumes"
	kindVolumeActions  connectionKind = "actions"
	kindSnapshots      connectionKind = "snapshots"
)

// encodeCursor is the one cursor codec: base64url of "v1:<kind>:<offset>".
func encodeCursor(kind connectionKind, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + string(kind) + ":" + strconv.Itoa(offset)))
}

// decodeCursor returns the offset a cursor of this kind stands for.
func decodeCursor(kind connectionKind, cursor string) (int, error) {
	// Strict: a cursor that differs from the issued one only in the unused
	// trailing bits of its last character decodes to the same bytes otherwise.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(cursor)
	if err != nil {
		return 0, errBadCursor
	}
	rest, ok := strings.CutPrefix(string(raw), "v1:"+string(kind)+":")
	if !ok {
		return 0, errBadCursor
	}
	offset, err := strconv.Atoi(rest)
	if err != nil || offset < 0 || offset > maxCursorOffset || strconv.Itoa(offset) != rest {
		return 0, errBadCursor
	}
	return offset, nil
}

// pageArgs are a connection's four arguments as the resolver received them.
type pageArgs struct {
	First, Last   *int
	After, Before *string
}

// pageRequest is a validated pageArgs: offsets instead of cursors.
type pageRequest struct {
	size int
	// backward: `last` was given; the window ends at `before` or the end of the list.
	backward bool
	// after and before are exclusive offset bounds; -1 when not given.
	after, before int
}

// parsePageArgs checks a connection's arguments; every failure is a
// BAD_USER_INPUT raised before any upstream call.
func parsePageArgs(kind connectionKind, a pageArgs) (pageRequest, error) {
	r := pageRequest{size: defaultPageSize, after: -1, before: -1}
	if a.First != nil && a.Last != nil {
		return r, errFirstAndLast
	}
	for _, n := range []*int{a.First, a.Last} {
		if n == nil {
			continue
		}
		if *n < 0 {
			return r, errNegativeSize
		}
		if *n > maxPageSize {
			return r, errPageTooLarge
		}
		r.size = *n
	}
	r.backward = a.Last != nil
	var err error
	if a.After != nil {
		if r.after, err = decodeCursor(kind, *a.After); err != nil {
			return r, err
		}
	}
	if a.Before != nil {
		if r.before, err = decodeCursor(kind, *a.Before); err != nil {
			return r, err
		}
	}
	return r, nil
}

// pageArgsFrom reads a connection's arguments from a field's argument map
// (literals and variables alike), for the code that plans a field before its
// resolver runs (the upstream estimate, the invoice lookup); ok is false when
// one is not well-formed, and the field's own resolver then reports it.
func pageArgsFrom(args map[string]any) (a pageArgs, ok bool) {
	ok = true
	readInt := func(name string) *int {
		v, present := args[name]
		if !present || v == nil {
			return nil
		}
		n, isInt := intArg(v)
		ok = ok && isInt
		if !isInt {
			return nil
		}
		return &n
	}
	readString := func(name string) *string {
		v, present := args[name]
		if !present || v == nil {
			return nil
		}
		s, isString := v.(string)
		ok = ok && isString
		if !isString {
			return nil
		}
		return &s
	}
	a.First, a.Last = readInt("first"), readInt("last")
	a.After, a.Before = readString("after"), readString("before")
	return a, ok
}

// intArg reads an Int argument however it arrived: a literal (int64) or a
// variable (json.Number, or a Go number in tests), clamped to GraphQL's Int range.
func intArg(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int32:
		return int(n), true
	case int64:
		return int(max(min(n, math.MaxInt32), math.MinInt32)), true
	case float64:
		return int(max(min(n, math.MaxInt32), math.MinInt32)), true
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 32)
		return int(i), err == nil
	}
	return 0, false
}

// requestedPageSize is the number of items first (else last, else the
// default) asks for, clamped to what parsePageArgs accepts: an estimate of a
// page before its arguments are checked.
func requestedPageSize(first, last *int) int {
	for _, n := range []*int{first, last} {
		if n != nil {
			return min(max(*n, 0), maxPageSize)
		}
	}
	return defaultPageSize
}

// mostCalls is the most upstream calls resolveWindow makes for r and sel, the
// upstream estimate's rule (budget.go): a window from the start of the list is
// one page, any other may straddle two, and `last` without `before` learns the
// total first; a count alone is one call.
func (r pageRequest) mostCalls(sel connectionSelection) int {
	switch {
	case sel.items && (r.size > 0 || r.needsTotal()):
		calls := 2
		if !r.backward && r.after < 0 {
			calls = 1 // the window starts a page: per_page is the page size
		}
		if r.needsTotal() {
			calls++
		}
		return calls
	case sel.items || sel.count:
		return 1
	}
	return 0
}

// needsTotal reports whether the window can only be placed once the list's
// length is known: `last` without `before`.
func (r pageRequest) needsTotal() bool { return r.backward && r.before < 0 }

// window is the half-open range of offsets [start, end) a page covers.
type window struct{ start, end int }

func (w window) size() int { return max(w.end-w.start, 0) }

// window places the request in a list of total items (total is only read when
// needsTotal).
func (r pageRequest) window(total int) window {
	start := r.after + 1
	if !r.backward {
		end := start + r.size
		if r.before >= 0 {
			end = min(end, r.before)
		}
		return window{start, max(end, start)}
	}
	end := total
	if r.before >= 0 {
		end = r.before
	}
	return window{max(start, end-r.size, 0), max(end, 0)}
}

// pageSpan is the upstream pages (per_page and 1-based page numbers) that cover a window.
type pageSpan struct {
	perPage     int
	first, last int
}

// spanFor maps a window onto upstream pages. per_page is the requested page
// size, so forward paging from the start costs exactly one call per page. A
// window not aligned to it (after an arbitrary cursor, or backward) is served
// by the smallest per_page up to twice the size whose single page covers the
// window, which is never more items than the two pages it replaces and one call
// less; when there is none it straddles two pages, fetched concurrently.
func spanFor(w window, size int) pageSpan {
	size = max(size, w.size(), 1)
	for p := size; p <= min(2*size, maxPageSize); p++ {
		if w.start/p == (w.end-1)/p {
			return pageSpan{perPage: p, first: w.start/p + 1, last: w.start/p + 1}
		}
	}
	return pageSpan{perPage: size, first: w.start/size + 1, last: (w.end-1)/size + 1}
}

// listPage is what a connection needs from one upstream page.
type listPage[T any] struct {
	items []T
	// total is meta.total; nil when DigitalOcean left it out (billing history).
	total   *int
	hasNext bool
	// lastPage is the page number of links.pages.last, 0 when absent.
	lastPage int
}

// pageFetcher loads one upstream page of a list through the request's loaders.
type pageFetcher[T any] func(ctx context.Context, page, perPage int) (listPage[T], error)

// windowResult is a window's items and what the pages said about the list.
type windowResult[T any] struct {
	window window
	items  []T
	// total is meta.total as DigitalOcean reported it (totalCount); nil when it did not.
	total *int
	// length is the list's length as far as known (meta.total, or learned
	// from links.pages.last); nil when unknown, and then hasNext decides.
	length  *int
	hasNext bool
	// edges: the connection's edges are selected (each needs its cursor).
	edges bool
}

// countOnly learns a list's length with the cheapest call there is: page 1 of
// one item. Without meta.total the last page's number (per_page=1) is the
// length; nil when neither says.
func countOnly[T any](ctx context.Context, readPage pageFetcher[T]) (listPage[T], *int, error) {
	p, err := readPage(ctx, 1, 1)
	if err != nil {
		return p, nil, err
	}
	switch {
	case p.total != nil:
		return p, p.total, nil
	case p.lastPage > 0:
		n := p.lastPage
		return p, &n, nil
	case !p.hasNext:
		n := len(p.items)
		return p, &n, nil
	}
	return p, nil, nil
}

// loadWindow fetches the pages covering the request's window (concurrently
// when there are two) and slices them. For `last` without `before` it first
// learns the total with countOnly.
func loadWindow[T any](ctx context.Context, r pageRequest, readPage pageFetcher[T]) (windowResult[T], error) {
	var res windowResult[T]
	total := 0
	if r.needsTotal() {
		p, length, err := countOnly(ctx, readPage)
		if err != nil {
			return res, err
		}
		if length == nil {
			return res, &inputError{"`last` without `before` needs the list's length, which DigitalOcean does not report here; page forward instead"}
		}
		total, res.total, res.length = *length, p.total, length
	}
	res.window = r.window(total)
	if res.window.size() == 0 {
		return res, nil
	}
	span := spanFor(res.window, r.size)
	pages := make([]listPage[T], span.last-span.first+1)
	errs := concurrently(ctx, len(pages), func(i int) (err error) {
		pages[i], err = readPage(ctx, span.first+i, span.perPage)
		return err
	})
	base := (span.first - 1) * span.perPage
	var all []T
	for i, p := range pages {
		if errs[i] != nil {
			return res, errs[i]
		}
		all = append(all, p.items...)
		if p.total != nil {
			res.total, res.length = p.total, p.total
		}
	}
	last := pages[len(pages)-1]
	from := min(res.window.start-base, len(all))
	to := min(res.window.end-base, len(all))
	res.items = all[from:to]
	// Items beyond the window on the fetched pages, or a next page, mean more follow.
	res.hasNext = to < len(all) || (len(last.items) == span.perPage && last.hasNext)
	return res, nil
}

// pageInfo describes the window within the list.
func (res windowResult[T]) pageInfo(kind connectionKind) *model.PageInfo {
	pi := &model.PageInfo{HasPreviousPage: res.window.start > 0}
	if res.length != nil {
		pi.HasNextPage = res.window.start+len(res.items) < *res.length
	} else {
		pi.HasNextPage = res.hasNext
	}
	if n := len(res.items); n > 0 {
		start, end := encodeCursor(kind, res.window.start), encodeCursor(kind, res.window.start+n-1)
		pi.StartCursor, pi.EndCursor = &start, &end
	}
	return pi
}

// connectionSelection says which parts of a connection the query selected, so
// that a resolver fetches only what they need.
type connectionSelection struct {
	// items: edges, nodes or pageInfo (they need the window's pages).
	items bool
	// count: totalCount, or anything any page of the list carries (the preview).
	count bool
	// edges: edges are selected, not only nodes (cursors are made only for them).
	edges bool
}

// selectedParts reads the selection of the connection field being resolved.
// countFields are the fields answered by any page of the list.
func selectedParts(ctx context.Context, countFields ...string) connectionSelection {
	return partsOf(graphql.CollectFieldsCtx(ctx, nil), countFields)
}

// selectedPartsIn reads a connection's selection set from outside its field
// (the invoice resolver proving that an invoice exists with its items call).
func selectedPartsIn(ctx context.Context, set ast.SelectionSet, countFields ...string) connectionSelection {
	return partsOf(graphql.CollectFields(graphql.GetOperationContext(ctx), set, nil), countFields)
}

func partsOf(fields []graphql.CollectedField, countFields []string) connectionSelection {
	var sel connectionSelection
	for _, f := range fields {
		switch {
		case f.Name == "edges" || f.Name == "nodes" || f.Name == "pageInfo":
			sel.items = true
			sel.edges = sel.edges || f.Name == "edges"
		case f.Name == "totalCount" || slices.Contains(countFields, f.Name):
			sel.count = true
		}
	}
	return sel
}

// resolveWindow is what every connection resolver does: parse the arguments,
// then fetch only what the selection needs. When items are selected, the
// window's pages (they carry the total too); when only the count is, one
// per_page=1 call; when neither, nothing.
func resolveWindow[T any](ctx context.Context, kind connectionKind, a pageArgs, sel connectionSelection, readPage pageFetcher[T]) (res windowResult[T], err error) {
	defer func() { res.edges = sel.edges }()
	r, err := parsePageArgs(kind, a)
	if err != nil {
		return res, err
	}
	var fetched atomic.Bool
	counting := func(ctx context.Context, page, perPage int) (listPage[T], error) {
		fetched.Store(true)
		return readPage(ctx, page, perPage)
	}
	switch {
	case sel.items && (r.size > 0 || r.needsTotal()):
		if res, err = loadWindow(ctx, r, counting); err != nil || fetched.Load() {
			// A fetched page answers the count too (a nil total means
			// DigitalOcean reports none, and totalCount is null).
			return res, err
		}
		// The window is empty and nothing was fetched; count below.
	case sel.items || sel.count:
		w := r.window(0)
		if r.backward {
			res.window = window{w.end, w.end}
		} else {
			res.window = window{w.start, w.start}
		}
	default:
		return res, nil
	}
	p, length, err := countOnly(ctx, readPage)
	if err != nil {
		return res, err
	}
	res.total, res.length = p.total, length
	res.hasNext = res.window.start < len(p.items) || p.hasNext
	return res, nil
}

// nodesAndEdges converts the window's items into a connection's nodes and,
// when they are selected, edges (each edge carrying its item's cursor). The
// nodes are views over the items (node points into them rather than copying)
// and live in one array: one allocation for a page, not one a node.
func nodesAndEdges[T, M, E any](res windowResult[T], kind connectionKind, node func(*T) M, edge func(cursor string, n *M) E) ([]*M, []E) {
	views := make([]M, len(res.items))
	nodes, edges := make([]*M, len(res.items)), []E{}
	if res.edges {
		edges = make([]E, 0, len(res.items))
	}
	for i := range res.items {
		views[i] = node(&res.items[i])
		nodes[i] = &views[i]
		if res.edges {
			edges = append(edges, edge(encodeCursor(kind, res.window.start+i), nodes[i]))
		}
	}
	return nodes, edges
}

// totalCount is meta.total for a connection whose totalCount is non-null (0 when DigitalOcean omitted it).
func (res windowResult[T]) totalCount() int {
	if res.total == nil {
		return 0
	}
	return *res.total
}
