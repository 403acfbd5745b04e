package playground

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gqlplayground "github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"
	gqlparser "github.com/vektah/gqlparser/v2/parser"
)

// fakePlaygroundAssets are stand-ins for the built files: the handler must hash and serve whatever
// bytes the folder holds.
var fakePlaygroundAssets = map[string]struct{ path, body string }{
	"graphiqlJs":  {"graphiql@4.1.2/graphiql.min.js", "window.GraphiQL = function () {};"},
	"graphiqlCss": {"graphiql@4.1.2/graphiql.min.css", ".graphiql-container { color: red }"},
	"reactJs":     {"react@18.2.0/umd/react.production.min.js", "window.React = {};"},
	"reactDomJs":  {"react-dom@18.2.0/umd/react-dom.production.min.js", "window.ReactDOM = {};"},
}

// TestMain runs the tests from the repository's root, where the server runs
// and where the build step (web/build-assets.mjs) and its lock file are found.
func TestMain(m *testing.M) {
	if err := os.Chdir("../.."); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// writeFakePlaygroundAssets lays out a folder as web/build-assets.mjs does; edit may change the
// manifest before it is written.
func writeFakePlaygroundAssets(t *testing.T, edit func(manifest map[string]playgroundManifestEntry)) string {
	t.Helper()
	dir := t.TempDir()
	manifest := map[string]playgroundManifestEntry{}
	for role, file := range fakePlaygroundAssets {
		full := filepath.Join(dir, filepath.FromSlash(file.path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(file.body), 0o644); err != nil {
			t.Fatal(err)
		}
		manifest[role] = playgroundManifestEntry{Path: file.path, Integrity: playgroundTestSRI(file.body)}
	}
	if edit != nil {
		edit(manifest)
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "assets.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// playgroundTestSRI is computed here independently of subresourceIntegrity, so that a wrong hash in the
// handler cannot agree with itself.
func playgroundTestSRI(body string) string {
	h := sha512.New384()
	io.WriteString(h, body)
	return "sha384-" + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// newTestPlayground returns the handler and what it logged while being built.
func newTestPlayground(t *testing.T, assetsDir string) (http.Handler, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	return NewHandler("/query", assetsDir, logger), &logs
}

func playgroundGet(t *testing.T, h http.Handler, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// playgroundPageHTML fetches the Playground page as a browser lands on it after the first redirect, with
// HTML entities decoded (html/template writes '+' in attributes as &#43;).
func playgroundPageHTML(t *testing.T, h http.Handler) string {
	t.Helper()
	resp := playgroundGet(t, h, "/?query=%7B__typename%7D", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /?query=...: status %d, want 200; body:\n%s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("page Content-Type = %q, want text/html", ct)
	}
	return html.UnescapeString(string(body))
}

func playgroundLogLines(logs *bytes.Buffer) []string {
	return strings.Split(strings.TrimSpace(logs.String()), "\n")
}

func TestPlaygroundOpensWithTheExampleQuery(t *testing.T) {
	h, _ := newTestPlayground(t, "")

	resp := playgroundGet(t, h, "/", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /: status %d, want 302 to the page with the example query", resp.StatusCode)
	}
	location := resp.Header.Get("Location")
	target, err := url.Parse(location)
	if err != nil || target.Path != "" || target.Host != "" {
		t.Fatalf("GET /: Location %q, want a relative ?query=... (so that it works under a proxy's path)", location)
	}
	if got := target.Query().Get("query"); got != playgroundExampleQuery {
		t.Errorf("GET /: the redirect's query is\n%s\nwant the example query\n%s", got, playgroundExampleQuery)
	}

	page := playgroundPageHTML(t, h)
	// gqlgen's page with PersistStateInURL passes the URL's query to GraphiQL as its starting query.
	for _, want := range []string{"query: parameters.query", "new URLSearchParams(window.location.search)", "oceangraph:", "<title>oceangraph</title>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The endpoint is relative to the page's own host, so the page works on any address.
	if !strings.Contains(page, `location.host + "/query"`) {
		t.Errorf("page does not send queries to this host's /query")
	}
}

func TestPlaygroundExampleQueryIsAValidDocument(t *testing.T) {
	doc, err := gqlparser.ParseQuery(&ast.Source{Input: playgroundExampleQuery})
	if err != nil {
		t.Fatalf("example query does not parse: %v", err)
	}
	if len(doc.Operations) != 1 || doc.Operations[0].Name == "" {
		t.Errorf("example query has %d operations, want one named operation (GraphiQL then runs it without asking which)", len(doc.Operations))
	}
}

func TestPlaygroundUsesLocalAssetsWithTheirSRI(t *testing.T) {
	dir := writeFakePlaygroundAssets(t, nil)
	h, logs := newTestPlayground(t, dir)
	page := playgroundPageHTML(t, h)

	for role, file := range fakePlaygroundAssets {
		src := AssetsPath + file.path
		if !strings.Contains(page, `"`+src+`"`) {
			t.Errorf("%s: page does not reference the local %s", role, src)
		}
		if want := `integrity="` + playgroundTestSRI(file.body) + `"`; !strings.Contains(page, want) {
			t.Errorf("%s: page lacks %s, the hash of the served file", role, want)
		}
	}
	if strings.Contains(page, "cdn.jsdelivr.net/npm/graphiql") || strings.Contains(page, "cdn.jsdelivr.net/npm/react") {
		t.Errorf("page still loads GraphiQL or React from the CDN although local assets exist")
	}
	if lines := playgroundLogLines(logs); len(lines) != 1 || !strings.Contains(lines[0], "locally") || !strings.Contains(lines[0], dir) {
		t.Errorf("start-up log = %q, want one line saying the assets are served locally from %s", logs.String(), dir)
	}
}

func TestPlaygroundFallsBackToTheCDN(t *testing.T) {
	cases := []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"no folder configured", func(t *testing.T) string { return "" }},
		{"folder absent", func(t *testing.T) string { return filepath.Join(t.TempDir(), "dist") }},
		{"folder without manifest", func(t *testing.T) string { return t.TempDir() }},
		{"a file missing", func(t *testing.T) string {
			dir := writeFakePlaygroundAssets(t, nil)
			if err := os.Remove(filepath.Join(dir, "react@18.2.0", "umd", "react.production.min.js")); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"a role missing from the manifest", func(t *testing.T) string {
			return writeFakePlaygroundAssets(t, func(m map[string]playgroundManifestEntry) { delete(m, "graphiqlCss") })
		}},
		{"a file changed after the build", func(t *testing.T) string {
			return writeFakePlaygroundAssets(t, func(m map[string]playgroundManifestEntry) {
				e := m["graphiqlJs"]
				e.Integrity = playgroundTestSRI("something else")
				m["graphiqlJs"] = e
			})
		}},
		{"a path leaving the folder", func(t *testing.T) string {
			return writeFakePlaygroundAssets(t, func(m map[string]playgroundManifestEntry) {
				e := m["reactJs"]
				e.Path = "../react.production.min.js"
				m["reactJs"] = e
			})
		}},
		{"a file that is no script", func(t *testing.T) string {
			return writeFakePlaygroundAssets(t, func(m map[string]playgroundManifestEntry) {
				m["reactJs"] = m["graphiqlCss"]
				e := m["reactJs"]
				e.Path = "assets.json"
				m["reactJs"] = e
			})
		}},
	}
	defaults := playgroundPageHTML(t, gqlplayground.Handler("oceangraph", "/query"))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, logs := newTestPlayground(t, tc.dir(t))
			page := playgroundPageHTML(t, h)
			for _, cdn := range []string{"https://cdn.jsdelivr.net/npm/graphiql@", "https://cdn.jsdelivr.net/npm/react@", "https://cdn.jsdelivr.net/npm/react-dom@"} {
				if !strings.Contains(page, cdn) {
					t.Errorf("page lacks the CDN asset %s...", cdn)
				}
			}
			if strings.Contains(page, AssetsPath) {
				t.Errorf("page references local assets although they are unusable")
			}
			if !strings.Contains(defaults, "sha256-hnImuor1znlJkD/FOTL3jayfS/xsyNoP04abi8bFJWs=") || !strings.Contains(page, "sha256-hnImuor1znlJkD/FOTL3jayfS/xsyNoP04abi8bFJWs=") {
				t.Errorf("the CDN fallback does not carry gqlgen's own SRI for graphiql.min.js")
			}
			if lines := playgroundLogLines(logs); len(lines) != 1 || !strings.Contains(lines[0], "CDN") || !strings.Contains(lines[0], "level=WARN") {
				t.Errorf("start-up log = %q, want one warning saying the page loads from the CDN", logs.String())
			}
			if resp := playgroundGet(t, h, AssetsPath+fakePlaygroundAssets["graphiqlJs"].path, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("asset URL answered %d without local assets, want 404", resp.StatusCode)
			}
		})
	}
}

func TestPlaygroundAssetsAreServed(t *testing.T) {
	h, _ := newTestPlayground(t, writeFakePlaygroundAssets(t, nil))
	cases := []struct {
		role        string
		contentType string
	}{
		{"graphiqlJs", "text/javascript; charset=utf-8"},
		{"graphiqlCss", "text/css; charset=utf-8"},
		{"reactJs", "text/javascript; charset=utf-8"},
		{"reactDomJs", "text/javascript; charset=utf-8"},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			file := fakePlaygroundAssets[tc.role]
			resp := playgroundGet(t, h, AssetsPath+file.path, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != file.body {
				t.Fatalf("GET %s: status %d body %q, want 200 %q", file.path, resp.StatusCode, body, file.body)
			}
			want := http.Header{
				"Content-Type":           {tc.contentType},
				"Cache-Control":          {"public, max-age=31536000, immutable"},
				"X-Content-Type-Options": {"nosniff"},
				"Etag":                   {`"` + playgroundTestSRI(file.body) + `"`},
			}
			for name, values := range want {
				if got := resp.Header.Get(name); got != values[0] {
					t.Errorf("GET %s: %s = %q, want %q", file.path, name, got, values[0])
				}
			}

			again := playgroundGet(t, h, AssetsPath+file.path, http.Header{"If-None-Match": {resp.Header.Get("Etag")}})
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("GET %s with its ETag: status %d, want 304", file.path, again.StatusCode)
			}

			zipped := playgroundGet(t, h, AssetsPath+file.path, http.Header{"Accept-Encoding": {"br, gzip, deflate"}})
			if got := zipped.Header.Get("Content-Encoding"); got != "gzip" {
				t.Fatalf("GET %s accepting gzip: Content-Encoding %q, want gzip", file.path, got)
			}
			zr, err := gzip.NewReader(zipped.Body)
			if err != nil {
				t.Fatalf("GET %s accepting gzip: body is not gzip: %v", file.path, err)
			}
			if unzipped, _ := io.ReadAll(zr); string(unzipped) != file.body {
				t.Errorf("GET %s accepting gzip: body unzips to %q, want %q", file.path, unzipped, file.body)
			}
			if zipped.Header.Get("Etag") == resp.Header.Get("Etag") || zipped.Header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("GET %s: the gzip and identity answers share ETag %q or lack Vary (got %q)", file.path, zipped.Header.Get("Etag"), zipped.Header.Get("Vary"))
			}
			refused := playgroundGet(t, h, AssetsPath+file.path, http.Header{"Accept-Encoding": {"gzip;q=0"}})
			if got := refused.Header.Get("Content-Encoding"); got != "" {
				t.Errorf("GET %s with gzip;q=0: Content-Encoding %q, want none", file.path, got)
			}
		})
	}

	for _, target := range []string{AssetsPath + "assets.json", AssetsPath + "graphiql@4.1.2/", AssetsPath + "graphiql@4.1.2/graphiql.js", "/nothing-here"} {
		if resp := playgroundGet(t, h, target, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404 (only the Playground's assets are served)", target, resp.StatusCode)
		}
	}
}

// The build step's pins must be the files gqlgen's template was written for: same versions, same
// bytes (gqlgen's CDN SRI is the sha256 the build step checks).
func TestPlaygroundPinnedAssetsAreGqlgensVersions(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("web", "assets.lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages []struct {
			Name, Version string
			Files         map[string]struct{ Path, SHA256 string }
		}
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		t.Fatalf("web/assets.lock.json: %v", err)
	}
	defaults := playgroundPageHTML(t, gqlplayground.Handler("oceangraph", "/query"))
	seen := map[string]bool{}
	for _, pkg := range lock.Packages {
		for role, file := range pkg.Files {
			seen[role] = true
			cdn := "https://cdn.jsdelivr.net/npm/" + pkg.Name + "@" + pkg.Version + "/" + file.Path
			if !strings.Contains(defaults, `"`+cdn+`"`) {
				t.Errorf("%s: gqlgen's page does not load %s; update web/assets.lock.json to the versions gqlgen expects", role, cdn)
			}
			if !strings.Contains(defaults, `integrity="`+file.SHA256+`"`) {
				t.Errorf("%s: pinned %s is not gqlgen's SRI for %s", role, file.SHA256, cdn)
			}
		}
	}
	for _, role := range playgroundAssetRoles {
		if !seen[role] {
			t.Errorf("web/assets.lock.json does not pin %s, which the page needs", role)
		}
	}
}

