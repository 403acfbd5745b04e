package graph

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oceangraph/oceangraph/graph/generated"
	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/upstream"
)

// DefaultMaxUpstreamBytes bounds the DigitalOcean JSON one request holds when
// Config.MaxUpstreamBytes is 0: 16 bodies at the client's per-body bound, far
// above the dashboard's few hundred kilobytes.
const DefaultMaxUpstreamBytes = 32 << 20

// DefaultMaxConcurrency bounds a request's concurrent upstream calls when
// Config.MaxConcurrency is 0.
const DefaultMaxConcurrency = 8

// Config is what NewHandler needs, read once at start-up.
type Config struct {
	// Client calls DigitalOcean. Set its upstream.Config.Observe to (or chain
	// it with) ObserveUpstream so that responses carry extensions.rateLimit.
	Client *upstream.Client
	// DefaultToken is used when a request carries no Authorization header.
	DefaultToken string
	// MaxConcurrency bounds each request's concurrent upstream calls; default 8.
	MaxConcurrency int
	// Naive switches off what this server exists for, to measure its worth
	// side by side (bench/): no loader cache, so no de-duplication or priming,
	// and one upstream call at a time. Never for production.
	Naive bool
	// Introspection enables __schema and __type (_service { sdl } always works).
	Introspection bool
	// PublicURL is this server's absolute base URL for file links; when empty it
	// is derived from each request (its Host, or what a trusted proxy forwarded).
	PublicURL string
	// TrustedProxies are the peers whose Forwarded and X-Forwarded-Proto/Host
	// headers say how the caller reached this server; from anyone else they
	// are ignored. Empty: trust none.
	TrustedProxies []netip.Prefix
	// Links signs InvoiceFile.url links (graph/filelinks.go).
	Links *FileLinks
	// FileTimeout bounds the whole download behind InvoiceFile.filename,
	// byteSize and base64 (0: defaultFileTimeout).
	FileTimeout time.Duration
	// MaxBase64FileBytes is the largest file base64 serves (0: the default).
	MaxBase64FileBytes int64
	// MaxBase64RequestBytes bounds the base64 one request writes, every write
	// (alias) counted, reserved before anything runs (0: the default).
	MaxBase64RequestBytes int64
	// MaxBase64ProcessBytes bounds the base64 all requests in flight together
	// may write, reserved the same way (0: the default).
	MaxBase64ProcessBytes int64
	// MaxUpstreamBytes bounds the bytes of DigitalOcean JSON bodies one
	// request may hold (0: the default).
	MaxUpstreamBytes int64
	// Idempotency keeps mutations' first answers by idempotency key; default
	// shared.Idempotency on Shared.Store (so replicas sharing Redis share the
	// keys), else an in-memory store of this process.
	Idempotency IdempotencyStore
	// ActionPollInterval is the first wait between two polls of an action
	// watched by volumeActionProgress (it grows while nothing changes, up to
	// ten times as long); default 1 s.
	ActionPollInterval time.Duration
	// AllowOrigin is CORS's allow-list: a WebSocket opened by a page of an
	// origin it refuses (other than this server's own) is refused with 403.
	// nil allows only this server's own origin (and clients that send none).
	AllowOrigin func(origin string) bool
	// Logger receives internal errors and panics; default slog.Default().
	Logger *slog.Logger
	// Guards are the limits of the guards NewHandler installs (persisted
	// queries, depth, cost, upstream budget); a zero limit takes its default.
	Guards GuardLimits
	// Extensions are added to the GraphQL server after this package's own
	// (the guards): telemetry.
	Extensions []graphql.HandlerExtension
	// Shared is the state kept across requests and replicas (cache, persisted
	// queries, token rechecks, rate budget); nil: none (graph/sharedstate.go).
	Shared *SharedState
}

// Defaults of the guards' settings.
const (
	DefaultMaxComplexity    = 20000
	DefaultMaxDepth         = 12
	DefaultMaxUpstreamCalls = 60
	DefaultAPQCacheSize     = 1000
)

