package graph

// The guards of the GraphQL handler: automatic persisted queries, and three
// limits checked after validation and before any resolver runs, so that a
// refused query costs DigitalOcean nothing. Each is a gqlgen handler extension;
// Guards returns them in the order they should run (cheapest first).

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oceangraph/oceangraph/upstream"
)

// The codes of the guards' refusals, in errors[].extensions.code.
// COMPLEXITY_LIMIT_EXCEEDED is gqlgen's own; the others follow its pattern.
const (
	CodeComplexityLimitExceeded = "COMPLEXITY_LIMIT_EXCEEDED"
	CodeDepthLimitExceeded      = "DEPTH_LIMIT_EXCEEDED"
	CodeUpstreamBudgetExceeded  = "UPSTREAM_BUDGET_EXCEEDED"
)

// Defaults of the guards' settings.
const (
	DefaultMaxComplexity    = 20000
	DefaultMaxDepth         = 12
	DefaultMaxUpstreamCalls = 60
	DefaultAPQCacheSize     = 1000
)

// maxExpandedFields bounds the fields a document may expand to through its
// fragments: fragments that spread each other twice over double at every level,
// and every walker over the operation (gqlgen's complexity included) would
// follow them.
const maxExpandedFields = 10000

// GuardLimits are the guards' settings; a zero or negative limit takes its default.
type GuardLimits struct {
	// MaxComplexity bounds the operation's cost, in which a connection's
	// selection counts once per item of the requested page.
	MaxComplexity int
	// MaxDepth bounds how deeply fields nest (fragments add no depth;
	// introspection is left to gqlparser's own rule).
	MaxDepth int
	// MaxUpstreamCalls bounds the DigitalOcean calls one request may make, as
	// estimated from the operation before it runs.
	MaxUpstreamCalls int
	// APQCacheSize is how many persisted queries the LRU cache keeps.
	APQCacheSize int
}

func (l GuardLimits) withDefaults() GuardLimits {
	def := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	return GuardLimits{
		MaxComplexity:    def(l.MaxComplexity, DefaultMaxComplexity),
		MaxDepth:         def(l.MaxDepth, DefaultMaxDepth),
		MaxUpstreamCalls: def(l.MaxUpstreamCalls, DefaultMaxUpstreamCalls),
		APQCacheSize:     def(l.APQCacheSize, DefaultAPQCacheSize),
	}
}

// Guards returns the extensions for handler.Server.Use, in order: persisted
// queries (before parsing), then the depth, cost and upstream-call limits.
func Guards(l GuardLimits) []graphql.HandlerExtension {
	l = l.withDefaults()
	return []graphql.HandlerExtension{
		NewAPQ(l.APQCacheSize),
		FederationSDL{},
		DepthLimit{Max: l.MaxDepth},
		&CostLimit{Max: l.MaxComplexity},
		UpstreamBudget{Max: l.MaxUpstreamCalls},
	}
}

// NewAPQ is automatic persisted queries (Apollo's protocol: a client sends the
// query's sha256 and, on PERSISTED_QUERY_NOT_FOUND, the query with its hash)
// over an LRU cache of size queries. The cache is per process: a replica that
// has not seen a query answers PERSISTED_QUERY_NOT_FOUND and the client resends it.
func NewAPQ(size int) extension.AutomaticPersistedQuery {
	return extension.AutomaticPersistedQuery{Cache: lru.New[string](size)}
}

// ---- _service { sdl } without introspection -------------------------------

// FederationSDL keeps `_service { sdl }` answering when introspection is
// switched off: gqlgen's federation code refuses it whenever the operation's
// DisableIntrospection is set, but a gateway needs it to compose the
// supergraph. An operation that asks for no __schema or __type gets the flag
// cleared, which changes nothing else (it only guards those fields and _service).
type FederationSDL struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = FederationSDL{}

// ExtensionName names the extension in gqlgen's list.
func (FederationSDL) ExtensionName() string { return "FederationSDL" }

// Validate accepts any schema.
func (FederationSDL) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext clears DisableIntrospection for operations without introspection fields.
func (FederationSDL) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.DisableIntrospection && !introspects(opCtx.Operation.SelectionSet, new(int)) {
		opCtx.DisableIntrospection = false
	}
	return nil
}

