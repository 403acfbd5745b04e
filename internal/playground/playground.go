// Package playground serves GraphiQL (gqlgen's page) and, when they were
// built (web/build-assets.mjs), its JavaScript and CSS.
package playground

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"

	gqlplayground "github.com/99designs/gqlgen/graphql/playground"
)

// AssetsPath is the URL prefix under which this server serves the Playground's JavaScript
// and CSS, when they were built into the assets folder (node web/build-assets.mjs).
const AssetsPath = "/playground/assets/"

// playgroundExampleQuery is what the Playground opens with: it runs as is against the sandbox.
const playgroundExampleQuery = `# oceangraph: DigitalOcean billing and volumes
# as GraphQL. Run it with the play button or
# Ctrl-Enter; the book icon opens the docs.
query Overview {
  volumes(first: 3) {
    totalCount
    nodes {
      id
      name
      sizeGigabytes
      region {
        slug
      }
    }
  }
  invoices(first: 3) {
    totalCount
    nodes {
      uuid
      invoiceId
      period
      amount
    }
    preview {
      period
      amount
    }
  }
}
`

// playgroundAsset is one file of the Playground, read once at start so that the SRI hash in the
// page always describes the bytes served.
type playgroundAsset struct {
	path        string // relative to the assets folder, and to AssetsPath
	contentType string
	integrity   string // SRI sha384 of body
	body        []byte
	gzipped     []byte // body compressed once at start: GraphiQL's script shrinks from 1 MB to a third
}

// playgroundManifestEntry is one entry of the assets folder's assets.json, as web/build-assets.mjs
// writes it.
type playgroundManifestEntry struct {
	Path      string `json:"path"`
	Integrity string `json:"integrity"`
}

// playgroundAssetRoles are the manifest entries gqlgen's GraphiQL page needs; all or none are used,
// since they are versions made for one another.
var playgroundAssetRoles = []string{"graphiqlJs", "graphiqlCss", "reactJs", "reactDomJs"}

// NewHandler serves GraphiQL (gqlgen's playground page) at / for the GraphQL endpoint,
// and its assets at /playground/assets/ from assetsDir. When assetsDir does not hold a complete,
// intact build, the page loads the assets from gqlgen's CDN instead; either way one log line says
// which at start.
func NewHandler(endpoint string, assetsDir string, logger *slog.Logger) http.Handler {
	options := []gqlplayground.GraphiqlConfigOption{
		// Two gqlgen playgrounds on localhost:8080 would otherwise share saved tabs.
		gqlplayground.WithStoragePrefix("oceangraph:"),
		// The query in the URL is the page's starting query: that is how / opens with the example.
		gqlplayground.WithGraphiqlPersistStateInURL(true),
	}
	mux := http.NewServeMux()

	assets, err := loadPlaygroundAssets(assetsDir)
	if err != nil {
		logger.Warn("playground: local assets unavailable, the page loads GraphiQL from the CDN (build them with: node web/build-assets.mjs)",
			"dir", assetsDir, "reason", err.Error())
	} else {
		js, css, react, reactDOM := assets["graphiqlJs"], assets["graphiqlCss"], assets["reactJs"], assets["reactDomJs"]
		options = append(options,
			gqlplayground.WithGraphiqlVersion(AssetsPath+js.path, AssetsPath+css.path, js.integrity, css.integrity),
			gqlplayground.WithGraphiqlReactVersion(AssetsPath+react.path, AssetsPath+reactDOM.path, react.integrity, reactDOM.integrity),
		)
		byPath := make(map[string]playgroundAsset, len(assets))
		for _, asset := range assets {
			byPath[asset.path] = asset
		}
		mux.Handle("GET "+AssetsPath+"{path...}", playgroundAssetHandler(byPath))
		logger.Info("playground: serving GraphiQL's assets locally", "dir", assetsDir, "files", len(byPath))
	}

	mux.Handle("GET /{$}", playgroundPage(gqlplayground.Handler("oceangraph", endpoint, options...)))
	return mux
}

// playgroundPage sends a visitor of the bare page to the page with the example query in its URL
// (gqlgen's page reads its starting query from there); any other URL is GraphiQL's own state.
func playgroundPage(page http.Handler) http.Handler {
	start := "?" + url.Values{"query": {playgroundExampleQuery}}.Encode()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// no-cache: a new build's asset URLs and hashes show up on the next visit.
		w.Header().Set("Cache-Control", "no-cache")
		if r.URL.RawQuery == "" {
			// Relative, so that the redirect also works behind a proxy that mounts us under a path.
			w.Header().Set("Location", start)
			w.WriteHeader(http.StatusFound)
			return
		}
		page.ServeHTTP(w, r)
	})
}