// GuardLimits are the guards' settings; a zero or negative limit takes its default.
type GuardLimits struct {
	// MaxComplexity bounds the operation's cost, in which a connection's
	// selection counts once per item of the requested page.
	MaxComplexity int
	// MaxDepth bounds how deeply fields nest (fragments add no depth;
	// introspection is left to gqlparser's own rule).
	MaxDepth int
	// MaxUpstreamCalls bounds the DigitalOcean calls one request may make, as
	// estimated from the operation before it runs.
	MaxUpstreamCalls int
	// APQCacheSize is how many persisted queries the LRU cache keeps.
	APQCacheSize int
}

func (l GuardLimits) withDefaults() GuardLimits {
	def := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	return GuardLimits{
		MaxComplexity:    def(l.MaxComplexity, DefaultMaxComplexity),
		MaxDepth:         def(l.MaxDepth, DefaultMaxDepth),
		MaxUpstreamCalls: def(l.MaxUpstreamCalls, DefaultMaxUpstreamCalls),
		APQCacheSize:     def(l.APQCacheSize, DefaultAPQCacheSize),
	}
}

// guards are the extensions that refuse an operation before any resolver
// runs, so that a refused query costs DigitalOcean nothing; in the order they
// run: persisted queries (before parsing), then, cheapest first, the depth
// (which also bounds what fragments expand to), cost and upstream-call limits.
func guards(l GuardLimits, st *SharedState) []graphql.HandlerExtension {
	l = l.withDefaults()
	apq := newAPQ(l.APQCacheSize)
	if st != nil && st.Store != nil {
		apq.Cache = shared.APQ{Store: st.Store}
	}
	return []graphql.HandlerExtension{
		apq,
		federationSDL{},
		depthLimit{max: l.MaxDepth},
		newComplexityLimit(l.MaxComplexity),
		upstreamBudget{max: l.MaxUpstreamCalls},
	}
}

// NewHandler returns the whole GraphQL HTTP handler: gqlgen's server with
// explicit transports and extensions, the one error presenter, and a
// middleware that gives each request its token and its own loaders.
func NewHandler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxConcurrency <= 0 {
		cfg.MaxConcurrency = DefaultMaxConcurrency
	}
	if cfg.Naive {
		cfg.MaxConcurrency = 1
	}
	if cfg.MaxUpstreamBytes <= 0 {
		cfg.MaxUpstreamBytes = DefaultMaxUpstreamBytes
	}
	limits := newBase64Limits(cfg.MaxBase64FileBytes, cfg.MaxBase64RequestBytes, cfg.MaxBase64ProcessBytes)
	cfg.MaxBase64FileBytes = limits.fileBytes
	if cfg.FileTimeout <= 0 {
		cfg.FileTimeout = defaultFileTimeout
	}
	// Tokens are named by a keyed hash (shared.TokenKey) wherever they are kept, idempotency records included.
	st := SharedState{}
	if cfg.Shared != nil {
		st = *cfg.Shared
	}
	if len(st.Secret) == 0 && st.Cache == nil {
		st.Secret = make([]byte, 32)
		rand.Read(st.Secret) // crypto/rand does not fail on supported platforms
	}
	cfg.Shared = &st
	if cfg.Idempotency == nil {
		if cfg.Shared.Store != nil {
			cfg.Idempotency = shared.Idempotency{Store: cfg.Shared.Store}
		} else {
			cfg.Idempotency = newMemoryIdempotency(defaultIdempotencyEntries)
		}
	}
	return &requestMiddleware{cfg: cfg, base64: limits, next: newServer(cfg, limits)}
}

