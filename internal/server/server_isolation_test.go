package server

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// Isolation, secrecy and the browser guards, tested against the running
// server: run() on an ephemeral loopback port, its upstream a sandbox whose
// requests the tests count, its log captured.

const (
	serverTokenAlice = "dop_v1_srv_alice_00112233445566778899aabbccddeeff"
	serverTokenBob   = "dop_v1_srv_bob_ffeeddccbbaa99887766554433221100"
	listedOrigin     = "https://app.example.com"
	unlistedOrigin   = "https://evil.example"
)

// runningServer is the server in front of a counted sandbox, one origin listed.
type runningServer struct {
	*testServer
	sb *sandbox.Sandbox
}

func startRunningServer(t *testing.T) *runningServer { return startRunningServerLogging(t, nil) }

// startRunningServerLogging starts the server with its JSON log going to logs
// (nil: the testServer's buffer).
func startRunningServerLogging(t testing.TB, logs io.Writer) *runningServer {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Seed: 1})
	s := startServer(t, serverOptions{upstream: sb, logs: logs, env: map[string]string{
		"CORS_ALLOWED_ORIGINS": listedOrigin,
		"LOG_FORMAT":           "json",
		"UPSTREAM_RETRIES":     "0",
	}})
	return &runningServer{testServer: s, sb: sb}
}

// do sends a request and returns the response with its body read.
func (s *runningServer) do(t *testing.T, method, path string, headers map[string]string, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// graphql posts a JSON GraphQL request as token.
func (s *runningServer) graphql(t *testing.T, token string, body map[string]any) (*http.Response, string) {
	t.Helper()
	raw, _ := json.Marshal(body)
	return s.do(t, http.MethodPost, "/query", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + token}, string(raw))
}

const serverVolumesQuery = `{ volumes(first: 3) { nodes { id name } } }`

func TestServerCORSRefusesUnlistedOrigins(t *testing.T) {
	s := startRunningServer(t)
	preflight := func(origin string) *http.Response {
		resp, _ := s.do(t, http.MethodOptions, "/query", map[string]string{
			"Origin":                         origin,
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "authorization,content-type", // as browsers send it: lower case, sorted
		}, "")
		return resp
	}
	if resp := preflight(unlistedOrigin); resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from the unlisted %s: got CORS headers %v, want none", unlistedOrigin, resp.Header)
	}
	resp := preflight(listedOrigin)
	if resp.Header.Get("Access-Control-Allow-Origin") != listedOrigin || resp.Header.Get("Access-Control-Allow-Credentials") != "true" || resp.Header.Get("Access-Control-Max-Age") == "" {
		t.Errorf("preflight from the listed %s: got %v, want the origin allowed with credentials and a max age", listedOrigin, resp.Header)
	}
	// The actual request from an unlisted origin: no CORS header, so a browser hides the answer.
	raw, _ := json.Marshal(map[string]string{"query": serverVolumesQuery})
	resp, _ = s.do(t, http.MethodPost, "/query", map[string]string{
		"Origin": unlistedOrigin, "Content-Type": "application/json", "Authorization": "Bearer " + serverTokenAlice,
	}, string(raw))
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("POST from the unlisted origin: Access-Control-Allow-Origin %q, want none", got)
	}
}

