package graph

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/logbuffer"

	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// The isolation and secrecy suite: two tokens (two sandbox accounts) using
// one server at the same time never see each other's data, through any
// loader or cache, and a token never shows in logs, errors or URLs.

// The two callers. Distinctive strings, so a leak anywhere is found by search.
const (
	tokenAlice = "dop_v1_alice_0123456789abcdef0123456789abcdef"
	tokenBob   = "dop_v1_bob_fedcba9876543210fedcba9876543210"
)

// everythingQuery touches every loader and cache a request has: the list
// pages (invoices with the preview, volumes, billing history), summaries,
// item pages, volumes by id, the balance, file downloads and file links.
const everythingQuery = `query Everything($invoice: ID!, $volume: ID!) {
  invoices(first: 3) {
    totalCount
    preview { uuid amount period }
    nodes {
      uuid invoiceId amount period
      summary { amount userName userEmail userCompany }
      items(first: 3) { totalCount nodes { description amount resourceUuid projectName } }
      files { csv { filename byteSize } pdf { url } }
    }
  }
  invoice(uuid: $invoice) { uuid invoiceId amount summary { userName } items(first: 2) { nodes { description amount } } }
  invoicePreview { uuid amount }
  volumes(first: 5) { totalCount nodes { id name sizeGigabytes region { slug } tags } }
  volume(id: $volume) { id name description }
  billingHistory(first: 5) { nodes { type description amount invoiceUuid invoice { uuid amount } } }
  balance { accountBalance monthToDateUsage }
}`

// isolationServer is the handler (guards and APQ included, as server.go
// builds it) and the download route, in front of one sandbox.
type isolationServer struct {
	sb        *sandbox.Sandbox
	query     *harness
	downloads *httptest.Server
	logs      *logbuffer.Buffer
}

func newIsolationServer(t *testing.T) *isolationServer {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Seed: 1})
	up := httptest.NewServer(sb)
	t.Cleanup(up.Close)
	client, err := upstream.New(upstream.Config{BaseURL: up.URL, Timeout: 10 * time.Second, Observe: ObserveUpstream})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	links, err := NewFileLinks(bytes.Repeat([]byte{9}, minFileLinkKeySize), 0)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuffer.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := &isolationServer{sb: sb, logs: logs}
	s.downloads = httptest.NewServer(downloadRoutes(client, links, "", logger))
	t.Cleanup(s.downloads.Close)
	s.query = newHarnessAt(t, up.URL, func(c *Config) {
		c.Client, c.Links, c.Logger = client, links, logger
		c.PublicURL = s.downloads.URL
	})
	return s
}

// post sends a GraphQL request body as token and returns the raw response.
func (s *isolationServer) post(t *testing.T, token string, body map[string]any) []byte {
	t.Helper()
	return s.query.send("Bearer "+token, body)
}

// everything runs everythingQuery for token and returns its data normalised:
// file URLs (fresh nonces each time) replaced by a marker.
func (s *isolationServer) everything(t *testing.T, token string, vars map[string]any) (normalised string, urls []string) {
	t.Helper()
	raw := s.post(t, token, map[string]any{"query": everythingQuery, "variables": vars})
	var resp gqlResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("response is not JSON: %s", raw)
	}
	if len(resp.Errors) > 0 {
		t.Fatalf("everything query as %s failed: %+v", token[:10], resp.Errors)
	}
	var data any
	json.Unmarshal(resp.Data, &data)
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				if k == "url" {
					urls = append(urls, fmt.Sprint(y))
					x[k] = "<url>"
					continue
				}
				x[k] = walk(y)
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	out, _ := json.Marshal(walk(data))
	return string(out), urls
}

// varsFor picks an invoice and a volume of token's own account.
func (s *isolationServer) varsFor(token string) map[string]any {
	a := s.sb.Account(token)
	return map[string]any{"invoice": a.Invoices[1].UUID, "volume": a.Volumes[7].ID}
}

func TestTwoTokensNeverSeeEachOthersData(t *testing.T) {
	s := newIsolationServer(t)
	tokens := []string{tokenAlice, tokenBob}

	// Each account alone, one request at a time: the reference.
	want := map[string]string{}
	for _, tok := range tokens {
		want[tok], _ = s.everything(t, tok, s.varsFor(tok))
	}
	if want[tokenAlice] == want[tokenBob] {
		t.Fatal("the two sandbox accounts hold the same data: the test would prove nothing")
	}

	// Both at once, interleaved, many times: each must get exactly its reference.
	const rounds = 8
	var wg sync.WaitGroup
	got := make([][2]string, rounds*len(tokens))
	for i := range rounds * len(tokens) {
		tok := tokens[i%len(tokens)]
		wg.Go(func() {
			data, _ := s.everything(t, tok, s.varsFor(tok))
			got[i] = [2]string{tok, data}
		})
	}
	wg.Wait()
	for i, g := range got {
		if g[1] != want[g[0]] {
			other := tokenAlice
			if g[0] == tokenAlice {
				other = tokenBob
			}
			t.Errorf("request %d as %s under concurrency differs from its reference (the other account's data: %v)\n got: %s\nwant: %s",
				i, g[0][:10], g[1] == want[other], g[1], want[g[0]])
		}
	}
	assertNoTokenIn(t, "the logs", s.logs.String())
}