// newServer is gqlgen's server for this schema: explicit transports, the
// extensions, the error presenter and the recover func. Further extensions
// (limits, APQ, telemetry) come in through Config.Extensions.
func newServer(cfg Config, base64 *base64Limits) *handler.Server {
	resolver := &Resolver{Client: cfg.Client, Links: cfg.Links, Logger: cfg.Logger, Idempotency: cfg.Idempotency}
	resolver.progress = newProgressHub(resolver.pollAction)
	if cfg.ActionPollInterval > 0 {
		resolver.progress.pollMin, resolver.progress.pollMax = cfg.ActionPollInterval, 10*cfg.ActionPollInterval
	}
	srv := handler.New(generated.NewExecutableSchema(generated.Config{
		Resolvers:  resolver,
		Complexity: complexityRoot(),
	}))
	srv.AddTransport(transport.Options{})
	for _, t := range streamTransports() {
		srv.AddTransport(t)
	}
	srv.AddTransport(transport.GET{})
	srv.AddTransport(postTransport{}) // transport.POST, writing the answer without re-encoding it (transport.go)
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(operationScopes{})
	srv.Use(queriesOnlyOverGet{})
	srv.Use(rateLimitExtension{})
	srv.Use(streamFailures{})
	srv.Use(rawVariables{})
	for _, ext := range append(guards(cfg.Guards, cfg.Shared), cfg.Extensions...) {
		srv.Use(ext)
	}
	srv.Use(&base64Guard{limits: base64})
	srv.Use(newCostExtension()) // after the upstream budget, whose estimate it reads
	srv.SetErrorPresenter(errorPresenter(cfg.Logger))
	srv.SetRecoverFunc(recoverFunc(cfg.Logger))
	return srv
}

// requestMiddleware puts a fresh requestScope into every request's context.
type requestMiddleware struct {
	cfg    Config
	base64 *base64Limits
	next   http.Handler
}

func (m *requestMiddleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if refuseRequest(w, r) {
		return
	}
	if isWebSocket(r) && !m.originAllowed(r) {
		WriteRefusal(w, http.StatusForbidden, codeForbiddenOrigin, "a page of this origin may not open a WebSocket to this API (CORS_ALLOWED_ORIGINS)")
		return
	}
	token, authErr := tokenOf(r, m.cfg.DefaultToken)
	s := newRequestScope(m.cfg, token, authErr)
	if s.baseURL == "" {
		s.baseURL, s.baseURLErr = baseURLOf(r, m.cfg.TrustedProxies)
	}
	s.baseURL = strings.TrimRight(s.baseURL, "/")
	switch {
	case isWebSocket(r):
		holdOpen(w)
		conn := s
		// The token may change in connection_init (wsInit), before any operation.
		s.operationContext = func(ctx context.Context) context.Context {
			op := newRequestScope(m.cfg, conn.token, conn.authErr)
			op.baseURL, op.baseURLErr = conn.baseURL, conn.baseURLErr
			return upstream.WithBodyBudget(withScope(ctx, op), upstream.NewBodyBudget(m.cfg.MaxUpstreamBytes))
		}
	case isEventStream(r):
		holdOpen(w)
	default:
		s.method = r.Method
	}
	ctx := upstream.WithBodyBudget(withScope(r.Context(), s), upstream.NewBodyBudget(m.cfg.MaxUpstreamBytes))
	// An answer may hold sealed file links: no cache may keep it (a GET could be cached).
	w.Header().Set("Cache-Control", "no-store")
	if s.method == "" {
		// A stream (WebSocket, SSE) writes, flushes and hijacks as it goes.
		m.next.ServeHTTP(w, r.WithContext(ctx))
		m.base64.release(s.base64Reserved.Load())
		return
	}
	aw := &answerWriter{ResponseWriter: w, scope: s}
	m.next.ServeHTTP(aw, r.WithContext(ctx))
	aw.finish()
	m.base64.release(s.base64Reserved.Load())
}

// codeMethodNotAllowed is the code of a request to /query with a method it does not serve.
const codeMethodNotAllowed = "METHOD_NOT_ALLOWED"

// allowedMethods are the methods of the transports newServer adds.
const allowedMethods = "GET, POST, OPTIONS"

