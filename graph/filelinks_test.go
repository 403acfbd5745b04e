package graph

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/upstream"
)

const (
	fileTestInvoice = "22737513-0ea7-4206-8ceb-98a575af7681"
	fileTestToken   = "dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

var fileTestKey = bytes.Repeat([]byte("k"), 32)

// testLinks returns a codec whose clock the test moves by hand.
func newTestFileLinks(t *testing.T, key []byte) (*FileLinks, *time.Time) {
	t.Helper()
	l, err := NewFileLinks(key, 0)
	if err != nil {
		t.Fatalf("NewFileLinks: %v", err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	return l, &now
}

// opaqueOf cuts the opaque part out of a link.
func linkOpaque(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatalf("link %q does not parse: %v", link, err)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/files/"), "/")
	if len(parts) != 2 {
		t.Fatalf("link path %q: want /files/{opaque}/{name}", u.Path)
	}
	return parts[0]
}

func TestFileLinkRoundTrip(t *testing.T) {
	links, now := newTestFileLinks(t, fileTestKey)
	for _, tc := range []struct {
		name   string
		uuid   string
		format upstream.FileFormat
		token  string
	}{
		{"pdf with the caller's token", fileTestInvoice, upstream.FormatPDF, fileTestToken},
		{"csv with the server's default token", fileTestInvoice, upstream.FormatCSV, ""},
		{"the preview invoice", "preview", upstream.FormatPDF, "t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			link, err := links.URL("https://api.example.com/", tc.uuid, tc.format, tc.token)
			if err != nil {
				t.Fatalf("URL: %v", err)
			}
			wantPrefix := "https://api.example.com/files/"
			wantSuffix := "/invoice-" + tc.uuid + "." + string(tc.format)
			if !strings.HasPrefix(link, wantPrefix) || !strings.HasSuffix(link, wantSuffix) {
				t.Fatalf("link %q: want %s{opaque}%s", link, wantPrefix, wantSuffix)
			}
			g, err := links.open(linkOpaque(t, link))
			if err != nil {
				t.Fatalf("Open of a fresh link: %v", err)
			}
			want := linkGrant{UUID: tc.uuid, Format: tc.format, Token: tc.token, Expires: now.Add(DefaultFileLinkTTL)}
			if g != want {
				t.Errorf("grant = %+v, want %+v", g, want)
			}
		})
	}
}

func TestFileLinksAreUniqueAndKeepTheTokenSecret(t *testing.T) {
	links, _ := newTestFileLinks(t, fileTestKey)
	a, _ := links.URL("http://localhost:8080", fileTestInvoice, upstream.FormatPDF, fileTestToken)
	b, _ := links.URL("http://localhost:8080", fileTestInvoice, upstream.FormatPDF, fileTestToken)
	if a == b {
		t.Errorf("two links for the same file are identical (%q): the nonce is not random", a)
	}
	for _, secret := range []string{
		fileTestToken,
		"0123456789abcdef0123456789abcdef",
		base64.StdEncoding.EncodeToString([]byte(fileTestToken)),
		base64.RawURLEncoding.EncodeToString([]byte(fileTestToken)),
		base64.RawURLEncoding.EncodeToString([]byte(fileTestToken))[8:40],
		url.QueryEscape(fileTestToken),
	} {
		if strings.Contains(a, secret) {
			t.Errorf("link %q contains %q: the token is readable", a, secret)
		}
	}
}

func TestFileLinkRefusals(t *testing.T) {
	links, now := newTestFileLinks(t, fileTestKey)
	link, _ := links.URL("http://localhost:8080", fileTestInvoice, upstream.FormatPDF, fileTestToken)
	opaque := linkOpaque(t, link)
	raw, _ := base64.RawURLEncoding.DecodeString(opaque)

	foreign, _ := newTestFileLinks(t, bytes.Repeat([]byte("f"), 32))
	foreignLink, _ := foreign.URL("http://localhost:8080", fileTestInvoice, upstream.FormatPDF, fileTestToken)

	for _, tc := range []struct {
		name   string
		opaque string
	}{
		{"empty", ""},
		{"not base64", "!!!" + opaque[3:]},
		{"truncated by one character", opaque[:len(opaque)-1]},
		{"truncated to the header", opaque[:20]},
		{"extended", opaque + "AA"},
		{"sealed with another key", linkOpaque(t, foreignLink)},
		{"far too long", strings.Repeat("A", maxLinkOpaque+4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := links.open(tc.opaque); !errors.Is(err, errFileLinkInvalid) {
				t.Errorf("Open = %v, want errFileLinkInvalid", err)
			}
		})
	}
	// Flipping any single bit anywhere must be caught.
	for i := range raw {
		altered := bytes.Clone(raw)
		altered[i] ^= 0x01
		if _, err := links.open(base64.RawURLEncoding.EncodeToString(altered)); !errors.Is(err, errFileLinkInvalid) {
			t.Fatalf("byte %d flipped: Open = %v, want errFileLinkInvalid", i, err)
		}
	}

	// So must changing any single character of the link as written.
	for i := range opaque {
		for _, c := range []byte{'A', 'B', '_'} {
			if opaque[i] == c {
				continue
			}
			altered := opaque[:i] + string(c) + opaque[i+1:]
			if _, err := links.open(altered); !errors.Is(err, errFileLinkInvalid) {
				t.Fatalf("character %d changed to %q: Open = %v, want errFileLinkInvalid", i, c, err)
			}
		}
	}

	t.Run("expired", func(t *testing.T) {
		*now = now.Add(DefaultFileLinkTTL - time.Second)
		if _, err := links.open(opaque); err != nil {
			t.Fatalf("a second before expiry: Open = %v, want the grant", err)
		}
		*now = now.Add(time.Second)
		if _, err := links.open(opaque); !errors.Is(err, errFileLinkExpired) {
			t.Errorf("at expiry: Open = %v, want errFileLinkExpired", err)
		}
	})
}

func TestNewFileLinksChecksItsConfiguration(t *testing.T) {
	if _, err := NewFileLinks(make([]byte, 31), 0); err == nil {
		t.Error("a 31-byte key was accepted; want an error")
	}
	if _, err := NewFileLinks(fileTestKey, -time.Second); err == nil {
		t.Error("a negative TTL was accepted; want an error")
	}
	l, err := NewFileLinks(make([]byte, 64), 90*time.Second)
	if err != nil || l.TTL() != 90*time.Second {
		t.Errorf("NewFileLinks(64-byte key, 90s) = TTL %v, %v; want 1m30s, nil", l.TTL(), err)
	}
	links, _ := newTestFileLinks(t, fileTestKey)
	for _, tc := range []struct {
		name, base, uuid string
		format           upstream.FileFormat
	}{
		{"relative base URL", "/api", fileTestInvoice, upstream.FormatPDF},
		{"empty uuid", "http://x", "", upstream.FormatPDF},
		{"unknown format", "http://x", fileTestInvoice, "xlsx"},
	} {
		if link, err := links.URL(tc.base, tc.uuid, tc.format, ""); err == nil {
			t.Errorf("%s: URL = %q, want an error", tc.name, link)
		}
	}
}

// FuzzFileLink: no input crashes open, which grants exactly what this key
// sealed (here, the seeds' two grants) and nothing else; anything else,
// however it was altered, is errFileLinkInvalid (403 at the route).
func FuzzFileLink(f *testing.F) {
	links, err := NewFileLinks(fileTestKey, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	other, _ := NewFileLinks(bytes.Repeat([]byte{8}, minFileLinkKeySize), time.Hour)
	seal := func(l *FileLinks, uuid string, format upstream.FileFormat, token string) string {
		s, err := l.seal(uuid, format, token)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	good := seal(links, "22737513-0ea7-4206-8ceb-98a575af7681", upstream.FormatPDF, "dop_v1_secret")
	genuine := seal(links, fileTestInvoice, upstream.FormatPDF, fileTestToken)
	sealed := []linkGrant{
		{UUID: "22737513-0ea7-4206-8ceb-98a575af7681", Format: upstream.FormatPDF, Token: "dop_v1_secret"},
		{UUID: fileTestInvoice, Format: upstream.FormatPDF, Token: fileTestToken},
	}
	f.Add(genuine, "u", "", uint16(0), uint8(0))
	f.Add(genuine[:len(genuine)-1]+"B", "u", "", uint16(0), uint8(0))
	f.Add(strings.Repeat("A", 60), "u", "", uint16(0), uint8(0))
	f.Add(good, "22737513-0ea7-4206-8ceb-98a575af7681", "dop_v1_secret", uint16(0), uint8(0))
	f.Add(good, "preview", "", uint16(10), uint8(1))
	f.Add(good[:len(good)-1], "x", "t", uint16(40), uint8(0x80))
	f.Add(seal(other, "u", upstream.FormatCSV, ""), "u", "", uint16(0), uint8(0))
	f.Add("", "", "", uint16(0), uint8(0))
	f.Add("AQ", "..", strings.Repeat("t", 2049), uint16(1), uint8(1))
	f.Add(strings.Repeat("A", 5000), "u", "t", uint16(0), uint8(0))
	// The download route in front of an upstream that is never reached: a
	// forged link must be refused before any call.
	refusing, err := upstream.New(upstream.Config{BaseURL: "http://127.0.0.1:1", MaxRetries: -1})
	if err != nil {
		f.Fatal(err)
	}
	route := downloadRoutes(refusing, links, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, opaque, uuid, token string, flipAt uint16, flipBits uint8) {
		// Arbitrary input: refused unless it is a link this key sealed.
		g, err := links.open(opaque)
		if err != nil {
			if !errors.Is(err, errFileLinkInvalid) && !errors.Is(err, errFileLinkExpired) {
				t.Fatalf("Open(%q): error %v is neither invalid nor expired", opaque, err)
			}
		} else if !slices.ContainsFunc(sealed, func(s linkGrant) bool {
			return s.UUID == g.UUID && s.Format == g.Format && s.Token == g.Token
		}) {
			t.Fatalf("Open(%q) granted %+v, which this key never sealed", opaque, g)
		}
		// (An empty, "." or ".." segment is net/http's path cleaning, not a link.)
		if err != nil && opaque != "" && opaque != "." && opaque != ".." {
			rec := httptest.NewRecorder()
			route.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/files/"+url.PathEscape(opaque)+"/invoice.pdf", nil))
			if rec.Code != http.StatusForbidden && rec.Code != http.StatusNotFound {
				t.Fatalf("GET /files/%q: HTTP %d, want 403 (or 404 for a path that is no link): %s", opaque, rec.Code, rec.Body)
			}
			var body struct{ Error struct{ Code string } }
			if json.Unmarshal(rec.Body.Bytes(), &body) != nil || (body.Error.Code != codeForbidden && body.Error.Code != CodeNotFound) {
				t.Fatalf("GET /files/%q: body without FORBIDDEN or NOT_FOUND: %s", opaque, rec.Body)
			}
		}

		// A sealed link opens to exactly what was sealed, and never shows the token.
		for _, format := range []upstream.FileFormat{upstream.FormatCSV, upstream.FormatPDF} {
			sealed, err := links.seal(uuid, format, token)
			if err != nil {
				return // out of the documented limits (empty or long uuid, long token)
			}
			if token != "" && len(token) >= 4 && strings.Contains(sealed, token) {
				t.Fatalf("the sealed link %q shows the token %q", sealed, token)
			}
			g, err := links.open(sealed)
			if err != nil || g.UUID != uuid || g.Format != format || g.Token != token {
				t.Fatalf("seal(%q, %s, %q) opened as %+v, %v", uuid, format, token, g, err)
			}
			// Any change to it is refused.
			raw := []byte(sealed)
			i := int(flipAt) % len(raw)
			if flipBits == 0 {
				flipBits = 1
			}
			raw[i] ^= flipBits
			if _, err := links.open(string(raw)); err == nil && string(raw) != sealed {
				if decoded, derr := base64.RawURLEncoding.DecodeString(string(raw)); derr == nil {
					orig, _ := base64.RawURLEncoding.DecodeString(sealed)
					if !bytes.Equal(decoded, orig) {
						t.Fatalf("an altered link (byte %d ^ %#x) still opens", i, flipBits)
					}
				}
			}
			if _, err := other.open(sealed); !errors.Is(err, errFileLinkInvalid) {
				t.Fatalf("a link sealed with another key: got %v, want errFileLinkInvalid", err)
			}
		}
	})
}

func BenchmarkFileLinks(b *testing.B) {
	links, _ := NewFileLinks(fileTestKey, 0)
	b.Run("URL", func(b *testing.B) {
		for b.Loop() {
			links.URL("https://og.example", fileTestInvoice, upstream.FormatPDF, fileTestToken)
		}
	})
	link, _ := links.URL("https://og.example", fileTestInvoice, upstream.FormatPDF, fileTestToken)
	opaque := link[len("https://og.example/files/"):strings.LastIndexByte(link, '/')]
	b.Run("Open", func(b *testing.B) {
		for b.Loop() {
			links.open(opaque)
		}
	})
	b.ReportMetric(float64(len(link)), "link-chars")
}
