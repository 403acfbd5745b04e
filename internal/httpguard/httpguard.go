// Package httpguard holds the browser-facing guards of /query and the
// downloads: CORS, CSRF prevention as Apollo Server does it, and a bound on
// the request body.
package httpguard

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/cors"

	"github.com/oceangraph/oceangraph/graph"
)

// corsMaxAge is how long a browser may cache a preflight answer. Ten minutes
// keeps preflights rare while letting a changed origin list take effect soon.
const corsMaxAge = 10 * time.Minute

// DefaultMaxBodyBytes bounds a /query request body: far above any real query
// (the dashboard is about 1 KiB) and far below what could hurt memory.
const DefaultMaxBodyBytes = 1 << 20

// DevOrigins are the origins allowed by default with the built-in sandbox, so
// that a frontend dev server (Vite, Next, ...) on this machine works with no
// setup. With a real DigitalOcean URL the default is no origin at all.
const DevOrigins = "http://localhost:*,http://127.0.0.1:*,http://[::1]:*"

// csrfRefusal is Apollo Server's message, so that clients see the same advice.
const csrfRefusal = "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). " +
	"Please either specify a 'content-type' header (with a type that is not one of " +
	"application/x-www-form-urlencoded, multipart/form-data, text/plain) or provide a non-empty " +
	"value for one of the following headers: x-apollo-operation-name, apollo-require-preflight"

// originPattern is one entry of CORS_ALLOWED_ORIGINS: an exact origin
// (https://app.example.com), any port of a host (http://localhost:*), any
// subdomain (https://*.example.com), or "*" for every origin.
type originPattern struct {
	any       bool
	scheme    string
	host      string // lower case; without the "*." when subdomains is set
	subdomain bool
	port      string // "" for the scheme's default, "*" for any
}

// Origins is the parsed CORS_ALLOWED_ORIGINS; empty allows no origin.
type Origins []originPattern

// ParseOrigins reads a comma-separated list of origin patterns.
func ParseOrigins(raw string) (Origins, error) {
	var list Origins
	for _, entry := range strings.Split(raw, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if entry == "*" {
			list = append(list, originPattern{any: true})
			continue
		}
		p, err := parseOriginPattern(entry)
		if err != nil {
			return nil, fmt.Errorf("origin %q: %w", entry, err)
		}
		list = append(list, p)
	}
	return list, nil
}