// refuseRequest answers, with a coded GraphQL error, a request that gqlgen's
// transports would refuse with an uncoded one written past the error
// presenter: one no transport takes ("transport not supported", 400), or a GET
// whose query string, variables or extensions do not decode. It reports
// whether it answered.
func refuseRequest(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodOptions:
		w.Header().Set("Allow", allowedMethods)
		WriteRefusal(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "/query serves "+allowedMethods+", not "+r.Method)
	case r.Method == http.MethodOptions:
		return false
	case len(r.Header.Values("Authorization")) > 1:
		WriteRefusal(w, http.StatusBadRequest, CodeBadRequest, errTwoAuthorizations.Error())
	case r.Header.Get("Upgrade") != "" && !isWebSocket(r):
		WriteRefusal(w, http.StatusBadRequest, CodeBadRequest, "/query upgrades to WebSocket only (graphql-transport-ws); otherwise send the operation by GET or POST")
	case r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")):
		WriteRefusal(w, http.StatusUnsupportedMediaType, CodeBadRequest, "a POST to /query must have Content-Type: application/json")
	case r.Method == http.MethodGet:
		if msg := malformedGet(r); msg != "" {
			WriteRefusal(w, http.StatusBadRequest, CodeBadRequest, msg)
			return true
		}
		return false
	default:
		return false
	}
	return true
}

// malformedGet says what is wrong with a GET's query string where gqlgen's GET
// transport would refuse it; "" when it would not.
func malformedGet(r *http.Request) string {
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "the query string could not be decoded: " + err.Error()
	}
	for _, name := range []string{"variables", "extensions"} {
		var object map[string]any
		// Decode, not Unmarshal: the first JSON value decides, as in gqlgen.
		if v := query.Get(name); v != "" && json.NewDecoder(strings.NewReader(v)).Decode(&object) != nil {
			return "`" + name + "` must be a JSON object"
		}
	}
	return ""
}

// isJSON reports whether contentType is application/json, as gqlgen's POST transport reads it.
func isJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json"
}

// WriteRefusal answers with a GraphQL response holding one coded error and,
// the request not having been executed, no data entry.
func WriteRefusal(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(struct {
		Errors gqlerror.List `json:"errors"`
	}{gqlerror.List{{Message: message, Extensions: map[string]any{"code": code}}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// tokenOf reads the caller's DigitalOcean token: "Authorization: Bearer X";
// with no Authorization header the configured default. Anything else, or no
// token at all, is errUnauthenticated for every field that needs DigitalOcean.
func tokenOf(r *http.Request, defaultToken string) (string, error) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		if defaultToken == "" {
			return "", errUnauthenticated
		}
		return defaultToken, nil
	}
	return bearerToken(h)
}

// bearerToken reads "Bearer X" (a header, or a WebSocket's connection_init).
func bearerToken(h string) (string, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxTokenBytes {
		return "", errUnauthenticated
	}
	return token, nil
}

// maxTokenBytes bounds a bearer token: DigitalOcean's are under 100 bytes, and
// a file link cannot seal a longer one.
const maxTokenBytes = maxLinkToken

// errTwoAuthorizations: which one would be meant is anyone's guess, so neither is used.
var errTwoAuthorizations = errors.New("the request carries more than one Authorization header: send one")

// rateLimitValue is extensions.rateLimit: a struct rather than a map, one
// allocation instead of four, written as the map was (its keys in this order).
type rateLimitValue struct {
	Limit     int `json:"limit"`
	Remaining int `json:"remaining"`
	ResetAt   any `json:"resetAt"` // an RFC 3339 string, or null
}

// rateLimitExtension adds extensions.rateLimit { limit remaining resetAt } from
// the newest DigitalOcean response of the request to every response (null
// when the request made no upstream call).
type rateLimitExtension struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = rateLimitExtension{}

func (rateLimitExtension) ExtensionName() string                   { return "RateLimit" }
func (rateLimitExtension) Validate(graphql.ExecutableSchema) error { return nil }
func (rateLimitExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil {
		return nil
	}
	var value any
	if rl, ok := scopeFrom(ctx).newestRateLimit(); ok {
		v := &rateLimitValue{Limit: rl.Limit, Remaining: rl.Remaining}
		if !rl.Reset.IsZero() {
			v.ResetAt = rl.Reset.UTC().Format(time.RFC3339)
		}
		value = v
	}
	if resp.Extensions == nil {
		resp.Extensions = map[string]any{}
	}
	resp.Extensions["rateLimit"] = value
	return resp
}
