package graph

// An issued invoice's CSV and PDF, kept per token in the immutable-data cache
// when no larger than SharedState.FileMaxBytes, for the GraphQL file fields
// (files.go) and the download routes (download.go) alike. A file is captured
// as it streams from DigitalOcean (never read twice, never held past the
// bound) and kept only once it was read whole. Entries are sealed in memory
// too (tokencache.PutSealed): a whole billing document should not sit readable
// in a dump of the process. The preview is never cached (markIssued never
// marks it), and a hit is served only once the token is proven (prove).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/oceangraph/oceangraph/upstream"
)

// DefaultCacheFileMaxBytes is the server's default SharedState.FileMaxBytes:
// DigitalOcean's invoice files are tens of kilobytes.
const DefaultCacheFileMaxBytes = 1 << 20

// cachedFile is an invoice file as the cache keeps it: what DigitalOcean said
// of it, from which a download's headers are made exactly as for a stream, and its bytes.
type cachedFile struct {
	// Name is DigitalOcean's filename, "" when it sent none.
	Name string `json:"n,omitempty"`
	// ContentType is DigitalOcean's, "" when it sent none.
	ContentType string `json:"t,omitempty"`
	// Length is DigitalOcean's Content-Length, -1 when it stated none.
	Length int64 `json:"l"`
	data   []byte
}

// encode is the header as JSON, a newline (compact JSON has none), then the bytes.
func (f cachedFile) encode() []byte {
	head, _ := json.Marshal(f)
	return append(append(append(make([]byte, 0, len(head)+1+len(f.data)), head...), '\n'), f.data...)
}

func decodeCachedFile(b []byte) (cachedFile, error) {
	head, data, ok := bytes.Cut(b, []byte{'\n'})
	var f cachedFile
	if !ok {
		return f, errors.New("no header")
	}
	if err := json.Unmarshal(head, &f); err != nil {
		return f, err
	}
	f.data = data
	return f, nil
}

func fileEntryName(uuid string, format upstream.FileFormat) string {
	return "file/" + uuid + "." + string(format)
}

// cachesFiles reports whether the file of uuid may come from, or go to, the cache.
func (c *costScope) cachesFiles(ctx context.Context, uuid string) bool {
	return c != nil && c.cache != nil && c.state.FileMaxBytes > 0 && !scopeFrom(ctx).naive() && c.issued(ctx, uuid)
}

// cachedFile returns the token's cached file of an issued invoice, once the
// token is proven, and counts the hit; ok is false on a miss.
func (c *costScope) cachedFile(ctx context.Context, uuid string, format upstream.FileFormat) (f cachedFile, ok bool, err error) {
	if !c.cachesFiles(ctx, uuid) {
		return f, false, nil
	}
	name := fileEntryName(uuid, format)
	raw, _, ok := c.cache.GetCounted(ctx, name)
	if !ok {
		return f, false, nil
	}
	if f, err = decodeCachedFile(raw); err != nil {
		return f, false, nil // not a file this build wrote: a miss
	}
	if err := c.prove(ctx); err != nil {
		return cachedFile{}, false, fmt.Errorf("download the %s of invoice %s: %w", format, uuid, err)
	}
	c.touch(ctx)
	c.hit(name)
	return f, true, nil
}

// fileCapture collects a file as it streams from DigitalOcean, up to the
// cache's bound, past which it lets go of what it held.
type fileCapture struct {
	ctx  context.Context
	c    *costScope
	name string
	max  int64
	file cachedFile
	buf  *bytes.Buffer // nil once the file went past max, or was kept
}

// captureFile starts capturing f for the cache, or returns nil when f may not
// be cached (not an issued invoice's, no cache, or a stated length past the bound).
func (c *costScope) captureFile(ctx context.Context, uuid string, format upstream.FileFormat, f *upstream.File) *fileCapture {
	if !c.cachesFiles(ctx, uuid) || f.ContentLength > c.state.FileMaxBytes {
		return nil
	}
	buf := &bytes.Buffer{}
	if f.ContentLength >= 0 {
		buf.Grow(int(f.ContentLength))
	}
	return &fileCapture{
		ctx: context.WithoutCancel(ctx), c: c, name: fileEntryName(uuid, format), max: c.state.FileMaxBytes, buf: buf,
		file: cachedFile{Name: f.Filename, ContentType: f.ContentType, Length: f.ContentLength},
	}
}

// Write never fails, so that capturing never disturbs the stream it copies.
// A file of a stated length is kept as soon as it is all here: before its
// last bytes go on to the client, so that the client's next request finds it.
func (fc *fileCapture) Write(p []byte) (int, error) {
	if fc.buf == nil {
		return len(p), nil
	}
	if int64(fc.buf.Len()+len(p)) > fc.max {
		fc.buf = nil
		return len(p), nil
	}
	fc.buf.Write(p)
	if int64(fc.buf.Len()) == fc.file.Length {
		fc.keep()
	}
	return len(p), nil
}

// keep stores the file, which the caller read to its end without error.
func (fc *fileCapture) keep() {
	if fc == nil || fc.buf == nil {
		return
	}
	if fc.file.Length >= 0 && int64(fc.buf.Len()) != fc.file.Length {
		return // shorter or longer than DigitalOcean said: not a file to serve again
	}
	fc.file.data = fc.buf.Bytes()
	fc.buf = nil
	fc.c.cache.PutSealed(fc.ctx, fc.name, fc.file.encode(), 0)
	fc.c.touch(fc.ctx)
}
