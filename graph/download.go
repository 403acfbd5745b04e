package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oceangraph/oceangraph/upstream"
)

// downloadHandler streams invoice files from DigitalOcean to the caller.
type downloadHandler struct {
	client       *upstream.Client
	links        *FileLinks
	defaultToken string
	logger       *slog.Logger
	mux          *http.ServeMux
}

// NewDownloadHandler serves the file downloads:
//
//	GET /invoices/{uuid}/{csv|pdf}   authorized like /query (Authorization: Bearer, else defaultToken)
//	GET /files/{opaque}[/{name}]     a link from InvoiceFile.url; needs no header at all
//
// Both stream the file as DigitalOcean sends it, never holding it whole in
// memory. HEAD is answered too (it costs one upstream call, as DigitalOcean
// has no HEAD). Mount it on both path prefixes.
func NewDownloadHandler(client *upstream.Client, links *FileLinks, defaultToken string, logger *slog.Logger) http.Handler {
	h := &downloadHandler{client: client, links: links, defaultToken: defaultToken, logger: logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /invoices/{uuid}/{format}", h.serveInvoice)
	h.mux.HandleFunc("GET /files/{opaque}", h.serveLink)
	h.mux.HandleFunc("GET /files/{opaque}/{name}", h.serveLink)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeDownloadError(w, http.StatusMethodNotAllowed, downloadError{Code: CodeBadUserInput, Message: "downloads answer GET and HEAD only"})
			return
		}
		writeDownloadError(w, http.StatusNotFound, downloadError{Code: CodeNotFound, Message: "no such download: use /invoices/{uuid}/csv, /invoices/{uuid}/pdf or an InvoiceFile.url link"})
	})
	return h
}

func (h *downloadHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *downloadHandler) serveInvoice(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	format, ok := fileFormat(r.PathValue("format"))
	if !ok {
		writeDownloadError(w, http.StatusNotFound, downloadError{Code: CodeNotFound, Message: "an invoice downloads as csv or pdf"})
		return
	}
	token, err := tokenOf(r, h.defaultToken)
	if err != nil {
		h.refuseUnauthenticated(w)
		return
	}
	h.stream(w, r, "invoice", uuid, format, token)
}

func (h *downloadHandler) serveLink(w http.ResponseWriter, r *http.Request) {
	// The link is the credential: never log it, not even in part.
	grant, err := h.links.Open(r.PathValue("opaque"))
	if err != nil {
		reason := "invalid"
		if errors.Is(err, ErrFileLinkExpired) {
			reason = "expired"
		}
		h.logger.InfoContext(r.Context(), "download link refused", "reason", reason)
		writeDownloadError(w, http.StatusForbidden, downloadError{Code: CodeForbidden, Message: err.Error()})
		return
	}
	token := grant.Token
	if token == "" {
		token = h.defaultToken
	}
	h.stream(w, r, "link", grant.UUID, grant.Format, token)
}

