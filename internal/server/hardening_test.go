package server

// Regression tests of issue 9 (hardening) against the running server; each
// fails on the code before its fix.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// ---- 9: shutdown ----------------------------------------------------------------

func TestShutdownFlipsReadinessBeforeClosingTheListener(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"SHUTDOWN_DRAIN": "2s"}})
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	// During the drain the listener still answers, and /readyz says 503.
	deadline := time.Now().Add(2 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			t.Fatalf("/readyz during the drain: %v, want an answer (the listener must stay open)", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %d after the shutdown began", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp, err := http.Get(s.url + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz during the drain: %v %v, want 200", resp, err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("run: %v, want a clean exit", err)
	}
}

func TestShutdownAnswersRequestsStillRunningAtTheDeadline(t *testing.T) {
	arrived := make(chan struct{}, 1)
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	s := startServer(t, serverOptions{upstream: hang, env: map[string]string{
		"SHUTDOWN_DRAIN": "0s", "SHUTDOWN_TIMEOUT": "300ms", "DIGITALOCEAN_TOKEN": "t", "UPSTREAM_RETRIES": "0",
	}})
	type answer struct {
		status int
		body   string
		err    error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Post(s.url+"/query", "application/json", strings.NewReader(`{"query":"{ balance { accountBalance } }"}`))
		if err != nil {
			got <- answer{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- answer{status: resp.StatusCode, body: string(b)}
	}()
	<-arrived
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	a := <-got
	if a.err != nil || !strings.Contains(a.body, `"SHUTTING_DOWN"`) {
		t.Errorf("a request running at the shutdown deadline: %d %q %v, want a coded SHUTTING_DOWN answer", a.status, a.body, a.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("run: %v, want nil (exit 0)", err)
	}
}

// ---- 3 and 10: settings ------------------------------------------------------------

func TestConfigRefusesAbsurdLinkAndProxySettings(t *testing.T) {
	for _, c := range []struct {
		env map[string]string
		ok  bool
	}{
		{map[string]string{"FILE_LINK_TTL": "24h"}, true},
		{map[string]string{"FILE_LINK_TTL": "876000h"}, false},
		{map[string]string{"PUBLIC_URL": "https://og.example:8443"}, true},
		{map[string]string{"PUBLIC_URL": "https://og.example/"}, true},
		{map[string]string{"PUBLIC_URL": "https://og.example/api"}, false},
		{map[string]string{"PUBLIC_URL": "https://og.example?x=1"}, false},
		{map[string]string{"PUBLIC_URL": "https://og.example#f"}, false},
		{map[string]string{"PUBLIC_URL": "https://user@og.example"}, false},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7, ::1"}, true},
		{map[string]string{"TRUSTED_PROXIES": "proxy.internal"}, false},
		{map[string]string{"SHUTDOWN_DRAIN": "0s"}, true},
		{map[string]string{"SHUTDOWN_DRAIN": "-1s"}, false},
	} {
		_, err := LoadConfig(nil, envOf(c.env))
		if (err == nil) != c.ok {
			t.Errorf("%v: err %v, want ok %v", c.env, err, c.ok)
		}
	}
	cfg, err := LoadConfig(nil, envOf(map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7"}))
	if err != nil || len(cfg.TrustedProxies) != 2 || cfg.TrustedProxies[1].String() != "192.168.1.7/32" {
		t.Errorf("TRUSTED_PROXIES: %v %v, want 10.0.0.0/8 and 192.168.1.7/32", cfg.TrustedProxies, err)
	}
}

// ---- 8 and 10: the download routes ------------------------------------------------

func TestDownloadRoutesAnswerInJSON(t *testing.T) {
	sb := sandbox.New(sandbox.Options{Seed: 1})
	s := startServer(t, serverOptions{upstream: sb, env: map[string]string{"DIGITALOCEAN_TOKEN": "t"}})
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodPost, "/invoices/22737513-0ea7-4206-8ceb-98a575af7681/pdf", 405, "METHOD_NOT_ALLOWED"},
		{http.MethodDelete, "/files/abc/invoice.pdf", 405, "METHOD_NOT_ALLOWED"},
		{http.MethodGet, "/invoices/" + strings.Repeat("a", 300) + "/pdf", 400, "BAD_USER_INPUT"},
		{http.MethodGet, "/invoices/a%20b/pdf", 400, "BAD_USER_INPUT"},
	} {
		sb.Reset()
		req, _ := http.NewRequest(c.method, s.url+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error struct{ Code string } }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || err != nil || body.Error.Code != c.code {
			t.Errorf("%s %.60s: %d %q (%v), want %d and JSON code %s", c.method, c.path, resp.StatusCode, body.Error.Code, err, c.status, c.code)
		}
		if n := sb.Total(); n != 0 {
			t.Errorf("%s %.60s: %d upstream calls, want none", c.method, c.path, n)
		}
	}
}

func TestLoggedPathsAreTruncated(t *testing.T) {
	s := startServer(t, serverOptions{})
	resp, err := http.Get(s.url + "/" + strings.Repeat("p", 500<<10))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.logs.String()); n > 16<<10 {
		t.Errorf("one request with a 500 KB path wrote %d bytes of log, want the path truncated", n)
	}
}

func TestWriteTimeoutIsNotTheClientsFault(t *testing.T) {
	s := startServer(t, serverOptions{upstream: sandbox.New(sandbox.Options{Seed: 1, PDFSize: 64 << 20}),
		env: map[string]string{"DIGITALOCEAN_TOKEN": "t", "WRITE_TIMEOUT": "300ms"}})
	inv := sandbox.New(sandbox.Options{Seed: 1}).Account("t").Invoices[0].UUID
	resp, err := http.Get(s.url + "/invoices/" + url.PathEscape(inv) + "/pdf")
	if err != nil {
		t.Fatal(err)
	}
	// Read nothing: the server's writes block, and its write timeout ends the response.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.logs.String(), `"msg":"download `) {
		if time.Now().After(deadline) {
			t.Fatalf("no download line in the log:\n%s", s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	logs := s.logs.String()
	if strings.Contains(logs, "abandoned by the client") || !strings.Contains(logs, "write timeout") {
		t.Errorf("the server's own write timeout: log\n%s\nwant it named, not blamed on the client", logs)
	}
}

// ---- 11: CSRF prevention and bearer tokens --------------------------------------

func TestCSRFPreventionLetsBearerRequestsThrough(t *testing.T) {
	s := startRunningServer(t)
	get := "/query?" + url.Values{"query": {serverVolumesQuery}}.Encode()
	resp, body := s.do(t, http.MethodGet, get, map[string]string{"Authorization": "Bearer " + serverTokenAlice}, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"volumes"`) {
		t.Errorf("GET with Authorization: Bearer and no preflight header: %d %s, want its data", resp.StatusCode, body)
	}
	// A browser may attach cached Basic credentials to a simple request: no proof.
	for _, h := range []map[string]string{{}, {"Authorization": "Basic dXNlcjpwYXNz"}} {
		resp, body = s.do(t, http.MethodGet, get, h, "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Cross-Site Request Forgery") {
			t.Errorf("GET with %v: %d %s, want the CSRF refusal", h, resp.StatusCode, body)
		}
	}
}