// One account asking for the other's invoice or volume gets NOT_FOUND, even
// while the owner is loading the same ids in the same server.
func TestTokenCannotReachTheOtherAccountsIDs(t *testing.T) {
	s := newIsolationServer(t)
	bobsIDs := s.varsFor(tokenBob)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 5 {
			s.everything(t, tokenBob, bobsIDs)
		}
	})
	for range 5 {
		raw := s.post(t, tokenAlice, map[string]any{
			"query":     `query($invoice: ID!, $volume: ID!) { invoice(uuid: $invoice) { uuid amount } volume(id: $volume) { id name } }`,
			"variables": bobsIDs,
		})
		var resp gqlResponse
		json.Unmarshal(raw, &resp)
		if string(resp.Data) != `{"invoice":null,"volume":null}` {
			t.Errorf("Alice reached Bob's invoice or volume: %s", resp.Data)
		}
		codes := map[any]int{}
		for _, e := range resp.Errors {
			codes[e.Extensions["code"]]++
		}
		if codes[CodeNotFound] != 2 || len(resp.Errors) != 2 {
			t.Errorf("want two NOT_FOUND errors, got %+v", resp.Errors)
		}
		assertNoTokenIn(t, "a response", string(raw))
	}
	wg.Wait()
}

// A persisted query registered by one caller is only a query document: the
// other caller using its hash gets its own account's data.
func TestPersistedQueryCarriesNoData(t *testing.T) {
	s := newIsolationServer(t)
	query := `{ volumes(first: 3) { nodes { id name } } invoices(first: 2) { nodes { uuid amount } } }`
	sum := sha256.Sum256([]byte(query))
	apq := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}

	aliceFull := s.post(t, tokenAlice, map[string]any{"query": query, "extensions": apq})
	var wg sync.WaitGroup
	results := make([][]byte, 6)
	for i := range results {
		tok := []string{tokenAlice, tokenBob}[i%2]
		wg.Go(func() { results[i] = s.post(t, tok, map[string]any{"extensions": apq}) })
	}
	wg.Wait()
	bobFull := s.post(t, tokenBob, map[string]any{"query": query})
	dataOf := func(raw []byte) string {
		var resp gqlResponse
		json.Unmarshal(raw, &resp)
		if len(resp.Errors) > 0 {
			t.Fatalf("persisted query failed: %s", raw)
		}
		return string(resp.Data)
	}
	wantAlice, wantBob := dataOf(aliceFull), dataOf(bobFull)
	if wantAlice == wantBob {
		t.Fatal("the accounts' volumes and invoices are identical: the test would prove nothing")
	}
	for i, raw := range results {
		want, who := wantAlice, "Alice"
		if i%2 == 1 {
			want, who = wantBob, "Bob"
		}
		if got := dataOf(raw); got != want {
			t.Errorf("%s by hash only: got %s, want %s", who, got, want)
		}
	}
}

// A file link carries its caller's token sealed: it opens that caller's file,
// shows no token in any encoding, and the logs never hold one.
func TestFileLinksKeepTokensSecretAndSeparate(t *testing.T) {
	s := newIsolationServer(t)
	for _, tok := range []string{tokenAlice, tokenBob} {
		_, urls := s.everything(t, tok, s.varsFor(tok))
		if len(urls) == 0 {
			t.Fatal("no file links in the response")
		}
		for _, u := range urls {
			assertNoTokenIn(t, "a file link", u)
			if dec, err := url.PathUnescape(u); err == nil {
				assertNoTokenIn(t, "a file link (unescaped)", dec)
			}
		}
		// The first invoice's PDF link opens with no headers and serves the
		// file DigitalOcean serves that token for that invoice.
		resp, err := http.Get(urls[0])
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("link as %s: HTTP %d: %s", tok[:10], resp.StatusCode, got)
		}
		inv := s.sb.Account(tok).Invoices[0]
		want := directDownload(t, s, tok, inv.UUID)
		if !bytes.Equal(got, want) {
			t.Errorf("the link issued to %s served %d bytes that are not its invoice %s's PDF (%d bytes)", tok[:10], len(got), inv.UUID, len(want))
		}
	}
	assertNoTokenIn(t, "the logs", s.logs.String())
}