func TestServerCSRFPreventionBlocksCrossSiteForms(t *testing.T) {
	s := startRunningServer(t)
	form := url.Values{"query": {serverVolumesQuery}}.Encode()
	cases := []struct {
		name, method, path, contentType, body string
		headers                               map[string]string
	}{
		{name: "HTML form POST (urlencoded)", method: http.MethodPost, path: "/query", contentType: "application/x-www-form-urlencoded", body: form},
		{name: "HTML form POST (multipart)", method: http.MethodPost, path: "/query", contentType: "multipart/form-data; boundary=x",
			body: "--x\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n" + serverVolumesQuery + "\r\n--x--\r\n"},
		{name: "text/plain POST carrying JSON", method: http.MethodPost, path: "/query", contentType: "text/plain", body: `{"query":"` + serverVolumesQuery + `"}`},
		{name: "POST without a content type", method: http.MethodPost, path: "/query", body: `{"query":"` + serverVolumesQuery + `"}`},
		{name: "GET without a preflight header", method: http.MethodGet, path: "/query?" + form},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.sb.Reset()
			h := map[string]string{"Origin": unlistedOrigin, "Cookie": "session=1"}
			if c.contentType != "" {
				h["Content-Type"] = c.contentType
			}
			resp, body := s.do(t, c.method, c.path, h, c.body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"BAD_REQUEST"`) || !strings.Contains(body, "Cross-Site Request Forgery") {
				t.Errorf("want 400 BAD_REQUEST naming CSRF, got %d: %s", resp.StatusCode, body)
			}
			if n := s.sb.Total(); n != 0 {
				t.Errorf("the refused request still cost %d upstream call(s): %q", n, s.sb.Requests())
			}
		})
	}
	// The same GET with the header that forces a preflight is served.
	resp, body := s.do(t, http.MethodGet, "/query?"+form, map[string]string{"Apollo-Require-Preflight": "true", "Authorization": "Bearer " + serverTokenAlice}, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"volumes"`) {
		t.Errorf("GET with apollo-require-preflight: got %d: %s", resp.StatusCode, body)
	}
}

// Two tokens at once against the running server: each gets its own account,
// through the server's loaders and its persisted-query cache.
func TestServerTwoTokensConcurrently(t *testing.T) {
	s := startRunningServer(t)
	query := `{ volumes(first: 4) { nodes { id name } } invoices(first: 2) { preview { amount } nodes { uuid amount items(first: 2) { nodes { amount } } } } }`
	dataOf := func(body string) string {
		var r struct {
			Data   json.RawMessage
			Errors []any
		}
		if json.Unmarshal([]byte(body), &r) != nil || len(r.Errors) > 0 {
			t.Fatalf("query failed: %s", body)
		}
		return string(r.Data)
	}
	want := map[string]string{}
	for _, tok := range []string{serverTokenAlice, serverTokenBob} {
		_, body := s.graphql(t, tok, map[string]any{"query": query})
		want[tok] = dataOf(body)
	}
	if want[serverTokenAlice] == want[serverTokenBob] {
		t.Fatal("the two accounts hold the same data: the test would prove nothing")
	}
	var wg sync.WaitGroup
	for i := range 16 {
		tok := []string{serverTokenAlice, serverTokenBob}[i%2]
		wg.Go(func() {
			if _, body := s.graphql(t, tok, map[string]any{"query": query}); dataOf(body) != want[tok] {
				t.Errorf("request %d as %s: got another answer than its own account's: %s", i, tok[:14], body)
			}
		})
	}
	wg.Wait()
}

// After a run of successes, failures and downloads, no token is in the log,
// in /metrics, in an error, or in clear in a file link.
func TestServerNeverShowsTheToken(t *testing.T) {
	s := startRunningServer(t)
	inv := s.sb.Account(serverTokenAlice).Invoices[0].UUID
	_, body := s.graphql(t, serverTokenAlice, map[string]any{
		"query":     `query($u: ID!) { invoice(uuid: $u) { amount files { pdf { url } csv { url } } } volumes(first: 2) { nodes { id } } }`,
		"variables": map[string]any{"u": inv},
	})
	var r struct {
		Data struct {
			Invoice struct {
				Files struct{ PDF, CSV struct{ URL string } }
			}
		}
	}
	json.Unmarshal([]byte(body), &r)
	link := r.Data.Invoice.Files.PDF.URL
	if link == "" {
		t.Fatalf("no file link: %s", body)
	}
	assertNoServerToken(t, "a file link", link)
	if resp, _ := s.do(t, http.MethodGet, strings.TrimPrefix(link, s.url), nil, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("the file link answered %d", resp.StatusCode)
	}
	// Failures that involve the token: a refused one, a malformed header, a 404.
	_, errBody := s.graphql(t, serverTokenAlice, map[string]any{"query": `{ invoice(uuid: "00000000-0000-0000-0000-000000000000") { amount } }`})
	assertNoServerToken(t, "an error response", errBody)
	_, errBody = s.do(t, http.MethodPost, "/query", map[string]string{"Content-Type": "application/json", "Authorization": "Token " + serverTokenAlice}, `{"query":"{ balance { accountBalance } }"}`)
	assertNoServerToken(t, "an UNAUTHENTICATED response", errBody)
	_, errBody = s.do(t, http.MethodGet, "/files/"+base64.RawURLEncoding.EncodeToString([]byte(serverTokenAlice))+"/x.pdf", nil, "")
	assertNoServerToken(t, "a refused link's response", errBody)

	resp, metrics := s.do(t, http.MethodGet, "/metrics", nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics answered %d, want 200 (observability not wired?)", resp.StatusCode)
	}
	assertNoServerToken(t, "/metrics", metrics)
	if opaque := strings.Split(strings.TrimPrefix(link, s.url+"/files/"), "/")[0]; strings.Contains(metrics, opaque) || strings.Contains(s.logs.String(), opaque) {
		t.Errorf("a signed link (a credential) is in /metrics or the log")
	}
	assertNoServerToken(t, "the server log", s.logs.String())
}

// assertNoServerToken fails when text holds a test token, in clear or encoded.
func assertNoServerToken(t *testing.T, where, text string) {
	t.Helper()
	for _, tok := range []string{serverTokenAlice, serverTokenBob} {
		for _, form := range []string{tok, tok[len(tok)-16:], base64.StdEncoding.EncodeToString([]byte(tok)),
			base64.RawURLEncoding.EncodeToString([]byte(tok)), hex.EncodeToString([]byte(tok)), url.QueryEscape(tok)} {
			if i := strings.Index(text, form); i >= 0 {
				t.Errorf("%s shows a token: …%s…", where, text[max(i-40, 0):min(i+len(form)+40, len(text))])
			}
		}
	}
}
