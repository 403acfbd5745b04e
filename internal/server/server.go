// Package server is the HTTP platform around the GraphQL core: it reads the
// configuration, wires the routes (listed once, in routes) with their guards
// and telemetry, serves them, and shuts down gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/trace"

	"github.com/oceangraph/oceangraph/graph"
	"github.com/oceangraph/oceangraph/internal/httpguard"
	"github.com/oceangraph/oceangraph/internal/playground"
	"github.com/oceangraph/oceangraph/internal/telemetry"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// NewLogger logs to stderr in format (text or json), each line made with a
// request's context carrying its request id. Lines are written together a
// few milliseconds after the first of them (telemetry.LogWriter), warnings
// and errors at once; flush writes what is held (call it before exiting).
func NewLogger(format string) (logger *slog.Logger, flush func()) {
	w := telemetry.NewLogWriter(os.Stderr, logDelay)
	var h slog.Handler = slog.NewTextHandler(w, nil)
	if format == "json" {
		h = slog.NewJSONHandler(w, nil)
	}
	return slog.New(telemetry.WithRequestIDs(telemetry.FlushAt(slog.LevelWarn, w, h))), func() { w.Close() }
}

// logDelay is how long a log line may wait for others to be written with it.
const logDelay = 5 * time.Millisecond

// Run serves until ctx is done, then lets in-flight requests finish. ready,
// when set, is told the address once the server accepts connections.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, ready func(addr string)) error {
	return run(ctx, cfg, options{logger: logger, ready: ready})
}

// options are what a run takes besides its Config; tests set the tracer provider.
type options struct {
	logger *slog.Logger
	ready  func(addr string)
	tp     trace.TracerProvider // nil: from Config.OTLPEndpoint
}

