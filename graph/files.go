package graph

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oceangraph/oceangraph/upstream"
)

// The fields filename, byteSize and base64 of InvoiceFile share one download
// per (invoice, format) per GraphQL request, through the memo below (the
// request's loaders.files); the REST routes that stream a file whole are in
// download.go. A file is read within one deadline for the whole file
// (UPSTREAM_TIMEOUT) and up to the per-file cap (MAX_BASE64_FILE_BYTES): a
// file past the cap still answers filename, and byteSize when DigitalOcean
// states its length; base64 (and byteSize without a length) is null with a
// BAD_USER_INPUT error pointing at url. What base64 may write over a request
// is charged before anything runs (base64budget.go), which bounds the files
// a request holds too.

// defaultFileTimeout bounds a whole file download behind the GraphQL file
// fields when Config.FileTimeout is 0.
const defaultFileTimeout = 30 * time.Second

// maxSkimBytes: a file up to this size is read to its end even when only its
// name and size are wanted, so that the connection to DigitalOcean is reused
// (closing an unread body drops it, and a new TLS handshake costs more than this).
const maxSkimBytes = 256 << 10

// fileDownloads is one GraphQL request's memo of invoice file downloads (a
// part of its loaders): a per-request loader keyed by (invoice, format), and
// the bounds of one download. It must never be shared between requests: it
// holds what a token downloaded.
type fileDownloads struct {
	maxBytes int64
	timeout  time.Duration
	loader   *dataloader.Loader[fileKey, downloadedFile]
}

type fileKey struct {
	invoice string
	format  upstream.FileFormat
}

// downloadedFile is what a download tells InvoiceFile's fields.
type downloadedFile struct {
	name string
	size int64
	// tooLarge: the file went past the cap with no stated length, so byteSize cannot say.
	tooLarge error
	// kept says whether base64 holds the file: only when the operation selects
	// base64 somewhere and the file fits the cap.
	kept   bool
	base64 string
	// dropped says why a file wanted for base64 was not kept.
	dropped error
}

func newFileDownloads(client *upstream.Client, naive bool) *fileDownloads {
	d := &fileDownloads{maxBytes: DefaultMaxBase64FileBytes, timeout: defaultFileTimeout}
	d.loader = newLoader(naive, func(ctx context.Context, k fileKey) (downloadedFile, error) {
		return d.download(ctx, client, k.invoice, k.format, operationSelectsBase64(ctx))
	})
	return d
}

// bound sets the cap and the deadline of each download; zero keeps the default.
func (d *fileDownloads) bound(maxBytes int64, timeout time.Duration) {
	if maxBytes > 0 {
		d.maxBytes = maxBytes
	}
	if timeout > 0 {
		d.timeout = timeout
	}
}

// get downloads one invoice file, or waits for the download another field of
// the request already started, or returns the one it finished.
func (d *fileDownloads) get(ctx context.Context, invoice string, format upstream.FileFormat) (downloadedFile, error) {
	return d.loader.Load(ctx, fileKey{invoice, format})()
}

// download reads one file (the loader runs it under the request's
// concurrency bound), within the deadline and up to the cap. When nothing
// will need the content and DigitalOcean states a length past maxSkimBytes,
// it stops at the headers; otherwise it reads the body, counting it and
// keeping it when base64 wants it.
func (d *fileDownloads) download(ctx context.Context, client *upstream.Client, invoice string, format upstream.FileFormat, keep bool) (downloadedFile, error) {
	cost := scopeFrom(ctx).cost
	cf, cached, err := cost.cachedFile(ctx, invoice, format)
	switch {
	case err != nil:
		return downloadedFile{}, err
	case cached:
		return d.fromCache(cf, invoice, format, keep), nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	f, err := client.GetInvoiceFile(ctx, invoice, format)
	if err != nil {
		return downloadedFile{}, fmt.Errorf("download the %s of invoice %s: %w", format, invoice, err)
	}
	defer f.Body.Close()
	out := downloadedFile{name: f.Filename, size: f.ContentLength}
	if out.name == "" {
		out.name = fileNameFor(invoice, format)
	}
	// A stated length past the cap is refused before a byte is held.
	if f.ContentLength > d.maxBytes && keep {
		keep, out.dropped = false, d.tooLarge(invoice, format)
	}
	capture := cost.captureFile(ctx, invoice, format, f)
	if !keep && capture == nil && f.ContentLength > maxSkimBytes {
		return out, nil
	}
	var sink io.Writer = io.Discard
	var held *heldFile
	if keep {
		held = newHeldFile(f.ContentLength, d.maxBytes)
		sink = held
	}
	if capture != nil {
		sink = io.MultiWriter(sink, capture)
	}
	// One byte past the cap says the file is larger; reading stops there.
	n, err := io.Copy(sink, io.LimitReader(f.Body, d.maxBytes+1))
	if err != nil {
		return downloadedFile{}, fmt.Errorf("download the %s of invoice %s: %w", format, invoice,
			&upstream.Error{Endpoint: format.Endpoint(), Kind: upstream.KindTransport, Err: fmt.Errorf("file cut off after %d bytes: %w", n, err)})
	}
	out.size = n
	if n > d.maxBytes {
		// The stated length still answers byteSize; without one, nothing does.
		if out.size = f.ContentLength; out.size < 0 {
			out.tooLarge = &inputError{d.tooLarge(invoice, format).Error()}
		}
		if keep {
			keep, out.dropped = false, d.tooLarge(invoice, format)
		}
	} else {
		capture.keep() // read to its end
	}
	if keep {
		out.base64, out.kept = held.finish(), true
	}
	return out, nil
}

// fromCache answers as download would have for the same file from DigitalOcean.
func (d *fileDownloads) fromCache(f cachedFile, invoice string, format upstream.FileFormat, keep bool) downloadedFile {
	out := downloadedFile{name: cmp.Or(f.Name, fileNameFor(invoice, format)), size: int64(len(f.data))}
	if out.size > d.maxBytes {
		if out.size = f.Length; out.size < 0 {
			out.tooLarge = &inputError{d.tooLarge(invoice, format).Error()}
		}
		if keep {
			out.dropped = d.tooLarge(invoice, format)
		}
		return out
	}
	if keep {
		out.base64, out.kept = base64.StdEncoding.EncodeToString(f.data), true
	}
	return out
}

func (d *fileDownloads) tooLarge(invoice string, format upstream.FileFormat) error {
	return fmt.Errorf("the %s of invoice %s is larger than %d bytes, the most this server reads for filename, byteSize and base64: download it from url instead", format, invoice, d.maxBytes)
}

// heldFile base64-encodes a download as it arrives, so that memory holds the
// encoded form only; past the cap it stops holding.
type heldFile struct {
	encoded  strings.Builder
	enc      io.WriteCloser
	held     int64
	maxBytes int64
}

// newHeldFile starts an encoding, sized at once when the length is known.
func newHeldFile(length, maxBytes int64) *heldFile {
	h := &heldFile{maxBytes: maxBytes}
	if length >= 0 && length <= maxBytes {
		h.encoded.Grow(base64.StdEncoding.EncodedLen(int(length)))
	}
	h.enc = base64.NewEncoder(base64.StdEncoding, &h.encoded)
	return h
}

func (h *heldFile) Write(p []byte) (int, error) {
	if h.held += int64(len(p)); h.held <= h.maxBytes {
		h.enc.Write(p) // a strings.Builder never fails
	}
	return len(p), nil
}

// finish returns the whole file in base64.
func (h *heldFile) finish() string {
	h.enc.Close()
	return h.encoded.String()
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
