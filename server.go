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
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/oceangraph/oceangraph/internal/playground"
	"github.com/oceangraph/oceangraph/internal/server"
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
	cfg, err := server.LoadConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oceangraph:", err)
		os.Exit(2)
	}
	logger, flushLogs := server.NewLogger(cfg.LogFormat)
	defer flushLogs()
	tuneGC(&cfg)
	if cfg.APIURL == "" {
		// A developer's first `go run .`: make the Playground work offline (not done by Run, so tests never fetch).
		playground.BuildAssets(ctx, cfg.AssetsDir, logger, nil)
	}
	if err := server.Run(ctx, cfg, logger, nil); err != nil {
		logger.Error("server stopped", "err", err)
		flushLogs() // os.Exit runs no deferred call
		os.Exit(1)
	}
}

// tuneGC trades memory for CPU unless the environment sets GOGC or
// GOMEMLIMIT: a request allocates ~250 KB that is garbage when it ends, and at
// Go's default GOGC=100 collecting it took a fifth of the server's CPU. With
// 400, volumes(first: 20) serves ~30% more requests a second for ~35 MB more
// RSS (bench/results.md). The cache is discounted from that factor (GCPercent:
// it costs its budget once, not five times), and the soft limit, 128 MiB
// beside the cache's budget, keeps a burst from growing the heap without bound.
func tuneGC(cfg *server.Config) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
		cfg.Shared.GCPercent = 400
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128<<20 + cfg.Shared.CacheBytes)
	}
}

// runSandbox serves the sandbox alone, for load generators and other gateways.
func runSandbox(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("oceangraph sandbox", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "address to listen on")
	latency := fs.Duration("latency", 0, "added latency per response")
	jitter := fs.Duration("jitter", 0, "added random latency, up to this much")
	rateLimit := fs.Int("rate-limit", 0, "requests per token per minute before 429 (0: no limit)")
	pdfSize := fs.Int64("pdf-size", 0, "pad every PDF to this many bytes (0: natural size)")
	actionDelay := fs.Duration("action-delay", sandbox.DefaultActionDelay, "how long a volume action stays in-progress (0: it completes at once)")
	actionErrors := fs.Float64("action-error-rate", 0, "fraction of volume actions that end errored")
	accountToken := fs.String("account-token", "", "serve every token as this one (one account for all: a benchmark's fresh token per request keeps a server's cache cold)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *actionDelay == 0 {
		*actionDelay = -1 // the sandbox's "at once"
	}
	sb := sandbox.New(sandbox.Options{Latency: *latency, Jitter: *jitter, RateLimitPerMinute: *rateLimit, PDFSize: *pdfSize,
		ActionDelay: *actionDelay, ActionErrorRate: *actionErrors, AccountToken: *accountToken})
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
