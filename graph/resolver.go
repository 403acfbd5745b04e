package graph

// Where things are, for a newcomer: a field's resolver sits in the
// <domain>.resolvers.go beside schema/<domain>.graphqls (entity.resolvers.go
// for federation's _entities); the per-request loader it goes through is in
// loaders.go; the upstream call behind the loader is upstream/<resource>.go.
// Beside them: connection.go (arguments, cursors, windows onto upstream
// pages), invoice_lookup.go (how invoice(uuid) proves an invoice exists),
// entities.go (entity batches, the federation SDL), errors.go (the one error
// presenter, every code),
// handler.go (NewHandler, its guards, the per-request middleware,
// extensions.rateLimit), request.go (the per-request scope, the one context
// value), the guards apq.go, depth.go, complexity.go and budget.go (the
// upstream estimate), files.go (InvoiceFile's downloads) and download.go (the
// REST file routes).

import (
	"log/slog"

	"github.com/oceangraph/oceangraph/upstream"
)

// Resolver is the root resolver: what every request shares. Nothing here is
// per request or per token; that lives in the requestScope in the context.
type Resolver struct {
	// Client calls DigitalOcean.
	Client *upstream.Client
	// Links signs the InvoiceFile.url links (graph/filelinks.go).
	Links *FileLinks
	// Logger receives internal errors and panics (never a token).
	Logger *slog.Logger
	// Idempotency keeps mutations' first answers (graph/mutations.go); nil: keys are ignored.
	Idempotency IdempotencyStore
	// progress runs the pollers of volumeActionProgress (graph/progress.go).
	progress *progressHub
}
