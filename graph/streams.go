package graph

// The long-lived side of /query: subscriptions over WebSocket (gqlgen's
// transport.Websocket: graphql-transport-ws, and the older graphql-ws) and
// Server-Sent Events (transport.SSE: graphql-sse's distinct connections), with
// the same token rules as a POST, and the GraphQL-over-HTTP rule that GET
// runs queries only.

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// streamKeepAlive keeps idle streams open through proxies that close silent
// connections (a minute is common); wsInitTimeout bounds a WebSocket that
// never says connection_init.
const (
	streamKeepAlive = 15 * time.Second
	wsInitTimeout   = 10 * time.Second
)

// codeForbiddenOrigin refuses a WebSocket opened by a page of an origin not
// allowed to call the API (HTTP 403).
const codeForbiddenOrigin = "FORBIDDEN_ORIGIN"

// streamTransports are the subscription transports, in the order gqlgen must
// try them: WebSocket (an Upgrade), then SSE (a POST that accepts
// text/event-stream), before the plain POST.
func streamTransports() []graphql.Transport {
	return []graphql.Transport{
		transport.Websocket{
			// requestMiddleware checked the origin against CORS's allow-list.
			Implementation:        transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: true}},
			InitFunc:              wsInit,
			InitTimeout:           wsInitTimeout,
			KeepAlivePingInterval: streamKeepAlive,
		},
		transport.SSE{KeepAlivePingInterval: streamKeepAlive},
	}
}

// isWebSocket reports whether r asks to become a WebSocket.
func isWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// isEventStream reports whether r asks for Server-Sent Events.
func isEventStream(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// originAllowed is the WebSocket's CheckOrigin: a browser always sends Origin,
// and CORS does not apply to WebSockets, so a page of another origin could
// otherwise open one with the user's cookies or the server's default token.
// Allowed: no Origin (not a browser), this server's own origin (the
// Playground), or one the CORS allow-list accepts.
func (m *requestMiddleware) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && sameHost(u.Host, r.Host) {
		return true
	}
	return m.cfg.AllowOrigin != nil && m.cfg.AllowOrigin(origin)
}

// sameHost compares two host[:port]s as browsers do (case-insensitive host).
func sameHost(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return strings.EqualFold(a, b)
	}
	return strings.EqualFold(ha, hb) && pa == pb
}

// holdOpen lifts the server's read and write timeouts from a stream: they
// bound a request, and a subscription lasts as long as its action.
func holdOpen(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
}

// wsInit takes the token from connection_init's payload ({"Authorization":
// "Bearer ..."}), which is where a browser, unable to set headers on a
// WebSocket, puts it; without one, the upgrade request's header (or the
// default token) stands.
func wsInit(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	if h := p.Authorization(); h != "" {
		s := scopeFrom(ctx)
		s.token, s.authErr = bearerToken(h)
	}
	return ctx, nil, nil
}

// operationScopes gives each operation of a WebSocket its own request scope
// (fresh loaders, slots and rate-limit record), as a POST has: a connection
// lives for long, and a cache kept over its operations would go stale.
type operationScopes struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = operationScopes{}

func (operationScopes) ExtensionName() string                   { return "OperationScopes" }
func (operationScopes) Validate(graphql.ExecutableSchema) error { return nil }

func (operationScopes) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if s := scopeFrom(ctx); s.operationContext != nil {
		ctx = s.operationContext(ctx)
	}
	return next(ctx)
}

// queriesOnlyOverGet refuses a mutation or subscription sent by GET (the
// GraphQL-over-HTTP rule: a link or a prefetch must never write) with HTTP
// 405 and `Allow: POST` (answerWriter), before gqlgen's own 406.
type queriesOnlyOverGet struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = queriesOnlyOverGet{}

func (queriesOnlyOverGet) ExtensionName() string                   { return "QueriesOnlyOverGet" }
func (queriesOnlyOverGet) Validate(graphql.ExecutableSchema) error { return nil }

func (queriesOnlyOverGet) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	s := scopeFrom(ctx)
	if s.method != http.MethodGet || opCtx.Operation == nil || opCtx.Operation.Operation == ast.Query {
		return nil
	}
	s.refuse(http.StatusMethodNotAllowed)
	return &gqlerror.Error{
		Message:    "GET runs queries only: send a " + string(opCtx.Operation.Operation) + " by POST",
		Extensions: map[string]any{"code": codeMethodNotAllowed},
	}
}