func run(ctx context.Context, cfg Config, o options) error {
	logger := o.logger
	if cfg.APIURL == "" {
		sb, err := startSandbox(cfg.ListenHost)
		if err != nil {
			return fmt.Errorf("start the built-in sandbox: %w", err)
		}
		defer sb.Close()
		cfg.APIURL = sb.URL
		if cfg.Token == "" {
			cfg.Token = sandbox.DemoToken
		}
		logger.Info("no DIGITALOCEAN_API_URL set: serving the built-in sandbox (demo data, not your account)", "sandbox", cfg.APIURL)
	} else if cfg.PublicURL == "" {
		logger.Warn("PUBLIC_URL is not set: file links are built on each request's Host header, which the caller chooses; set PUBLIC_URL=https://<this server's host>")
	}
	tp := o.tp
	if tp == nil {
		provider, stopTracing, err := telemetry.NewTracerProvider(ctx, cfg.OTLPEndpoint)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stopTracing(sctx) // flush the last spans
		}()
		tp = provider
	}
	var shuttingDown atomic.Bool
	handler, closeHandler, err := newHandler(cfg, logger, tp, &shuttingDown)
	if err != nil {
		return err
	}
	defer closeHandler()
	// Every request's context descends from requests, so that those still
	// running at the shutdown deadline can be ended with a coded answer.
	requests, endRequests := context.WithCancelCause(context.Background())
	defer endRequests(nil)
	srv := &http.Server{
		Handler:           handler,
		BaseContext:       func(net.Listener) context.Context { return requests },
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	logger.Info("oceangraph listening", "playground", "http://"+ln.Addr().String()+"/", "graphql", "http://"+ln.Addr().String()+"/query")
	if o.ready != nil {
		o.ready(ln.Addr().String())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Readiness flips first, and the listener stays open for the drain, so
	// that a load balancer sees 503 and stops sending before anything is refused.
	shuttingDown.Store(true)
	logger.Info("shutting down: /readyz answers 503; draining, then letting in-flight requests finish", "drain", cfg.ShutdownDrain, "timeout", cfg.ShutdownTimeout)
	select {
	case <-time.After(cfg.ShutdownDrain):
	case err := <-served:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running: each answers SHUTTING_DOWN once its context
		// ends; they get a moment to write that before the connections close.
		logger.Warn("shutdown timeout reached: ending the requests still running", "timeout", cfg.ShutdownTimeout)
		endRequests(graph.ErrShuttingDown)
		gctx, gcancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer gcancel()
		if err := srv.Shutdown(gctx); err != nil {
			srv.Close()
		}
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdownGrace is how long requests ended at the shutdown deadline have to
// write their SHUTTING_DOWN answer.
const shutdownGrace = 2 * time.Second

// newHandler is every route of the server behind its telemetry, over the
// upstream at cfg.APIURL.
func newHandler(cfg Config, logger *slog.Logger, tp trace.TracerProvider, shuttingDown *atomic.Bool) (http.Handler, func(), error) {
	obs := telemetry.New(logger, tp)
	st, closeShared, err := openSharedState(cfg.Shared, logger, obs.Registerer())
	if err != nil {
		return nil, nil, err
	}
	client, err := upstream.New(upstream.Config{
		BaseURL:    cfg.APIURL,
		Token:      cfg.Token,
		MaxRetries: cfg.UpstreamRetries,
		Timeout:    cfg.UpstreamTimeout,
		// graph's observer feeds each response's extensions.rateLimit from the newest upstream answer.
		Observe: func(ctx context.Context, c upstream.Call) {
			graph.ObserveUpstream(ctx, c)
			obs.ObserveUpstream(ctx, c)
		},
	})
	if err != nil {
		closeShared()
		return nil, nil, err
	}
	links, err := graph.NewFileLinks(cfg.FileLinkKey, cfg.FileLinkTTL)
	if err != nil {
		closeShared()
		return nil, nil, fmt.Errorf("file links: %w", err)
	}
	query := graph.NewHandler(graph.Config{
		Client:         client,
		DefaultToken:   cfg.Token,
		MaxConcurrency: cfg.MaxConcurrency,
		Naive:          cfg.Naive,
		Introspection:  cfg.Introspection,
		PublicURL:      cfg.PublicURL,
		TrustedProxies: cfg.TrustedProxies,
		Links:          links,
		// The whole of a file behind filename, byteSize and base64, not each silence.
		FileTimeout:           cfg.UpstreamTimeout,
		MaxBase64FileBytes:    cfg.MaxBase64FileBytes,
		MaxBase64RequestBytes: cfg.MaxBase64RequestBytes,
		MaxBase64ProcessBytes: cfg.MaxBase64ProcessBytes,
		MaxUpstreamBytes:      cfg.MaxUpstreamBytes,
		AllowOrigin:           cfg.CORSOrigins.Allows,
		Logger:                logger,
		Guards:                cfg.Guards,
		Extensions:            []graphql.HandlerExtension{graph.NewTelemetry(tp)},
		Shared:                st,
	})
	downloads := graph.NewDownloads(client, links, cfg.Token, st, logger)
	cors := httpguard.CORS(cfg.CORSOrigins)
	page := playground.NewHandler("/query", cfg.AssetsDir, logger)

	mux := http.NewServeMux()
	for _, r := range []struct {
		pattern string
		handler http.Handler
	}{
		{"/query", httpguard.Query(cfg.CORSOrigins, cfg.MaxBodyBytes, query)},
		{"GET /invoices/{uuid}/{format}", cors(http.HandlerFunc(downloads.InvoiceFile))},
		{"GET /files/{link}", cors(http.HandlerFunc(downloads.Link))},
		{"GET /files/{link}/{name}", cors(http.HandlerFunc(downloads.Link))},
		// Any other method, and anything else under /files/: the downloads' JSON 405 or 404.
		{"/invoices/{uuid}/{format}", cors(http.HandlerFunc(downloads.Refuse))},
		{"/files/", cors(http.HandlerFunc(downloads.Refuse))},
		{"GET /metrics", obs.MetricsHandler()},
		{"GET /{$}", page},
		{"GET " + playground.AssetsPath + "{path...}", page},
		{"GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok\n"))
		})},
		{"GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if shuttingDown.Load() {
				http.Error(w, "shutting down", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ready\n"))
		})},
	} {
		mux.Handle(r.pattern, obs.Route(r.pattern, r.handler))
	}
	return obs.Middleware(mux), closeShared, nil
}

// sandboxServer is the built-in sandbox on a loopback port of its own, so the
// client speaks real HTTP to it exactly as it would to DigitalOcean.
type sandboxServer struct {
	URL string
	srv *http.Server
}

func (s *sandboxServer) Close() { s.srv.Close() }

func startSandbox(host string) (*sandboxServer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(loopbackOr(host), "0"))
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: sandbox.New(sandbox.Options{}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &sandboxServer{URL: "http://" + ln.Addr().String(), srv: srv}, nil
}

// loopbackOr keeps the in-process sandbox on loopback whatever the public host.
func loopbackOr(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return host
	}
	return "127.0.0.1"
}
