// Package redistest runs a real redis-server for tests: on a free loopback
// port, persistence off, stopped at the test's cleanup.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RequireEnv, set to 1 (as CI does), turns a missing redis-server from a skip into a failure.
const RequireEnv = "OCEANGRAPH_REQUIRE_REDIS"

// Server is one redis-server process owned by a test.
type Server struct {
	t    testing.TB
	bin  string
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// Start starts redis-server on a free loopback port and waits until it answers PING.
// Without redis-server it skips the test, or fails it when OCEANGRAPH_REQUIRE_REDIS=1.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("redis-server not found on PATH and %s=1: install Debian's redis-server", RequireEnv)
		}
		t.Skipf("redis-server not found on PATH: this test needs a real Redis (apt-get install redis-server); %s=1 makes this a failure", RequireEnv)
	}
	s := &Server{t: t, bin: bin, port: freePort(t), dir: t.TempDir()}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's redis:// URL, as REDIS_URL takes it.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Stop stops the server (SIGTERM, then SIGKILL) and waits for it; stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Restart starts the stopped server again on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	// The port was free when picked; a restart reuses it, so retry a bind race briefly.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = s.spawn(); lastErr == nil {
			return
		}
	}
	s.t.Fatalf("redis-server on %s: %v", s.Addr(), lastErr)
}

func (s *Server) spawn() error {
	cmd := exec.Command(s.bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--protected-mode", "yes", "--daemonize", "no")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if err := waitForPing(s.Addr(), done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		logText, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
		return fmt.Errorf("%w; output: %s; log: %s", err, out.Bytes(), logText)
	}
	s.cmd, s.done, s.log = cmd, done, out
	return nil
}

// waitForPing polls PING until it answers, the process exits, or 10 s pass.
func waitForPing(addr string, exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited before answering PING")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PING answer within 10 s: %w", err)
		}
		time.Sleep(10 * time.Millisecond) // polling the server's readiness, not waiting blind
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Client is a go-redis client of the server, closed at cleanup, for inspecting what was stored.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Dump returns every key and its value (strings and hashes) as the server holds them now.
func (s *Server) Dump(ctx context.Context) (map[string][]byte, error) {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	out := map[string][]byte{}
	iter := c.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		typ, err := c.Type(ctx, key).Result()
		if err != nil {
			return nil, err
		}
		switch typ {
		case "string":
			v, err := c.Get(ctx, key).Bytes()
			if err != nil && err != redis.Nil {
				return nil, err
			}
			out[key] = v
		case "hash":
			m, err := c.HGetAll(ctx, key).Result()
			if err != nil {
				return nil, err
			}
			var b bytes.Buffer
			for f, v := range m {
				fmt.Fprintf(&b, "%s=%s\n", f, v)
			}
			out[key] = b.Bytes()
		default:
			out[key] = []byte("(" + typ + ")")
		}
	}
	return out, iter.Err()
}