func TestPlaygroundAssetsAreBuiltOnceWhenMissing(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	built := writeFakePlaygroundAssets(t, nil)
	dir := filepath.Join(t.TempDir(), "dist")
	var calls [][]string
	fakeBuild := func(_ context.Context, name string, args ...string) ([]byte, error) {
		calls = append(calls, append([]string{name}, args...))
		return nil, os.CopyFS(dir, os.DirFS(built))
	}

	BuildAssets(context.Background(), dir, logger, fakeBuild)
	if len(calls) != 1 || strings.Join(calls[0], " ") != "node "+playgroundBuildScript+" "+dir {
		t.Fatalf("build step ran as %q, want once as node %s %s", calls, playgroundBuildScript, dir)
	}
	if _, err := loadPlaygroundAssets(dir); err != nil {
		t.Fatalf("after the build the assets do not load: %v", err)
	}
	BuildAssets(context.Background(), dir, logger, fakeBuild)
	if len(calls) != 1 {
		t.Errorf("with the assets built, the build step ran again: %q", calls)
	}
}

func TestPlaygroundAssetsBuildFailureFallsBackToTheCDN(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	dir := filepath.Join(t.TempDir(), "dist")
	BuildAssets(context.Background(), dir, logger, func(context.Context, string, ...string) ([]byte, error) {
		return []byte("npm error network\n"), errors.New("exit status 1")
	})
	if !strings.Contains(logs.String(), "building its assets failed") || !strings.Contains(logs.String(), "npm error network") {
		t.Errorf("log %q, want the failure and the build's output", logs.String())
	}
	h, _ := newTestPlayground(t, dir)
	if page := playgroundPageHTML(t, h); strings.Contains(page, AssetsPath) {
		t.Errorf("with no assets built the page still points at local assets")
	}
}
