package graph

// Where things are, for a newcomer: a field's resolver sits in the
// <domain>.resolvers.go beside schema/<domain>.graphqls (entity.resolvers.go
// for federation's _entities); the per-request loader it goes through is in
// loaders.go; the upstream call behind the loader is upstream/<resource>.go.
// Beside them: connection.go (arguments, cursors, windows onto upstream
// pages), invoice_lookup.go (how invoice(uuid) proves an invoice exists),
// entities.go (entity batches), errors.go (the one error presenter),
// handler.go (NewHandler, the per-request middleware, extensions.rateLimit)
// and request.go (the per-request scope).
//
// For code of this package that needs the caller's identity (the InvoiceFile
// resolvers and the download routes):
//   - TokenFrom(ctx) is the request's DigitalOcean token ("" when none);
//   - BaseURLFrom(ctx) is this server's absolute base URL as the caller reached
//     it, e.g. "https://api.example.com" (no trailing slash), for links;
//   - newLoader(call) and load(ctx, loader, key) give a per-request loader whose
//     calls run under the request's concurrency bound with its token (fetch).

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
}
