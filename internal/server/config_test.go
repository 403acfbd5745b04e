package server

import (
	"os"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigDefaultsUseTheSandbox(t *testing.T) {
	cfg, err := LoadConfig(nil, envOf(nil))
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if cfg.Port != 8080 || cfg.ListenHost != "127.0.0.1" || cfg.APIURL != "" {
		t.Errorf("defaults: port %d host %q api %q, want 8080 127.0.0.1 and the sandbox", cfg.Port, cfg.ListenHost, cfg.APIURL)
	}
	if !cfg.Introspection || cfg.LogFormat != "text" {
		t.Errorf("with the sandbox: introspection %v log %q, want true and text", cfg.Introspection, cfg.LogFormat)
	}
	if len(cfg.FileLinkKey) != 32 || cfg.FileLinkTTL != 5*time.Minute || cfg.MaxConcurrency != 8 {
		t.Errorf("file link key %d bytes ttl %v concurrency %d, want 32, 5m, 8", len(cfg.FileLinkKey), cfg.FileLinkTTL, cfg.MaxConcurrency)
	}
}

func TestConfigProductionDefaults(t *testing.T) {
	cfg, err := LoadConfig(nil, envOf(map[string]string{"DIGITALOCEAN_API_URL": "https://api.digitalocean.com"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Introspection || cfg.LogFormat != "json" {
		t.Errorf("with a real API: introspection %v log %q, want false and json", cfg.Introspection, cfg.LogFormat)
	}
}

func TestConfigFlagBeatsEnvironment(t *testing.T) {
	cfg, err := LoadConfig([]string{"-port", "9000"}, envOf(map[string]string{"PORT": "7000"}))
	if err != nil || cfg.Port != 9000 {
		t.Fatalf("port = %d, %v; want the flag's 9000", cfg.Port, err)
	}
}

func TestConfigBadValueNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		env, value string
	}{
		{"PORT", "eighty"},
		{"PORT", "70000"},
		{"DIGITALOCEAN_API_URL", "api.digitalocean.com"},
		{"FILE_LINK_TTL", "soon"},
		{"FILE_LINK_KEY", "c2hvcnQ="},
		{"MAX_CONCURRENCY", "0"},
		{"INTROSPECTION", "maybe"},
		{"LOG_FORMAT", "xml"},
	} {
		_, err := LoadConfig(nil, envOf(map[string]string{tc.env: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.env) {
			t.Errorf("%s=%q: error %v, want one naming %s", tc.env, tc.value, err, tc.env)
		}
	}
}

func TestReadmeDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(string(readme), "`"+s.env+"`") {
			t.Errorf("README.md's configuration table lacks `%s`", s.env)
		}
	}
}