func parseOriginPattern(entry string) (originPattern, error) {
	scheme, rest, ok := strings.Cut(entry, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return originPattern{}, fmt.Errorf("want scheme://host[:port], e.g. https://app.example.com")
	}
	if strings.ContainsAny(rest, "/?#@") {
		return originPattern{}, fmt.Errorf("an origin has no path, query or user: want scheme://host[:port]")
	}
	p := originPattern{scheme: scheme}
	host, port := rest, ""
	if h, pt, err := net.SplitHostPort(rest); err == nil {
		host, port = h, pt
	} else if strings.HasSuffix(rest, ":*") {
		host, port = strings.TrimSuffix(rest, ":*"), "*"
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if port != "" && port != "*" && !isDigits(port) {
		return originPattern{}, fmt.Errorf("port %q: want digits or *", port)
	}
	if port == defaultPort(scheme) {
		port = ""
	}
	p.port = port
	if strings.HasPrefix(host, "*.") {
		p.subdomain, host = true, host[2:]
	}
	if host == "" || strings.Contains(host, "*") {
		return originPattern{}, fmt.Errorf("want one host; * is allowed only as the whole port or a leading *. subdomain")
	}
	p.host = strings.ToLower(host)
	return p, nil
}

// allows reports whether the request's Origin header matches the pattern.
func (p originPattern) allows(scheme, host, port string) bool {
	if p.any {
		return true
	}
	if scheme != p.scheme || (p.port != "*" && p.port != port) {
		return false
	}
	if p.subdomain {
		return strings.HasSuffix(host, "."+p.host)
	}
	return host == p.host
}

// Allows reports whether origin (as a browser sends it) is listed.
func (l Origins) Allows(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil || u.RawQuery != "" {
		return false
	}
	port := u.Port()
	if port == defaultPort(u.Scheme) {
		port = ""
	}
	host := strings.ToLower(u.Hostname())
	for _, p := range l {
		if p.allows(u.Scheme, host, port) {
			return true
		}
	}
	return false
}

// anyOrigin reports whether the list is the single wildcard "*".
func (l Origins) anyOrigin() bool {
	for _, p := range l {
		if p.any {
			return true
		}
	}
	return false
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// CORS answers CORS for the listed origins: preflights are cached for
// corsMaxAge, credentials are allowed for listed origins (but never with "*"),
// and a request from an unlisted origin gets no CORS header at all, so the
// browser keeps the response from the page. An empty list turns CORS off.
func CORS(origins Origins) func(http.Handler) http.Handler {
	if len(origins) == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	c := cors.New(cors.Options{
		AllowOriginFunc:  origins.Allows,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Accept", "X-Request-Id", "Apollo-Require-Preflight", "X-Apollo-Operation-Name", "Apollographql-Client-Name", "Apollographql-Client-Version", "Traceparent", "Tracestate"},
		ExposedHeaders:   []string{"X-Request-Id", "Retry-After"},
		AllowCredentials: !origins.anyOrigin(),
		MaxAge:           int(corsMaxAge / time.Second),
	})
	return c.Handler
}

// simpleContentTypes are the types an HTML form (or a no-preflight fetch) can send.
var simpleContentTypes = map[string]bool{
	"application/x-www-form-urlencoded": true,
	"multipart/form-data":               true,
	"text/plain":                        true,
}

// preventCSRF refuses, as Apollo Server does, a request that a browser would
// send cross-site without a preflight: one with no content type or a form's
// content type (every GET, and a POST from a plain HTML form) must carry a
// non-empty x-apollo-operation-name or apollo-require-preflight header, which
// no simple request can. A bearer token is such a header too: a page must set
// Authorization itself, which forces a preflight, and the request runs on that
// token, not on the server's DIGITALOCEAN_TOKEN (only Bearer: a browser
// attaches cached Basic credentials on its own). OPTIONS is left to CORS. A
// WebSocket handshake is let through: no page can set its headers either, and
// the GraphQL handler checks its Origin against the same allow-list as CORS.
func preventCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions || !mayBeSimpleRequest(r) || hasBearerToken(r) || isWebSocketHandshake(r) ||
			r.Header.Get("X-Apollo-Operation-Name") != "" || r.Header.Get("Apollo-Require-Preflight") != "" {
			next.ServeHTTP(w, r)
			return
		}
		graph.WriteRefusal(w, http.StatusBadRequest, graph.CodeBadRequest, csrfRefusal)
	})
}

// isWebSocketHandshake reports whether r opens a WebSocket.
func isWebSocketHandshake(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") && r.Header.Get("Sec-WebSocket-Key") != ""
}

// hasBearerToken reports whether r carries Authorization: Bearer <something>.
func hasBearerToken(r *http.Request) bool {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	return strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(token) != ""
}

// mayBeSimpleRequest reports whether r's content type could come from a
// request a browser sends without a preflight. The essence is parsed as
// leniently as browsers do ("text/plain;garbage" is still text/plain).
func mayBeSimpleRequest(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if strings.TrimSpace(ct) == "" {
		return true
	}
	essence, _, _ := strings.Cut(ct, ";")
	return simpleContentTypes[strings.ToLower(strings.TrimSpace(essence))]
}

// limitBody refuses a request body over max bytes with 413 and a GraphQL
// error, before the GraphQL handler reads any of it. Bodies are small, so the
// accepted body is read here and handed on from memory.
func limitBody(max int64, next http.Handler) http.Handler {
	tooLarge := fmt.Sprintf("the request body exceeds the limit of %d bytes", max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > max {
			graph.WriteRefusal(w, http.StatusRequestEntityTooLarge, graph.CodeRequestBodyTooLarge, tooLarge)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
		r.Body.Close()
		switch {
		case err != nil:
			graph.WriteRefusal(w, http.StatusBadRequest, graph.CodeBadRequest, "the request body could not be read")
			return
		case int64(len(body)) > max:
			graph.WriteRefusal(w, http.StatusRequestEntityTooLarge, graph.CodeRequestBodyTooLarge, tooLarge)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// Query wraps the GraphQL handler in the browser guards. CORS is
// outermost, so a refusal still carries the CORS headers a listed frontend
// needs to read it.
func Query(origins Origins, maxBodyBytes int64, next http.Handler) http.Handler {
	return CORS(origins)(preventCSRF(limitBody(maxBodyBytes, next)))
}