// directDownload fetches a PDF from the download route with the token in the header.
func directDownload(t *testing.T, s *isolationServer, token, uuid string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.downloads.URL+"/invoices/"+uuid+"/pdf", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("direct download: HTTP %d: %s", resp.StatusCode, b)
	}
	return b
}

// Errors about a token (a malformed header, one DigitalOcean refuses) never
// echo it, in the response or the log.
func TestErrorsNeverEchoTheToken(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"id":"unauthorized","message":"Unable to authenticate you."}`)
	}))
	t.Cleanup(up.Close)
	logs := &logbuffer.Buffer{}
	h := newHarnessAt(t, up.URL, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}).handler
	for _, auth := range []string{"Bearer " + tokenAlice, "Token " + tokenAlice, tokenAlice, "Bearer " + tokenAlice + " extra"} {
		req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(`{"query":"{ balance { accountBalance } volumes { nodes { id } } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		where := fmt.Sprintf("the response to Authorization %q", strings.Replace(auth, tokenAlice, "<token>", 1))
		if !strings.Contains(rec.Body.String(), codeUnauthenticated) {
			t.Errorf("%s: want UNAUTHENTICATED, got %s", where, rec.Body)
		}
		assertNoTokenIn(t, where, rec.Body.String())
	}
	assertNoTokenIn(t, "the logs", logs.String())
}

// assertNoTokenIn fails when text holds either token, in clear or in the
// encodings a careless log or URL would use.
func assertNoTokenIn(t *testing.T, where, text string) {
	t.Helper()
	for _, tok := range []string{tokenAlice, tokenBob} {
		for enc, form := range map[string]string{
			"clear":     tok,
			"base64":    base64.StdEncoding.EncodeToString([]byte(tok)),
			"base64url": base64.RawURLEncoding.EncodeToString([]byte(tok)),
			"hex":       hex.EncodeToString([]byte(tok)),
			"the tail":  tok[len(tok)-16:],
		} {
			if strings.Contains(text, form) {
				t.Errorf("%s shows a token (%s): …%s…", where, enc, excerpt(text, form))
			}
		}
	}
}

func excerpt(text, needle string) string {
	i := strings.Index(text, needle)
	from, to := max(i-60, 0), min(i+len(needle)+60, len(text))
	return text[from:to]
}

// Federation's entity lookups go through the same per-request loaders: each
// caller resolves its own invoices and volumes, never the other's.
func TestEntitiesStayWithTheirAccount(t *testing.T) {
	s := newIsolationServer(t)
	const query = `query($r: [_Any!]!) { _entities(representations: $r) { ... on Invoice { uuid amount invoiceId } ... on Volume { id name sizeGigabytes } } }`
	reps := func(token string) []any {
		v := s.varsFor(token)
		return []any{
			map[string]any{"__typename": "Invoice", "uuid": v["invoice"]},
			map[string]any{"__typename": "Volume", "id": v["volume"]},
		}
	}
	entities := func(token string, r []any) gqlResponse {
		var resp gqlResponse
		raw := s.post(t, token, map[string]any{"query": query, "variables": map[string]any{"r": r}})
		if err := json.Unmarshal(raw, &resp); err != nil {
			t.Fatalf("not JSON: %s", raw)
		}
		return resp
	}
	want := map[string]string{}
	for _, tok := range []string{tokenAlice, tokenBob} {
		resp := entities(tok, reps(tok))
		if len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), `"amount"`) || !strings.Contains(string(resp.Data), `"name"`) {
			t.Fatalf("own entities as %s: %s %+v", tok[:10], resp.Data, resp.Errors)
		}
		want[tok] = string(resp.Data)
	}
	var wg sync.WaitGroup
	for i := range 12 {
		tok := []string{tokenAlice, tokenBob}[i%2]
		wg.Go(func() {
			if got := entities(tok, reps(tok)); string(got.Data) != want[tok] {
				t.Errorf("entities as %s under concurrency: got %s, want %s", tok[:10], got.Data, want[tok])
			}
		})
	}
	// Alice naming Bob's entities gets nothing of Bob's.
	cross := entities(tokenAlice, reps(tokenBob))
	if string(cross.Data) != `{"_entities":[null,null]}` {
		t.Errorf("Alice resolved Bob's entities: %s", cross.Data)
	}
	for _, e := range cross.Errors {
		if e.Extensions["code"] != CodeNotFound {
			t.Errorf("Alice naming Bob's entities: want NOT_FOUND, got %+v", e)
		}
	}
	wg.Wait()
	assertNoTokenIn(t, "the logs", s.logs.String())
}
