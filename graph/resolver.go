package graph

// Where things are, for a newcomer: a field's resolver sits in the
// <domain>.resolvers.go beside schema/<domain>.graphqls; the per-request
// loader it goes through is in loaders.go; the upstream call behind the loader
// is upstream/<resource>.go. Connection and cursor math is connection.go; the
// one error presenter is errors.go; the HTTP handler and the per-request scope
// (token, base URL, loaders, concurrency bound, rate-limit record) are
// handler.go and request.go.
//
// Context accessors for code in this package that needs the caller's identity
// (the files-helper's InvoiceFile resolvers and download routes):
//   - TokenFrom(ctx) is the DigitalOcean token of this request ("" when none);
//   - BaseURLFrom(ctx) is this server's absolute base URL, e.g.
//     "https://api.example.com" (no trailing slash), for building links;
//   - fetch(ctx, func(ctx) error) runs one upstream call under the request's
//     concurrency bound with the token attached (see request.go).

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
