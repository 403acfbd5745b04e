package graph

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/oceangraph/oceangraph/upstream"
)

// DefaultFileLinkTTL is how long a file link stays valid when no TTL is configured.
const DefaultFileLinkTTL = 5 * time.Minute

// minFileLinkKeySize is the shortest key NewFileLinks accepts, in bytes.
const minFileLinkKeySize = 32

// The two ways Open refuses a link. Both become a 403 at the download route.
var (
	errFileLinkExpired = errors.New("this download link has expired: ask the API for a fresh InvoiceFile.url")
	errFileLinkInvalid = errors.New("this download link is not valid: it was altered, cut short, or issued by another server")
)

// Limits on what a link carries, so that a URL stays well under what browsers
// and proxies accept and Open never decodes an unbounded input.
const (
	maxLinkUUID   = 255
	maxLinkToken  = 2048
	maxLinkOpaque = 4096
)

// A link's wire layout (before base64url without padding):
//
//	version(1) | nonce(24) | XChaCha20-Poly1305 seal of payload, with version as additional data
//	payload = expires unix seconds (8, big endian) | format(1) | len(uuid)(1) | uuid | token
//
// XChaCha20's 192-bit random nonces make nonce reuse negligible however many
// links one long-lived key seals, which AES-GCM's 96-bit nonces do not.
const linkVersion byte = 1

// FileLinks issues and opens the self-contained links behind InvoiceFile.url.
// A link is stateless: any replica configured with the same key opens it.
// It is safe for concurrent use.
type FileLinks struct {
	aead cipher.AEAD
	ttl  time.Duration
	// now is the clock; tests replace it.
	now func() time.Time
}

// linkGrant is what an opened link allows: one file of one invoice, until Expires.
type linkGrant struct {
	UUID   string
	Format upstream.FileFormat
	// Token is the caller's DigitalOcean token; empty when the caller used the
	// server's default token, which the download route then uses too.
	Token   string
	Expires time.Time
}

// NewFileLinks builds the link codec from a secret key of at least
// minFileLinkKeySize bytes; ttl 0 means DefaultFileLinkTTL.
func NewFileLinks(key []byte, ttl time.Duration) (*FileLinks, error) {
	if len(key) < minFileLinkKeySize {
		return nil, fmt.Errorf("file link key is %d bytes: want at least %d", len(key), minFileLinkKeySize)
	}
	if ttl < 0 {
		return nil, fmt.Errorf("file link TTL %v: want a positive duration", ttl)
	}
	if ttl == 0 {
		ttl = DefaultFileLinkTTL
	}
	// HKDF ties the cipher key to this one purpose, so the configured key may
	// be any length and could serve another purpose without the two interfering.
	aeadKey, err := hkdf.Key(sha256.New, key, nil, "oceangraph file link v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive file link key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(aeadKey)
	if err != nil {
		return nil, fmt.Errorf("file link cipher: %w", err)
	}
	return &FileLinks{aead: aead, ttl: ttl, now: time.Now}, nil
}

// TTL is how long the links this codec issues stay valid.
func (l *FileLinks) TTL() time.Duration { return l.ttl }

// URL returns an absolute link, {baseURL}/files/{opaque}/invoice-{uuid}.{csv|pdf},
// that downloads that invoice's file with no headers until the TTL passes.
// The last segment only names the saved file; the server ignores it.
// token may be empty (the server's default token).
func (l *FileLinks) URL(baseURL, uuid string, format upstream.FileFormat, token string) (string, error) {
	base, err := url.Parse(baseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		return "", fmt.Errorf("file link base URL %q: want an absolute http(s) URL", baseURL)
	}
	opaque, err := l.seal(uuid, format, token)
	if err != nil {
		return "", err
	}
	return base.JoinPath("files", opaque, fileNameFor(uuid, format)).String(), nil
}

func (l *FileLinks) seal(uuid string, format upstream.FileFormat, token string) (string, error) {
	f, ok := formatCode(format)
	switch {
	case !ok:
		return "", fmt.Errorf("file link: unknown format %q", format)
	case uuid == "" || len(uuid) > maxLinkUUID:
		return "", fmt.Errorf("file link: invoice uuid must be 1 to %d bytes", maxLinkUUID)
	case len(token) > maxLinkToken:
		return "", fmt.Errorf("file link: token longer than %d bytes", maxLinkToken)
	}
	payload := make([]byte, 0, 10+len(uuid)+len(token))
	payload = binary.BigEndian.AppendUint64(payload, uint64(l.now().Add(l.ttl).Unix()))
	payload = append(payload, f, byte(len(uuid)))
	payload = append(payload, uuid...)
	payload = append(payload, token...)

	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(payload)+l.aead.Overhead())
	out[0] = linkVersion
	nonce := out[1:]
	rand.Read(nonce) // crypto/rand.Read never fails (it crashes the program instead)
	out = l.aead.Seal(out, nonce, payload, out[:1])
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open checks a link's opaque part and returns what it grants. It returns
// errFileLinkExpired for a genuine link past its time, and errFileLinkInvalid
// for anything altered, truncated, or sealed with another key.
func (l *FileLinks) open(opaque string) (linkGrant, error) {
	if len(opaque) > maxLinkOpaque {
		return linkGrant{}, errFileLinkInvalid
	}
	// Strict: a non-canonical spelling of the same bytes is an altered link too.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(opaque)
	if err != nil || len(raw) < 1+chacha20poly1305.NonceSizeX+l.aead.Overhead() || raw[0] != linkVersion {
		return linkGrant{}, errFileLinkInvalid
	}
	nonce, sealed := raw[1:1+chacha20poly1305.NonceSizeX], raw[1+chacha20poly1305.NonceSizeX:]
	payload, err := l.aead.Open(nil, nonce, sealed, raw[:1])
	if err != nil || len(payload) < 10 {
		return linkGrant{}, errFileLinkInvalid
	}
	expires := time.Unix(int64(binary.BigEndian.Uint64(payload)), 0).UTC()
	format, ok := formatFromCode(payload[8])
	n := int(payload[9])
	if !ok || n == 0 || len(payload) < 10+n {
		return linkGrant{}, errFileLinkInvalid
	}
	g := linkGrant{UUID: string(payload[10 : 10+n]), Format: format, Token: string(payload[10+n:]), Expires: expires}
	// Authenticity first, then time: only a link this server issued is "expired".
	if !l.now().Before(expires) {
		return linkGrant{}, errFileLinkExpired
	}
	return g, nil
}

func formatCode(f upstream.FileFormat) (byte, bool) {
	switch f {
	case upstream.FormatCSV:
		return 'c', true
	case upstream.FormatPDF:
		return 'p', true
	}
	return 0, false
}

func formatFromCode(b byte) (upstream.FileFormat, bool) {
	switch b {
	case 'c':
		return upstream.FormatCSV, true
	case 'p':
		return upstream.FormatPDF, true
	}
	return "", false
}

// fileNameFor is the name a file is saved under when DigitalOcean names none:
// invoice-{uuid}.{csv|pdf}, keeping only characters safe in any file system.
func fileNameFor(uuid string, format upstream.FileFormat) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, uuid)
	return "invoice-" + safe + "." + string(format)
}
