// Command oceangraph serves a GraphQL API (and Apollo Federation 2 subgraph)
// in front of DigitalOcean's billing and block storage REST API.
//
//	go run .                                  # the server, on the built-in sandbox
//	go run . sandbox -addr 127.0.0.1:9090     # the sandbox alone, as an upstream for other programs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oceangraph/oceangraph/graph"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "sandbox" {
		if err := runSandbox(ctx, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "oceangraph sandbox:", err)
			os.Exit(2)
		}
		return
	}
	cfg, err := loadConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oceangraph:", err)
		os.Exit(2)
	}
	logger := newLogger(cfg.LogFormat)
	tuneGC()
	if cfg.APIURL == "" {
		// A developer's first `go run .`: make the Playground work offline (not done by run, so tests never fetch).
		buildPlaygroundAssets(ctx, cfg.AssetsDir, logger, nil)
	}
	if err := run(ctx, cfg, logger, nil); err != nil {
		logger.Error("server stopped", "err", err)
		os.Exit(1)
	}
}

// tuneGC trades memory for CPU unless the environment sets GOGC or
// GOMEMLIMIT: a request allocates ~250 KB that is garbage when it ends, and at
// Go's default GOGC=100 collecting it took a fifth of the server's CPU. With
// 400, volumes(first: 20) serves ~30% more requests a second for ~35 MB more
// RSS (bench/results.md); the soft limit keeps a burst from growing the heap
// without bound.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(192 << 20)
	}
}

func newLogger(format string) *slog.Logger {
	if format == "json" {
		return slog.New(withRequestIDs(slog.NewJSONHandler(os.Stderr, nil)))
	}
	return slog.New(withRequestIDs(slog.NewTextHandler(os.Stderr, nil)))
}

// run serves until ctx is done, then lets in-flight requests finish. ready,
// when set, is told the address once the server accepts connections.
func run(ctx context.Context, cfg config, logger *slog.Logger, ready func(addr string)) error {
	apiURL, defaultToken := cfg.APIURL, cfg.Token
	if apiURL == "" {
		sb, err := startSandbox(cfg.ListenHost)
		if err != nil {
			return fmt.Errorf("start the built-in sandbox: %w", err)
		}
		defer sb.Close()
		apiURL = sb.URL
		if defaultToken == "" {
			defaultToken = sandbox.DemoToken
		}
		logger.Info("no DIGITALOCEAN_API_URL set: serving the built-in sandbox (demo data, not your account)", "sandbox", apiURL)
	}
	tp, stopTracing, err := newTracerProvider(ctx, cfg.OTLPEndpoint)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopTracing(sctx) // flush the last spans
	}()
	obs := newObservability(logger, tp)
	client, err := upstream.New(upstream.Config{
		BaseURL:    apiURL,
		Token:      defaultToken,
		MaxRetries: cfg.UpstreamRetries,
		Timeout:    cfg.UpstreamTimeout,
		// Feeds each response's extensions.rateLimit from the newest upstream answer.
		Observe: chainObservers(graph.ObserveUpstream, obs.observeUpstream),
	})
	if err != nil {
		return err
	}
	links, err := graph.NewFileLinks(cfg.FileLinkKey, cfg.FileLinkTTL)
	if err != nil {
		return fmt.Errorf("file links: %w", err)
	}

	var shuttingDown atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/query", guardQuery(cfg.CORSOrigins, cfg.MaxBodyBytes, graph.NewHandler(graph.Config{
		Client:         client,
		DefaultToken:   defaultToken,
		MaxConcurrency: cfg.MaxConcurrency,
		Naive:          cfg.Naive,
		Introspection:  cfg.Introspection,
		PublicURL:      cfg.PublicURL,
		Links:          links,
		Logger:         logger,
		Extensions:     append(graph.Guards(cfg.Guards), obs.graphExtensions()...),
	})))
	mux.Handle("GET /metrics", obs.metricsHandler())
	downloads := newCORS(cfg.CORSOrigins)(graph.NewDownloadHandler(client, links, defaultToken, logger))
	mux.Handle("GET /invoices/{uuid}/{format}", downloads)
	mux.Handle("GET /files/", downloads)
	playground := newPlaygroundHandler("/query", cfg.AssetsDir, logger)
	mux.Handle("GET /{$}", playground)
	mux.Handle("GET /playground/assets/", playground)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if shuttingDown.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})

	srv := &http.Server{
		Handler:           obs.middleware(mux),
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
	if ready != nil {
		ready(ln.Addr().String())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shuttingDown.Store(true)
	logger.Info("shutting down: letting in-flight requests finish", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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

// runSandbox serves the sandbox alone, for load generators and other gateways.
func runSandbox(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("oceangraph sandbox", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "address to listen on")
	latency := fs.Duration("latency", 0, "added latency per response")
	jitter := fs.Duration("jitter", 0, "added random latency, up to this much")
	rateLimit := fs.Int("rate-limit", 0, "requests per token per minute before 429 (0: no limit)")
	pdfSize := fs.Int64("pdf-size", 0, "pad every PDF to this many bytes (0: natural size)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sb := sandbox.New(sandbox.Options{Latency: *latency, Jitter: *jitter, RateLimitPerMinute: *rateLimit, PDFSize: *pdfSize})
	srv := &http.Server{Addr: *addr, Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "oceangraph sandbox listening on http://%s (stats at /_sandbox/stats)\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