// playgroundAssetHandler serves the loaded assets by path. Their URLs carry the package versions,
// so browsers may keep them for good.
func playgroundAssetHandler(byPath map[string]playgroundAsset) http.Handler {
	started := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asset, ok := byPath[r.PathValue("path")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", asset.contentType)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Vary", "Accept-Encoding")
		body, etag := asset.body, `"`+asset.integrity+`"`
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			w.Header().Set("Content-Encoding", "gzip")
			body, etag = asset.gzipped, `"`+asset.integrity+`+gzip"`
		}
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, asset.path, started, bytes.NewReader(body))
	})
}

// loadPlaygroundAssets reads the assets named by dir/assets.json, checking that each is there, is a
// script or a stylesheet, and still has the hash the build step recorded.
func loadPlaygroundAssets(dir string) (map[string]playgroundAsset, error) {
	if dir == "" {
		return nil, errors.New("no assets folder configured")
	}
	// os.Root keeps every read inside dir, whatever the manifest's paths or symlinks say.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	files := root.FS()

	raw, err := fs.ReadFile(files, "assets.json")
	if err != nil {
		return nil, err
	}
	var manifest map[string]playgroundManifestEntry
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("assets.json: %w", err)
	}

	assets := make(map[string]playgroundAsset, len(playgroundAssetRoles))
	for _, role := range playgroundAssetRoles {
		entry, ok := manifest[role]
		if !ok {
			return nil, fmt.Errorf("assets.json has no %q", role)
		}
		if !fs.ValidPath(entry.Path) || entry.Path == "." {
			return nil, fmt.Errorf("assets.json: %s: invalid path %q", role, entry.Path)
		}
		contentType, ok := playgroundContentTypes[path.Ext(entry.Path)]
		if !ok {
			return nil, fmt.Errorf("assets.json: %s: %q is neither a script nor a stylesheet", role, entry.Path)
		}
		body, err := fs.ReadFile(files, entry.Path)
		if err != nil {
			return nil, err
		}
		integrity := subresourceIntegrity(body)
		if integrity != entry.Integrity {
			return nil, fmt.Errorf("%s has hash %s, not the %s recorded by the build step", entry.Path, integrity, entry.Integrity)
		}
		gzipped, err := gzipBytes(body)
		if err != nil {
			return nil, fmt.Errorf("compress %s: %w", entry.Path, err)
		}
		assets[role] = playgroundAsset{path: entry.Path, contentType: contentType, integrity: integrity, body: body, gzipped: gzipped}
	}
	return assets, nil
}

// playgroundContentTypes are set explicitly rather than taken from the system's MIME table, which
// varies between machines and which browsers check for scripts (nosniff).
var playgroundContentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

// subresourceIntegrity is the SRI value (sha384, as the W3C spec recommends) a browser checks a
// <script> or <link> against.
func subresourceIntegrity(body []byte) string {
	sum := sha512.Sum384(body)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}

func gzipBytes(body []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// acceptsGzip reports whether an Accept-Encoding header value allows gzip (every browser sends
// it; a "gzip;q=0" refuses it).
func acceptsGzip(acceptEncoding string) bool {
	for _, part := range strings.Split(acceptEncoding, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// playgroundBuildScript is the build step that fetches the Playground's assets from npm (pinned, hash-checked).
const playgroundBuildScript = "web/build-assets.mjs"

// commandRunner runs a program and returns its combined output; tests replace it.
type commandRunner func(ctx context.Context, name string, args ...string) ([]byte, error)

func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// BuildAssets runs the build step once when assetsDir holds no intact build and the
// script and node are at hand, so that `go run .` in a fresh clone opens a Playground that works
// offline without a separate step. It only logs on failure: the page then falls back to the CDN.
// The server calls it with the built-in sandbox only: a production server never runs npm.
func BuildAssets(ctx context.Context, assetsDir string, logger *slog.Logger, run commandRunner) {
	if _, err := loadPlaygroundAssets(assetsDir); err == nil || assetsDir == "" {
		return
	}
	if _, err := os.Stat(playgroundBuildScript); err != nil {
		return // not run from a checkout
	}
	if _, err := exec.LookPath("node"); err != nil && run == nil {
		logger.Info("playground: node is not installed, so its assets cannot be built; the page will use the CDN")
		return
	}
	if run == nil {
		run = runCommand
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	logger.Info("playground: building its assets from npm once (node " + playgroundBuildScript + ")")
	if out, err := run(ctx, "node", playgroundBuildScript, assetsDir); err != nil {
		logger.Warn("playground: building its assets failed", "err", err.Error(), "output", lastLines(string(out), 5))
	}
}

// lastLines keeps the end of a command's output for a log line.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
