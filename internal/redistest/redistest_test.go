package redistest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/redistest"
)

func TestStartStopRestartKeepsThePort(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on a started server: %v", err)
	}
	addr := srv.Addr()
	srv.Stop()
	pingCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.Ping(pingCtx).Err(); err == nil {
		t.Fatal("PING answered after Stop")
	}
	srv.Restart()
	if srv.Addr() != addr {
		t.Fatalf("restart moved the server from %s to %s", addr, srv.Addr())
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	// Persistence is off: a restart starts empty.
	dump, err := srv.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dump) != 0 {
		t.Fatalf("restarted server kept %d keys; persistence should be off", len(dump))
	}
}

// TestMissingRedisServerSkipsLocallyAndFailsInCI runs this package's own test
// binary with an empty PATH, once as a developer would and once as CI does.
func TestMissingRedisServerSkipsLocallyAndFailsInCI(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		redistest.Start(t)
		t.Fatal("Start returned without redis-server on PATH")
	}
	for _, tc := range []struct {
		name, require string
		wantExit      bool
		wantOutput    string
	}{
		{"developer", "", false, "redis-server not found on PATH: this test needs a real Redis"},
		{"ci", "1", true, "redis-server not found on PATH and OCEANGRAPH_REQUIRE_REDIS=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMissingRedisServerSkipsLocallyAndFailsInCI$", "-test.v")
			cmd.Env = append(os.Environ(), "PATH=", "REDISTEST_CHILD=1", redistest.RequireEnv+"="+tc.require)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantExit {
				t.Fatalf("child failed = %v, want %v; output:\n%s", failed, tc.wantExit, out)
			}
			if !strings.Contains(string(out), tc.wantOutput) {
				t.Fatalf("child output lacks %q:\n%s", tc.wantOutput, out)
			}
		})
	}
}