func (h *downloadHandler) refuseUnauthenticated(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="oceangraph"`)
	writeDownloadError(w, http.StatusUnauthorized, downloadError{Code: CodeUnauthenticated, Message: ErrUnauthenticated.Error()})
}

// copyBuffers bound what one download holds in memory: one 32 KiB buffer.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// stream copies one invoice file from DigitalOcean to w. The request's
// context (and so its deadline) is the upstream call's.
func (h *downloadHandler) stream(w http.ResponseWriter, r *http.Request, route, uuid string, format upstream.FileFormat, token string) {
	if token == "" {
		h.refuseUnauthenticated(w)
		return
	}
	start := time.Now()
	log := h.logger.With("route", route, "invoice", uuid, "format", string(format))
	f, err := h.client.GetInvoiceFile(upstream.WithToken(r.Context(), token), uuid, format)
	if err != nil {
		status, body := h.downloadFailure(r.Context(), err)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		log.Log(r.Context(), level, "download failed", "status", status, "code", body.Code, "err", err, "duration", time.Since(start))
		writeDownloadError(w, status, body)
		return
	}
	defer f.Body.Close()

	hdr := w.Header()
	contentType := f.ContentType
	if contentType == "" {
		contentType = format.ContentType()
	}
	name := f.Filename
	if name == "" {
		name = fileNameFor(uuid, format)
	}
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Disposition", attachment(name))
	if f.ContentLength >= 0 {
		hdr.Set("Content-Length", strconv.FormatInt(f.ContentLength, 10))
	}
	hdr.Set("Cache-Control", "private, no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// A link carries a sealed token: keep it out of any Referer.
	hdr.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// The headers go out now: a browser shows the download starting at once.
	http.NewResponseController(w).Flush()

	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	src := &readRecorder{r: f.Body}
	n, err := io.CopyBuffer(flushingWriter{w, http.NewResponseController(w)}, src, *buf)
	switch {
	case err == nil:
		log.InfoContext(r.Context(), "download served", "bytes", n, "duration", time.Since(start))
	case src.err != nil:
		// DigitalOcean broke off mid-file. The status is sent; aborting the
		// connection is the only way to tell the client the file is incomplete.
		log.WarnContext(r.Context(), "download cut off upstream", "bytes", n, "err", src.err, "duration", time.Since(start))
		panic(http.ErrAbortHandler)
	default:
		log.InfoContext(r.Context(), "download abandoned by the client", "bytes", n, "duration", time.Since(start))
	}
}

// flushingWriter passes each chunk on as soon as DigitalOcean sends it, as
// httputil.ReverseProxy does for streams, so the client never waits on a
// half-full buffer; being a plain Writer it also makes io.CopyBuffer use our buffer.
type flushingWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushingWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	// A middleware's writer may not flush; the copy then streams in the server's buffer-sized steps.
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return n, err
	}
	return n, nil
}

// readRecorder remembers a read error, to tell a broken upstream from a
// client that went away.
type readRecorder struct {
	r   io.Reader
	err error
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF {
		rr.err = err
	}
	return n, err
}

// downloadError is the JSON body of a failed download: the same code,
// message, retryAfter and upstream details a GraphQL error carries in extensions.
type downloadError struct {
	Code       string         `json:"code"`
	Message    string         `json:"message"`
	RetryAfter *int           `json:"retryAfter,omitempty"`
	Upstream   map[string]any `json:"upstream,omitempty"`
}

// downloadFailure maps an error through the GraphQL error presenter (the one
// mapping of errors to codes) and picks the HTTP status for its code.
func (h *downloadHandler) downloadFailure(ctx context.Context, err error) (int, downloadError) {
	gqlErr := errorPresenter(h.logger)(ctx, err)
	body := downloadError{Message: gqlErr.Message}
	body.Code, _ = gqlErr.Extensions["code"].(string)
	if s, ok := gqlErr.Extensions["retryAfter"].(int); ok {
		body.RetryAfter = &s
	}
	body.Upstream, _ = gqlErr.Extensions["upstream"].(map[string]any)
	switch body.Code {
	case CodeUnauthenticated:
		return http.StatusUnauthorized, body
	case CodeForbidden:
		return http.StatusForbidden, body
	case CodeNotFound:
		return http.StatusNotFound, body
	case CodeRateLimited:
		return http.StatusTooManyRequests, body
	case CodeBadUserInput:
		return http.StatusBadRequest, body
	case CodeUpstreamUnavailable:
		var ue *upstream.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ue) && ue.Status == http.StatusGatewayTimeout) {
			return http.StatusGatewayTimeout, body
		}
		return http.StatusBadGateway, body
	}
	return http.StatusInternalServerError, downloadError{Code: CodeInternal, Message: internalMessage}
}

func writeDownloadError(w http.ResponseWriter, status int, body downloadError) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if body.RetryAfter != nil && *body.RetryAfter > 0 {
		hdr.Set("Retry-After", strconv.Itoa(*body.RetryAfter))
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(struct {
		Error downloadError `json:"error"`
	}{body})
}

func fileFormat(s string) (upstream.FileFormat, bool) {
	switch f := upstream.FileFormat(s); f {
	case upstream.FormatCSV, upstream.FormatPDF:
		return f, true
	}
	return "", false
}

// attachment formats Content-Disposition for a download saved as name
// (RFC 6266): a plain-ASCII filename for every client, and when the name is
// anything else, also its exact UTF-8 form as filename* (RFC 5987).
func attachment(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1 // a control character could split the header
		}
		return r
	}, name)
	ascii := strings.Map(func(r rune) rune {
		if r > 0x7e || r == '"' || r == '\\' || r == '/' || r == '%' {
			return '_'
		}
		return r
	}, name)
	v := `attachment; filename="` + ascii + `"`
	if ascii != name {
		v += "; filename*=UTF-8''" + rfc5987Escape(name)
	}
	return v
}

// rfc5987Escape percent-encodes every byte of s but RFC 5987's attr-char.
func rfc5987Escape(s string) string {
	const attrChar = "!#$&+-.^_`|~"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte(attrChar, c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// The fields filename, byteSize and base64 of InvoiceFile share one download
// per (invoice, format) per GraphQL request, through the memo below.

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

// fileDownloads is one GraphQL request's memo of invoice file downloads: a
// per-request loader (loaders.go's newLoader: de-duplication, the concurrency
// bound, transient failures not cached) keyed by (invoice, format), and the
// request's budget of bytes held for base64. It must never be shared between
// requests: it holds what a token downloaded.
type fileDownloads struct {
	budget atomic.Int64
	once   sync.Once
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

type fileDownloadsKey struct{}

// withFileDownloads gives a GraphQL request its own memo of file downloads;
// the per-request middleware calls it once per request.
func withFileDownloads(ctx context.Context) context.Context {
	d := &fileDownloads{}
	d.budget.Store(maxBase64RequestBytes)
	return context.WithValue(ctx, fileDownloadsKey{}, d)
}

// fileDownloadsFrom returns the request's memo. Without one (a resolver
// called outside a request) every call gets a fresh memo, so nothing is shared.
func fileDownloadsFrom(ctx context.Context) *fileDownloads {
	if d, ok := ctx.Value(fileDownloadsKey{}).(*fileDownloads); ok {
		return d
	}
	return fileDownloadsFrom(withFileDownloads(ctx))
}

// get downloads one invoice file, or waits for the download another field of
// the request already started, or returns the one it finished.
func (d *fileDownloads) get(ctx context.Context, client *upstream.Client, invoice string, format upstream.FileFormat) (downloadedFile, error) {
	d.once.Do(func() {
		d.loader = newLoader(scopeFrom(ctx).naive(), func(ctx context.Context, k fileKey) (downloadedFile, error) {
			return d.download(ctx, client, k.invoice, k.format, operationSelectsBase64(ctx))
		})
	})
	return load(ctx, d.loader, fileKey{invoice, format})
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
		endpoint := upstream.EndpointInvoiceCSV
		if format == upstream.FormatPDF {
			endpoint = upstream.EndpointInvoicePDF
		}
		return downloadedFile{}, fmt.Errorf("download the %s of invoice %s: %w", format, invoice,
			&upstream.Error{Endpoint: endpoint, Kind: upstream.KindTransport, Err: fmt.Errorf("file cut off after %d bytes: %w", n, err)})
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
