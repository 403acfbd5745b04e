package graph

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oceangraph/oceangraph/upstream"
)

// Downloads serves invoice files from DigitalOcean to the caller, streamed as
// DigitalOcean sends them, never held whole in memory beyond the file cache's
// bound (an issued invoice's small file is kept and served from the cache:
// filecache.go). A route answers HEAD too (it costs one upstream call, as
// DigitalOcean has no HEAD, unless the cache holds the file). The server
// (internal/server) lists the routes:
//
//	GET /invoices/{uuid}/{format}   InvoiceFile: authorized like /query (Authorization: Bearer, else the default token)
//	GET /files/{link}               Link: a link from InvoiceFile.url, which needs no header at all
//	GET /files/{link}/{name}        Link too (the file's name, for the browser)
//	GET /files/                     Refuse: anything else under /files/
type Downloads struct {
	client       *upstream.Client
	links        *FileLinks
	defaultToken string
	// shared holds the cache of issued invoices' files (filecache.go); nil: none.
	shared *SharedState
	logger *slog.Logger
}

// NewDownloads returns the download routes' handlers; st is the state the
// GraphQL handler shares (nil: every download streams from DigitalOcean).
func NewDownloads(client *upstream.Client, links *FileLinks, defaultToken string, st *SharedState, logger *slog.Logger) *Downloads {
	return &Downloads{client: client, links: links, defaultToken: defaultToken, shared: st, logger: cmp.Or(logger, slog.Default())}
}

// Refuse answers a request no download route takes: 405 for a method other
// than GET and HEAD, else 404, with the downloads' JSON error.
func (d *Downloads) Refuse(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeDownloadError(w, http.StatusMethodNotAllowed, downloadError{Code: codeMethodNotAllowed, Message: "downloads answer GET and HEAD only"})
		return
	}
	writeDownloadError(w, http.StatusNotFound, downloadError{Code: CodeNotFound, Message: "no such download: use /invoices/{uuid}/csv, /invoices/{uuid}/pdf or an InvoiceFile.url link"})
}

// InvoiceFile serves GET /invoices/{uuid}/{format}.
func (d *Downloads) InvoiceFile(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	format, ok := fileFormat(r.PathValue("format"))
	if !ok {
		writeDownloadError(w, http.StatusNotFound, downloadError{Code: CodeNotFound, Message: "an invoice downloads as csv or pdf"})
		return
	}
	if err := checkID("uuid", uuid); err != nil {
		writeDownloadError(w, http.StatusBadRequest, downloadError{Code: codeBadUserInput, Message: err.Error()})
		return
	}
	if len(r.Header.Values("Authorization")) > 1 {
		writeDownloadError(w, http.StatusBadRequest, downloadError{Code: CodeBadRequest, Message: errTwoAuthorizations.Error()})
		return
	}
	token, err := tokenOf(r, d.defaultToken)
	if err != nil {
		d.refuseUnauthenticated(w)
		return
	}
	d.stream(w, r, "invoice", uuid, format, token)
}

// Link serves GET /files/{link} and GET /files/{link}/{name}.
func (d *Downloads) Link(w http.ResponseWriter, r *http.Request) {
	// The link is the credential: never log it, not even in part.
	grant, err := d.links.open(r.PathValue("link"))
	if err != nil {
		reason := "invalid"
		if errors.Is(err, errFileLinkExpired) {
			reason = "expired"
		}
		d.logger.InfoContext(r.Context(), "download link refused", "reason", reason)
		writeDownloadError(w, http.StatusForbidden, downloadError{Code: codeForbidden, Message: err.Error()})
		return
	}
	token := grant.Token
	if token == "" {
		token = d.defaultToken
	}
	d.stream(w, r, "link", grant.UUID, grant.Format, token)
}

