package graph

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"strings"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// InvoiceFile.base64 is the one field whose answer can be megabytes, and each
// time it is written (every alias, every item of a page) the response holds
// another copy. So before anything runs, every write is charged at the most
// it can weigh (a file at the per-file cap, base64-encoded) against the
// request's bound and against a process-wide bound shared by all requests in
// flight; an operation that does not fit is refused with
// BASE64_BUDGET_EXCEEDED and costs DigitalOcean nothing. The process-wide
// reservation is given back when the request's answer has been written.

// Defaults of the base64 bounds.
const (
	// DefaultMaxBase64FileBytes: DigitalOcean's invoice PDFs and CSVs are tens
	// of kilobytes; a larger file is served by url.
	DefaultMaxBase64FileBytes = 2 << 20
	// DefaultMaxBase64RequestBytes: 23 writes of a file at the cap, enough for
	// the CSV and PDF of a page of 11 invoices.
	DefaultMaxBase64RequestBytes = 64 << 20
	// DefaultMaxBase64ProcessBytes: four such requests at once.
	DefaultMaxBase64ProcessBytes = 256 << 20
)

// base64Limits are the bounds of one server: per file, per request, and over
// every request in flight (reserved counts what those hold now).
type base64Limits struct {
	fileBytes, requestBytes, processBytes int64
	reserved                              atomic.Int64
}

func newBase64Limits(file, request, process int64) *base64Limits {
	def := func(v, d int64) int64 {
		if v <= 0 {
			return d
		}
		return v
	}
	return &base64Limits{
		fileBytes:    def(file, DefaultMaxBase64FileBytes),
		requestBytes: def(request, DefaultMaxBase64RequestBytes),
		processBytes: def(process, DefaultMaxBase64ProcessBytes),
	}
}

// perWrite is the most one base64 write weighs: a file at the cap, encoded.
func (l *base64Limits) perWrite() int64 {
	return int64(base64.StdEncoding.EncodedLen(int(l.fileBytes)))
}

// reserve takes n bytes of the process-wide bound, if they are free.
func (l *base64Limits) reserve(n int64) bool {
	if l.reserved.Add(n) > l.processBytes {
		l.reserved.Add(-n)
		return false
	}
	return true
}

func (l *base64Limits) release(n int64) { l.reserved.Add(-n) }

// base64Guard is the extension that charges an operation's base64 writes
// before it runs.
type base64Guard struct{ limits *base64Limits }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &base64Guard{}

func (*base64Guard) ExtensionName() string { return "Base64Budget" }

func (*base64Guard) Validate(graphql.ExecutableSchema) error { return nil }

func (g *base64Guard) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	writes := base64Writes(opCtx.Operation, opCtx.Variables)
	if writes == 0 {
		return nil
	}
	need := writes * g.limits.perWrite()
	if writes > g.limits.requestBytes/g.limits.perWrite() {
		return base64Refusal(fmt.Sprintf("the operation writes base64 %d times, each up to %d bytes (a file of up to %d bytes, encoded), more than the %d bytes one request may write: select base64 fewer times, or download the files from url",
			writes, g.limits.perWrite(), g.limits.fileBytes, g.limits.requestBytes), writes, g.limits.requestBytes)
	}
	if !g.limits.reserve(need) {
		return base64Refusal("the server is writing as much base64 as it may at once: try again shortly, or download the files from url", writes, g.limits.processBytes)
	}
	scopeFrom(ctx).base64Reserved.Add(need)
	return nil
}

func base64Refusal(message string, writes, bound int64) *gqlerror.Error {
	err := gqlerror.Errorf("%s", message)
	errcode.Set(err, codeBase64BudgetExceeded)
	err.Extensions["writes"] = writes
	err.Extensions["bytes"] = bound
	return err
}

// base64Writes counts the times op writes InvoiceFile.base64: every alias,
// times the page size of each connection and the representations of
// _entities above it (an upper bound: @skip and @include are not read). A
// document too large to walk counts as writing without bound.
func base64Writes(op *ast.OperationDefinition, vars map[string]any) int64 {
	w := &fieldWalk{}
	var count func(set ast.SelectionSet, times int) int
	count = func(set ast.SelectionSet, times int) int {
		writes := 0
		w.each(set, func(f *ast.Field, _ string) {
			switch {
			case f.Name == "base64" && f.ObjectDefinition != nil && f.ObjectDefinition.Name == "InvoiceFile":
				writes = cappedAdd(writes, times)
			case f.Name == "_entities":
				reps, _ := f.ArgumentMap(vars)["representations"].([]any)
				writes = cappedAdd(writes, count(f.SelectionSet, cappedMul(times, len(reps))))
			case f.Definition != nil && strings.HasSuffix(f.Definition.Type.Name(), "Connection"):
				a, _ := pageArgsFrom(f.ArgumentMap(vars))
				writes = cappedAdd(writes, count(f.SelectionSet, cappedMul(times, requestedPageSize(a.First, a.Last))))
			default:
				writes = cappedAdd(writes, count(f.SelectionSet, times))
			}
		})
		return writes
	}
	n := count(op.SelectionSet, 1)
	if w.exceeded() {
		return math.MaxInt32
	}
	return int64(n)
}
