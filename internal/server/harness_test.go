package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/logbuffer"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/oceangraph/oceangraph/internal/telemetry"
)

// testServer is run(), the production wiring, serving on a loopback port.
type testServer struct {
	url   string
	logs  *logbuffer.Buffer       // the JSON log at debug level, unless options.logs took it
	spans *tracetest.SpanRecorder // every span the server ended
	stop  func() error            // stops the server and returns run's error (also done when the test ends)
}

// serverOptions is what a test varies; the zero value is `go run .` on the built-in sandbox.
type serverOptions struct {
	env      map[string]string // settings, as environment variables
	upstream http.Handler      // DigitalOcean's stand-in; nil: the server's built-in sandbox
	logs     io.Writer         // where the log goes instead of testServer.logs
	untraced bool              // tracing off, as in production without an OTLP endpoint
}

// startServer starts the server and returns once /healthz answers.
func startServer(t testing.TB, o serverOptions) *testServer {
	t.Helper()
	// No load balancer to tell in a test: stop without a drain unless asked.
	env := map[string]string{"SHUTDOWN_DRAIN": "0s"}
	for k, v := range o.env {
		env[k] = v
	}
	if o.upstream != nil {
		up := httptest.NewServer(o.upstream)
		t.Cleanup(up.Close)
		env["DIGITALOCEAN_API_URL"] = up.URL
	}
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.ListenHost, cfg.Port = "127.0.0.1", 0
	s := &testServer{logs: &logbuffer.Buffer{}, spans: tracetest.NewSpanRecorder()}
	var logs io.Writer = s.logs
	if o.logs != nil {
		logs = o.logs
	}
	var tp trace.TracerProvider = noop.NewTracerProvider()
	if !o.untraced {
		sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
		t.Cleanup(func() { sdk.Shutdown(context.Background()) })
		tp = sdk
	}
	logger := slog.New(telemetry.WithRequestIDs(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, options{logger: logger, ready: func(a string) { addr <- a }, tp: tp}) }()
	var once sync.Once
	var runErr error
	s.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("the server stopped with %v, want a clean shutdown", err)
		}
	})
	select {
	case a := <-addr:
		s.url = "http://" + a
	case err := <-done:
		t.Fatalf("run returned before serving: %v\n%s", err, s.logs)
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not start within 30s")
	}
	s.waitHealthy(t)
	return s
}

// waitHealthy polls /healthz until it answers 200.
func (s *testServer) waitHealthy(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("/healthz never answered 200")
}