// introspects reports whether set asks for __schema or __type anywhere; a
// document too large to walk counts as asking.
func introspects(set ast.SelectionSet, seen *int) bool {
	for _, sel := range set {
		if *seen++; *seen > maxExpandedFields {
			return true
		}
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" || introspects(s.SelectionSet, seen) {
				return true
			}
		case *ast.InlineFragment:
			if introspects(s.SelectionSet, seen) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && introspects(s.Definition.SelectionSet, seen) {
				return true
			}
		}
	}
	return false
}

// ---- depth ---------------------------------------------------------------

// DepthLimit refuses an operation whose fields nest deeper than Max.
type DepthLimit struct{ Max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = DepthLimit{}

// ExtensionName names the extension in gqlgen's list.
func (DepthLimit) ExtensionName() string { return "DepthLimit" }

// Validate accepts any schema.
func (DepthLimit) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext measures the operation before it runs.
func (d DepthLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	w := depthWalker{}
	depth := w.depth(opCtx.Operation.SelectionSet)
	if w.fields > maxExpandedFields {
		return limitError(CodeComplexityLimitExceeded,
			fmt.Sprintf("operation expands to more than %d fields through its fragments", maxExpandedFields),
			map[string]any{"limit": maxExpandedFields})
	}
	if depth > d.Max {
		return limitError(CodeDepthLimitExceeded,
			fmt.Sprintf("operation has depth %d, which exceeds the limit of %d", depth, d.Max),
			map[string]any{"depth": depth, "limit": d.Max})
	}
	return nil
}

type depthWalker struct{ fields int }

func (w *depthWalker) depth(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		if w.fields > maxExpandedFields {
			return deepest
		}
		d := 0
		switch s := sel.(type) {
		case *ast.Field:
			w.fields++
			if s.Name == "__schema" || s.Name == "__type" {
				// Introspection nests ofType many levels deep by design;
				// gqlparser's MaxIntrospectionDepth rule bounds it.
				continue
			}
			d = 1 + w.depth(s.SelectionSet)
		case *ast.InlineFragment:
			d = w.depth(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = w.depth(s.Definition.SelectionSet)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// ---- cost ----------------------------------------------------------------

// CostLimit refuses an operation whose cost exceeds Max. The cost is gqlgen's
// complexity (one per field, plus the fields below it) except that a
// connection costs its selection once per item of the requested page (first
// or last, 20 by default) and _entities once per representation. It needs no
// complexity functions in the generated code: it reads the page size from the
// arguments of any field that returns a *Connection type.
type CostLimit struct {
	Max int
	es  graphql.ExecutableSchema
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &CostLimit{}

// ExtensionName is gqlgen's name for its own complexity limit, so that
// extension.GetComplexityStats reports this one.
func (*CostLimit) ExtensionName() string { return "ComplexityLimit" }

// Validate keeps the schema whose Complexity this limit refines.
func (c *CostLimit) Validate(es graphql.ExecutableSchema) error {
	c.es = pageSizedCost{es}
	return nil
}

// MutateOperationContext computes the cost before the operation runs.
func (c *CostLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	cost := complexity.Calculate(ctx, c.es, opCtx.Operation, opCtx.Variables)
	opCtx.Stats.SetExtension("ComplexityLimit", &extension.ComplexityStats{Complexity: cost, ComplexityLimit: c.Max})
	if cost > c.Max {
		return limitError(CodeComplexityLimitExceeded,
			fmt.Sprintf("operation has complexity %d, which exceeds the limit of %d", cost, c.Max),
			map[string]any{"complexity": cost, "limit": c.Max})
	}
	return nil
}

// pageSizedCost is the executable schema with connection-aware complexity.
type pageSizedCost struct{ graphql.ExecutableSchema }

// Complexity scales a connection by its page size and _entities by its
// representations; other fields keep the generated rule.
func (p pageSizedCost) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	if typeName == "Query" && field == "_entities" {
		n, _ := args["representations"].([]any)
		return saturating(1, max(len(n), 1), child), true
	}
	if def := p.Schema().Types[typeName]; def != nil {
		if fd := def.Fields.ForName(field); fd != nil && isConnection(fd.Type.Name()) {
			return saturating(1, pageSize(args), child), true
		}
	}
	return p.ExecutableSchema.Complexity(ctx, typeName, field, child, args)
}

// saturating is base + n*child without overflowing.
func saturating(base, n, child int) int {
	if child > 0 && n > (math.MaxInt32-base)/child {
		return math.MaxInt32
	}
	return base + n*child
}

func isConnection(typeName string) bool {
	return len(typeName) > len("Connection") && typeName[len(typeName)-len("Connection"):] == "Connection"
}

// pageSize is the number of items a connection's arguments ask for: first,
// else last, else the default page size. Out-of-range values are refused by
// the resolver; here they are clamped so the estimate stays meaningful.
func pageSize(args map[string]any) int {
	for _, name := range []string{"first", "last"} {
		if n, ok := intArg(args[name]); ok {
			return min(max(n, 0), maxPageSize)
		}
	}
	return defaultPageSize
}

// intArg reads an Int argument however it arrived: a literal (int64) or a
// variable (json.Number, or a Go number in tests).
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

// ---- upstream-call budget ------------------------------------------------

// UpstreamBudget refuses, before anything runs, an operation that may make
// more than Max calls to DigitalOcean. The estimate (EstimateUpstreamCalls)
// follows the resolvers' own rules and is an upper bound: it ignores the
// de-duplication of identical calls across aliases and fragments.
type UpstreamBudget struct{ Max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = UpstreamBudget{}

const budgetStatsKey = "UpstreamBudget"

// BudgetStats is the estimate of an operation, kept in its stats for the logs.
type BudgetStats struct {
	Estimated, Budget int
}

// ExtensionName names the extension in gqlgen's list.
func (UpstreamBudget) ExtensionName() string { return budgetStatsKey }

// Validate accepts any schema.
func (UpstreamBudget) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext estimates the operation's upstream calls.
func (b UpstreamBudget) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	n := EstimateUpstreamCalls(opCtx.Operation, opCtx.Variables)
	opCtx.Stats.SetExtension(budgetStatsKey, &BudgetStats{Estimated: n, Budget: b.Max})
	if n > b.Max {
		return limitError(CodeUpstreamBudgetExceeded,
			fmt.Sprintf("operation may make %d calls to DigitalOcean, which exceeds the budget of %d per request; ask for smaller pages or fewer nested fields", n, b.Max),
			map[string]any{"estimated": n, "budget": b.Max})
	}
	return nil
}

// GetBudgetStats returns the upstream estimate of the operation in ctx, or nil.
func GetBudgetStats(ctx context.Context) *BudgetStats {
	if !graphql.HasOperationContext(ctx) {
		return nil
	}
	s, _ := graphql.GetOperationContext(ctx).Stats.GetExtension(budgetStatsKey).(*BudgetStats)
	return s
}

// invoiceOrigin is where an Invoice object came from, which decides what its
// fields cost (see the Invoice resolvers and lookupInvoice).
type invoiceOrigin int

const (
	// fromList: an invoices page or the preview, which carry uuid, invoiceId,
	// period, amount and updatedAt.
	fromList invoiceOrigin = iota
	// fromEntry: a billing-history entry's invoice, which knows its uuid (and
	// often its number): period, amount and summary are the summary.
	fromEntry
	// lookup: invoice(uuid) or an Invoice representation, which proves the
	// invoice exists with the calls its selection needs, or with the summary
	// when it needs none.
	lookup
	// lookupPreview: the same for the uuid "preview", which needs no proof and
	// whose updatedAt only the invoice list carries.
	lookupPreview
)

// EstimateUpstreamCalls is an upper bound of the DigitalOcean calls op makes,
// by the rules the resolvers follow:
//   - a connection (billingHistory, invoices, volumes, Invoice.items) whose
//     edges, nodes or pageInfo are selected costs 1 call from the start of the
//     list and 2 after a cursor or backward (a window that straddles two
//     pages), plus 1 for `last` without `before` (the total first); with only
//     totalCount (or the preview) selected it costs 1;
//   - an Invoice costs 1 (its summary) when summary is selected, or when it
//     did not come from a list and invoiceId, period or amount is; an invoice
//     looked up by uuid that selects neither these nor items costs 1 (the
//     summary proves it exists), except the preview;
//   - the preview looked up by uuid costs 1 more for updatedAt (the list's first page);
//   - each of an Invoice's csv and pdf costs 1 (one download) when filename,
//     byteSize or base64 is selected; url and contentType cost nothing;
//   - invoicePreview, volume(id) and balance cost 1; _entities 1 per Volume
//     representation and, per Invoice one, what a lookup of it costs;
//   - everything under a connection's nodes or edges is multiplied by the page
//     size (first, last, or 20).
//
// Identical calls made once per request by the loaders (the same page or
// summary asked for twice) are counted each time, hence an upper bound; the
// canonical dashboard asks for nothing twice, and its estimate is exact.
func EstimateUpstreamCalls(op *ast.OperationDefinition, vars map[string]any) int {
	if op == nil || op.Operation != ast.Query {
		return 0
	}
	e := estimator{vars: vars}
	return e.query(op.SelectionSet)
}

type estimator struct {
	vars   map[string]any
	fields int
}

// add is a+b without overflowing (a query may ask for absurd sizes).
func add(a, b int) int { return min(a+b, math.MaxInt32) }

// mul is a*b without overflowing.
func mul(a, b int) int {
	if a != 0 && b > math.MaxInt32/a {
		return math.MaxInt32
	}
	return a * b
}

// eachField calls fn for every field of set, through fragments, with a bound
// on the total so that a document of nested fragments cannot make it spin.
func (e *estimator) eachField(set ast.SelectionSet, fn func(f *ast.Field)) {
	for _, sel := range set {
		if e.fields > maxExpandedFields {
			return
		}
		switch s := sel.(type) {
		case *ast.Field:
			e.fields++
			fn(s)
		case *ast.InlineFragment:
			e.eachField(s.SelectionSet, fn)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				e.eachField(s.Definition.SelectionSet, fn)
			}
		}
	}
}

func (e *estimator) query(set ast.SelectionSet) int {
	calls := 0
	e.eachField(set, func(f *ast.Field) {
		switch f.Name {
		case "invoices":
			calls = add(calls, e.connection(f, 1, "Invoice"))
		case "billingHistory":
			calls = add(calls, e.connection(f, 1, "BillingHistoryEntry"))
		case "volumes":
			calls = add(calls, e.connection(f, 1, "Volume"))
		case "invoicePreview":
			calls = add(calls, add(1, e.invoice(f.SelectionSet, 1, fromList)))
		case "invoice":
			origin := lookup
			if uuid, _ := f.ArgumentMap(e.vars)["uuid"].(string); uuid == previewUUID {
				origin = lookupPreview
			}
			calls = add(calls, e.invoice(f.SelectionSet, 1, origin))
		case "volume", "balance":
			calls = add(calls, 1)
		case "_entities":
			calls = add(calls, e.entities(f))
		}
	})
	if e.fields > maxExpandedFields {
		return math.MaxInt32
	}
	return calls
}

// connection estimates a connection field resolved for n parents.
func (e *estimator) connection(f *ast.Field, n int, nodeType string) int {
	args := f.ArgumentMap(e.vars)
	size := pageSize(args)
	_, backward := intArg(args["last"])
	hasAfter, hasBefore := args["after"] != nil, args["before"] != nil
	needsTotal := backward && !hasBefore

	items, count := false, false
	var nodes []ast.SelectionSet
	var previews []ast.SelectionSet
	e.eachField(f.SelectionSet, func(c *ast.Field) {
		switch c.Name {
		case "nodes":
			items = true
			nodes = append(nodes, c.SelectionSet)
		case "edges":
			items = true
			e.eachField(c.SelectionSet, func(ec *ast.Field) {
				if ec.Name == "node" {
					nodes = append(nodes, ec.SelectionSet)
				}
			})
		case "pageInfo":
			items = true
		case "totalCount":
			count = true
		case "preview":
			count = true
			previews = append(previews, c.SelectionSet)
		}
	})

	per := 0
	switch {
	case items && (size > 0 || needsTotal):
		per = 2
		if !backward && !hasAfter {
			per = 1 // the window starts a page: per_page is the page size
		}
		if needsTotal {
			per++
		}
	case items || count:
		per = 1
	}
	calls := mul(n, per)
	for _, set := range nodes {
		calls = add(calls, e.object(nodeType, set, mul(n, size)))
	}
	for _, set := range previews {
		calls = add(calls, e.invoice(set, n, fromList))
	}
	return calls
}

// object estimates a list node's selection for n objects.
func (e *estimator) object(typeName string, set ast.SelectionSet, n int) int {
	switch typeName {
	case "Invoice":
		return e.invoice(set, n, fromList)
	case "BillingHistoryEntry":
		calls := 0
		e.eachField(set, func(f *ast.Field) {
			if f.Name == "invoice" {
				calls = add(calls, e.invoice(f.SelectionSet, n, fromEntry))
			}
		})
		return calls
	}
	return 0 // Volume, InvoiceItem: every field comes with the page
}

// invoice estimates an Invoice selection for n invoices.
func (e *estimator) invoice(set ast.SelectionSet, n int, origin invoiceOrigin) int {
	summary, items, updatedAt := false, false, false
	calls := 0
	downloads := map[string]bool{}
	e.eachField(set, func(f *ast.Field) {
		switch f.Name {
		case "summary":
			summary = true
		case "invoiceId", "period", "amount":
			summary = summary || origin != fromList
		case "updatedAt":
			updatedAt = true
		case "items":
			items = true
			calls = add(calls, e.connection(f, n, "InvoiceItem"))
		case "files":
			e.eachField(f.SelectionSet, func(format *ast.Field) {
				e.eachField(format.SelectionSet, func(ff *ast.Field) {
					switch ff.Name {
					case "filename", "byteSize", "base64":
						downloads[format.Name] = true
					}
				})
			})
		}
	})
	if summary || (origin == lookup && !items) {
		calls = add(calls, n) // the summary, or the summary as the proof of existence
	}
	if updatedAt && origin == lookupPreview {
		calls = add(calls, n)
	}
	return add(calls, mul(n, len(downloads)))
}

// entities estimates _entities: one call per Volume representation, and per
// Invoice one what looking it up costs.
func (e *estimator) entities(f *ast.Field) int {
	reps, _ := f.ArgumentMap(e.vars)["representations"].([]any)
	volumes, invoices, previews := 0, 0, 0
	for _, r := range reps {
		m, _ := r.(map[string]any)
		switch m["__typename"] {
		case "Volume":
			volumes++
		case "Invoice":
			if m["uuid"] == previewUUID {
				previews++
			} else {
				invoices++
			}
		}
	}
	calls := volumes
	var visit func(set ast.SelectionSet)
	visit = func(set ast.SelectionSet) {
		for _, sel := range set {
			var typeCond string
			var sub ast.SelectionSet
			switch s := sel.(type) {
			case *ast.InlineFragment:
				typeCond, sub = s.TypeCondition, s.SelectionSet
			case *ast.FragmentSpread:
				if s.Definition != nil {
					typeCond, sub = s.Definition.TypeCondition, s.Definition.SelectionSet
				}
			}
			switch typeCond {
			case "Invoice":
				calls = add(calls, add(e.invoice(sub, invoices, lookup), e.invoice(sub, previews, lookupPreview)))
			case "_Entity":
				visit(sub)
			}
		}
	}
	visit(f.SelectionSet)
	return calls
}

// previewUUID is the uuid by which DigitalOcean addresses the month-to-date invoice.
const previewUUID = upstream.PreviewUUID

// limitError is a guard's refusal with its code and figures in extensions.
func limitError(code, message string, figures map[string]any) *gqlerror.Error {
	err := gqlerror.Errorf("%s", message)
	errcode.Set(err, code)
	for k, v := range figures {
		err.Extensions[k] = v
	}
	return err
}
