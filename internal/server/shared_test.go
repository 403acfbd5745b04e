package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/redistest"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

func TestSharedSettingsDefaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		wantRate int
	}{
		{"sandbox: no budget, the sandbox sets no limit", nil, 0},
		{"real API: DigitalOcean's 250 a minute", map[string]string{"DIGITALOCEAN_API_URL": "https://api.digitalocean.com"}, 250},
		{"set explicitly", map[string]string{"DIGITALOCEAN_API_URL": "https://api.digitalocean.com", "RATE_LIMIT_PER_MINUTE": "0"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(nil, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			s := cfg.Shared
			if s.RedisURL != "" || s.CacheBytes != 64<<20 || s.CacheListTTL != 0 || s.TokenRecheck != time.Minute || s.RedisWait != 50*time.Millisecond || s.CacheFileMaxBytes != 1<<20 || s.RateReserve != 5 || s.RatePerMinute != tc.wantRate {
				t.Fatalf("defaults %+v, want no Redis, 64 MiB, no list TTL, 1m recheck, 50ms Redis wait, 1 MiB files, reserve 5, %d a minute", s, tc.wantRate)
			}
		})
	}
}

func TestCacheSecretIsDerivedFromTheFileLinkKeyUnlessSet(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	a, _ := LoadConfig(nil, envOf(map[string]string{"FILE_LINK_KEY": key}))
	b, _ := LoadConfig(nil, envOf(map[string]string{"FILE_LINK_KEY": key}))
	if len(a.Shared.CacheSecret) != 32 || !bytes.Equal(a.Shared.CacheSecret, b.Shared.CacheSecret) {
		t.Fatal("two replicas with one FILE_LINK_KEY derive different cache secrets")
	}
	if bytes.Equal(a.Shared.CacheSecret, bytes.Repeat([]byte{1}, 32)) {
		t.Fatal("the cache secret is the file-link key itself, not derived from it")
	}
	own := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	c, _ := LoadConfig(nil, envOf(map[string]string{"FILE_LINK_KEY": key, "CACHE_SECRET": own}))
	if !bytes.Equal(c.Shared.CacheSecret, bytes.Repeat([]byte{2}, 32)) {
		t.Fatal("CACHE_SECRET was not used")
	}
}

func TestBadSharedSettingsAreNamed(t *testing.T) {
	for env, value := range map[string]string{
		"REDIS_URL":             "http://localhost:6379",
		"CACHE_BYTES":           "-1",
		"CACHE_LIST_TTL":        "-5s",
		"TOKEN_RECHECK":         "0s",
		"REDIS_WAIT":            "10s",
		"CACHE_FILE_MAX_BYTES":  "100000000",
		"RATE_LIMIT_PER_MINUTE": "many",
		"CACHE_SECRET":          "c2hvcnQ=",
	} {
		_, err := LoadConfig(nil, envOf(map[string]string{env: value}))
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: %v, want an error naming %s", env, value, err, env)
		}
	}
}

func TestRedactedURLHidesThePassword(t *testing.T) {
	if got := redactedURL("redis://:s3cret@redis.internal:6379/0"); strings.Contains(got, "s3cret") || !strings.Contains(got, "redis.internal:6379") {
		t.Fatalf("redactedURL = %q", got)
	}
}

func TestRedisWaitIsEachRedisCallsBound(t *testing.T) {
	cfg, err := LoadConfig(nil, envOf(map[string]string{"REDIS_WAIT": "5s"}))
	if err != nil || cfg.Shared.RedisWait != 5*time.Second {
		t.Fatalf("REDIS_WAIT=5s read as %v (%v)", cfg.Shared.RedisWait, err)
	}
	srv := redistest.Start(t)
	ctx := context.Background()
	admin := srv.Client()
	if err := admin.Set(ctx, "oceangraph:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cfg.Shared.RedisURL = srv.URL()
	st, closeShared, err := openSharedState(cfg.Shared, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeShared()
	// Slower than the default 50 ms, within the 5 s set: the answer comes from Redis.
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "300", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Store.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get on a Redis paused for 300ms with REDIS_WAIT=5s = %q, %v; want Redis's value", v, err)
	}
}

func TestTheServerCachesAnIssuedInvoicesFileForItsDownloadRoute(t *testing.T) {
	for _, c := range []struct {
		name      string
		maxFile   string
		wantCalls int
	}{
		{"default bound", "", 1},
		{"CACHE_FILE_MAX_BYTES=0", "0", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			sb := sandbox.New(sandbox.Options{Seed: 1})
			env := map[string]string{"DIGITALOCEAN_TOKEN": "t"}
			if c.maxFile != "" {
				env["CACHE_FILE_MAX_BYTES"] = c.maxFile
			}
			s := startServer(t, serverOptions{upstream: sb, env: env})
			var list struct {
				Invoices struct{ Nodes []struct{ UUID string } }
			}
			resp := postQuery(t, s.url, `{ invoices(first: 1) { nodes { uuid } } }`)
			if err := json.Unmarshal(resp.Data, &list); err != nil || len(list.Invoices.Nodes) != 1 {
				t.Fatalf("invoice list: %s %v", resp.Data, resp.Errors)
			}
			for range 2 {
				resp, err := http.Get(s.url + "/invoices/" + list.Invoices.Nodes[0].UUID + "/pdf")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("download: %d", resp.StatusCode)
				}
			}
			pdfCalls := 0
			for _, r := range sb.Requests() {
				if strings.HasSuffix(r, "/pdf") {
					pdfCalls++
				}
			}
			if pdfCalls != c.wantCalls {
				t.Fatalf("two downloads of an issued invoice's PDF made %d PDF calls upstream, want %d", pdfCalls, c.wantCalls)
			}
		})
	}
}