func (d *Downloads) refuseUnauthenticated(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="oceangraph"`)
	writeDownloadError(w, http.StatusUnauthorized, downloadError{Code: codeUnauthenticated, Message: errUnauthenticated.Error()})
}

// copyBuffers bound what one download holds in memory: one 32 KiB buffer.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// stream copies one invoice file from DigitalOcean to w, or from the cache
// when it holds the token's copy of an issued invoice's file. The request's
// context (and so its deadline) is the upstream call's.
func (d *Downloads) stream(w http.ResponseWriter, r *http.Request, route, uuid string, format upstream.FileFormat, token string) {
	if token == "" {
		d.refuseUnauthenticated(w)
		return
	}
	start := time.Now()
	log := d.logger.With("route", route, "invoice", uuid, "format", string(format))
	// A scope of its own, so that DigitalOcean accepting the token here
	// (ObserveUpstream) counts as the proof a cached answer needs.
	cost := newCostScope(d.shared, d.client, token)
	ctx := withScope(r.Context(), &requestScope{token: token, cost: cost, logger: d.logger})
	failed := func(err error) {
		status, body := d.downloadFailure(ctx, err)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		log.Log(ctx, level, "download failed", "status", status, "code", body.Code, "err", err, "duration", time.Since(start))
		writeDownloadError(w, status, body)
	}
	cf, cached, err := cost.cachedFile(ctx, uuid, format)
	if err != nil {
		failed(err)
		return
	}
	if cached {
		if startFile(w, r, uuid, format, cf.Name, cf.ContentType, cf.Length) {
			if n, err := w.Write(cf.data); err != nil {
				log.InfoContext(ctx, "download abandoned by the client", "bytes", n, "from", "cache", "duration", time.Since(start))
			} else {
				log.InfoContext(ctx, "download served", "bytes", n, "from", "cache", "duration", time.Since(start))
			}
		}
		return
	}
	f, err := d.client.GetInvoiceFile(upstream.WithToken(ctx, token), uuid, format)
	if err != nil {
		failed(err)
		return
	}
	defer f.Body.Close()
	if !startFile(w, r, uuid, format, f.Filename, f.ContentType, f.ContentLength) {
		return
	}

	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	src := &readRecorder{r: f.Body}
	var body io.Reader = src
	capture := cost.captureFile(ctx, uuid, format, f)
	if capture != nil {
		body = io.TeeReader(src, capture)
	}
	n, err := io.CopyBuffer(flushingWriter{w, http.NewResponseController(w)}, body, *buf)
	switch {
	case err == nil:
		capture.keep()
		log.InfoContext(r.Context(), "download served", "bytes", n, "duration", time.Since(start))
	case src.err != nil:
		// DigitalOcean broke off mid-file. The status is sent; aborting the
		// connection is the only way to tell the client the file is incomplete.
		log.WarnContext(r.Context(), "download cut off upstream", "bytes", n, "err", src.err, "duration", time.Since(start))
		panic(http.ErrAbortHandler)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The server's own WRITE_TIMEOUT ended the response: the client was
		// reading, too slowly for the bound, or the file is too large for it.
		log.WarnContext(r.Context(), "download cut off by the server's write timeout (WRITE_TIMEOUT)", "bytes", n, "duration", time.Since(start))
	default:
		log.InfoContext(r.Context(), "download abandoned by the client", "bytes", n, "duration", time.Since(start))
	}
}

// startFile sends a download's status and headers, the same whether the file
// comes from DigitalOcean or the cache (name, contentType and length as
// DigitalOcean sent them: "" or -1 when it did not), and reports whether a
// body should follow (not for HEAD).
func startFile(w http.ResponseWriter, r *http.Request, uuid string, format upstream.FileFormat, name, contentType string, length int64) bool {
	hdr := w.Header()
	hdr.Set("Content-Type", cmp.Or(contentType, format.ContentType()))
	hdr.Set("Content-Disposition", attachment(cmp.Or(name, fileNameFor(uuid, format))))
	if length >= 0 {
		hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	hdr.Set("Cache-Control", "private, no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// A link carries a sealed token: keep it out of any Referer.
	hdr.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return false
	}
	// The headers go out now: a browser shows the download starting at once.
	http.NewResponseController(w).Flush()
	return true
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
func (d *Downloads) downloadFailure(ctx context.Context, err error) (int, downloadError) {
	gqlErr := errorPresenter(d.logger)(ctx, err)
	body := downloadError{Message: gqlErr.Message}
	body.Code, _ = gqlErr.Extensions["code"].(string)
	if s, ok := gqlErr.Extensions["retryAfter"].(int); ok {
		body.RetryAfter = &s
	}
	body.Upstream, _ = gqlErr.Extensions["upstream"].(map[string]any)
	switch body.Code {
	case codeUnauthenticated:
		return http.StatusUnauthorized, body
	case codeForbidden:
		return http.StatusForbidden, body
	case CodeNotFound:
		return http.StatusNotFound, body
	case codeRateLimited:
		return http.StatusTooManyRequests, body
	case codeBadUserInput:
		return http.StatusBadRequest, body
	case codeShuttingDown:
		return http.StatusServiceUnavailable, body
	case codeUpstreamUnavailable:
		var ue *upstream.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ue) && ue.Status == http.StatusGatewayTimeout) {
			return http.StatusGatewayTimeout, body
		}
		return http.StatusBadGateway, body
	}
	return http.StatusInternalServerError, downloadError{Code: codeInternal, Message: internalMessage}
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
