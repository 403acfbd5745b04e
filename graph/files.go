package graph

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oceangraph/oceangraph/upstream"
)

// The fields filename, byteSize and base64 of InvoiceFile share one download
// per (invoice, format) per GraphQL request, through the memo below (the
// request's loaders.files); the REST routes that stream a file whole are in download.go.

// Bounds on what base64 holds in memory: per file, and per GraphQL request
// over all its files. A file past either still answers filename and byteSize;
// its base64 is null with a BAD_USER_INPUT error pointing at url.
const (
	maxBase64FileBytes    = 25 << 20
	maxBase64RequestBytes = 50 << 20
)

// maxSkimBytes: a file up to this size is read to its end even when only its
// name and size are wanted, so that the connection to DigitalOcean is reused
// (closing an unread body drops it, and a new TLS handshake costs more than this).
const maxSkimBytes = 256 << 10

// fileDownloads is one GraphQL request's memo of invoice file downloads (a
// part of its loaders): a per-request loader keyed by (invoice, format), and
// the request's budget of bytes held for base64. It must never be shared
// between requests: it holds what a token downloaded.
type fileDownloads struct {
	budget atomic.Int64
	loader *dataloader.Loader[fileKey, downloadedFile]
}

type fileKey struct {
	invoice string
	format  upstream.FileFormat
}

// downloadedFile is what a download tells InvoiceFile's fields.
type downloadedFile struct {
	name string
	size int64
	// kept says whether base64 holds the file: only when the operation selects
	// base64 somewhere and the file fits the bounds.
	kept   bool
	base64 string
	// dropped says why a file wanted for base64 was not kept.
	dropped error
}

func newFileDownloads(client *upstream.Client, naive bool) *fileDownloads {
	d := &fileDownloads{}
	d.budget.Store(maxBase64RequestBytes)
	d.loader = newLoader(naive, func(ctx context.Context, k fileKey) (downloadedFile, error) {
		return d.download(ctx, client, k.invoice, k.format, operationSelectsBase64(ctx))
	})
	return d
}

// get downloads one invoice file, or waits for the download another field of
// the request already started, or returns the one it finished.
func (d *fileDownloads) get(ctx context.Context, invoice string, format upstream.FileFormat) (downloadedFile, error) {
	return d.loader.Load(ctx, fileKey{invoice, format})()
}

// download reads one file (the loader runs it under the request's
// concurrency bound). When nothing will need the content and DigitalOcean
// states a length past maxSkimBytes, it stops at the headers; otherwise it
// reads the body, counting it and keeping what base64 may hold.
func (d *fileDownloads) download(ctx context.Context, client *upstream.Client, invoice string, format upstream.FileFormat, keep bool) (downloadedFile, error) {
	f, err := client.GetInvoiceFile(ctx, invoice, format)
	if err != nil {
		return downloadedFile{}, fmt.Errorf("download the %s of invoice %s: %w", format, invoice, err)
	}
	defer f.Body.Close()
	out := downloadedFile{name: f.Filename, size: f.ContentLength}
	if out.name == "" {
		out.name = fileNameFor(invoice, format)
	}
	// A stated length past a bound is refused before a byte is held.
	switch {
	case !keep:
	case f.ContentLength > maxBase64FileBytes:
		keep, out.dropped = false, errBase64FileTooLarge
	case f.ContentLength > d.budget.Load():
		keep, out.dropped = false, errBase64RequestTooLarge
	}
	if !keep && f.ContentLength > maxSkimBytes {
		return out, nil
	}
	var sink io.Writer = io.Discard
	var held *heldFile
	if keep {
		held = newHeldFile(&d.budget, f.ContentLength)
		sink = held
	}
	n, err := io.Copy(sink, f.Body)
	if err != nil {
		if held != nil {
			held.drop(nil)
		}
		return downloadedFile{}, fmt.Errorf("download the %s of invoice %s: %w", format, invoice,
			&upstream.Error{Endpoint: format.Endpoint(), Kind: upstream.KindTransport, Err: fmt.Errorf("file cut off after %d bytes: %w", n, err)})
	}
	out.size = n
	if keep {
		out.base64, out.dropped = held.finish()
		out.kept = out.dropped == nil
	}
	return out, nil
}

// Why base64 refused to hold a file.
var (
	errBase64FileTooLarge    = fmt.Errorf("base64 serves files of up to %d MiB", maxBase64FileBytes>>20)
	errBase64RequestTooLarge = fmt.Errorf("base64 serves up to %d MiB of files per request", maxBase64RequestBytes>>20)
)

// heldFile base64-encodes a download as it arrives, so that memory holds the
// encoded form only, while the file fits the per-file bound and what is left
// of the request's budget; past either it lets go of it and only lets the
// bytes be counted.
type heldFile struct {
	encoded *strings.Builder
	enc     io.WriteCloser
	held    int64
	budget  *atomic.Int64
	refused error
}

// newHeldFile starts an encoding, sized at once when the length is known.
func newHeldFile(budget *atomic.Int64, length int64) *heldFile {
	h := &heldFile{encoded: &strings.Builder{}, budget: budget}
	if length >= 0 && length <= maxBase64FileBytes {
		h.encoded.Grow(base64.StdEncoding.EncodedLen(int(length)))
	}
	h.enc = base64.NewEncoder(base64.StdEncoding, h.encoded)
	return h
}

func (h *heldFile) Write(p []byte) (int, error) {
	if h.refused != nil {
		return len(p), nil
	}
	switch {
	case h.held+int64(len(p)) > maxBase64FileBytes:
		h.drop(errBase64FileTooLarge)
	case h.budget.Add(-int64(len(p))) < 0:
		h.budget.Add(int64(len(p)))
		h.drop(errBase64RequestTooLarge)
	default:
		h.held += int64(len(p))
		h.enc.Write(p) // a strings.Builder never fails
	}
	return len(p), nil
}

// drop gives the held bytes back to the request's budget.
func (h *heldFile) drop(why error) {
	h.budget.Add(h.held)
	h.encoded, h.enc, h.held, h.refused = nil, nil, 0, why
}

// finish returns the whole file in base64, or why it was not kept.
func (h *heldFile) finish() (string, error) {
	if h.refused != nil {
		return "", h.refused
	}
	h.enc.Close()
	return h.encoded.String(), nil
}

// downloadedFields are the InvoiceFile fields a download answers.
var downloadedFields = map[string]bool{"filename": true, "byteSize": true, "base64": true}

// operationSelectsBase64 reports whether the running operation asks for
// InvoiceFile.base64 anywhere, fragments included. Only then must a download
// keep the file's bytes. Outside an operation it answers true, the safe side.
func operationSelectsBase64(ctx context.Context) bool {
	if !graphql.HasOperationContext(ctx) {
		return true
	}
	op := graphql.GetOperationContext(ctx).Operation
	if op == nil {
		return true
	}
	return anyField(op.SelectionSet, func(f *ast.Field) bool {
		return f.Name == "base64" && f.ObjectDefinition != nil && f.ObjectDefinition.Name == "InvoiceFile"
	})
}
