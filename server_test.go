package main

import (
	"runtime/debug"
	"testing"

	"github.com/oceangraph/oceangraph/internal/server"
)

// By default the process runs at GOGC=400 with the cache discounted from it
// (the GC adapter); a GOGC in the environment is taken as Go documents it,
// fixed and with no adapter: the README's way to choose throughput over memory.
func TestTuneGCTakesTheEnvironmentsGOGCLiterally(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB") // leave the process's memory limit alone
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	for _, c := range []struct {
		env          string
		runtime      int // what the runtime parsed from env at start-up
		adapter, set int
	}{
		{"", 100, 400, 400},
		{"250", 250, 0, 250},
		{"off", -1, 0, -1},
	} {
		t.Setenv("GOGC", c.env)
		debug.SetGCPercent(c.runtime)
		var cfg server.Config
		tuneGC(&cfg)
		if got := debug.SetGCPercent(100); cfg.Shared.GCPercent != c.adapter || got != c.set {
			t.Errorf("GOGC=%q: adapter percent %d, GOGC now %d; want %d and %d", c.env, cfg.Shared.GCPercent, got, c.adapter, c.set)
		}
	}
}
