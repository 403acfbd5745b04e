package redistest_test

import (
	"context"
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
