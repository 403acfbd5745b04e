package graph

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// stubUpstream answers DigitalOcean paths with fixed bodies, records the
// requests, and counts the most requests it had in flight at once.
type stubUpstream struct {
	mu       sync.Mutex
	routes   map[string][]stubReply // by "METHOD /path" or by path; the last reply repeats
	requests []string
	// bodies are the requests that carried a body, as "METHOD /path <body>".
	bodies []string
	// hold, when set, keeps each request open until it is closed (concurrency tests).
	hold      chan struct{}
	inFlight  atomic.Int32
	maxFlight atomic.Int32
	arrived   chan struct{}
}

// stubReply is one canned answer.
type stubReply struct {
	status  int
	body    string
	headers map[string]string
}

func newStub() *stubUpstream { return &stubUpstream{routes: map[string][]stubReply{}} }

// on adds an answer for a path (or "METHOD /path"): answers are given in the order added, the
// last one for every later request.
func (s *stubUpstream) on(path string, status int, body string, headers ...string) *stubUpstream {
	h := map[string]string{}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	s.mu.Lock()
	s.routes[path] = append(s.routes[path], stubReply{status, body, h})
	s.mu.Unlock()
	return s
}

// onFile answers a path with 200 and a fixture of testdata/spec.
func (s *stubUpstream) onFile(t *testing.T, path, file string) *stubUpstream {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "spec", file))
	if err != nil {
		t.Fatal(err)
	}
	return s.on(path, 200, string(b))
}

func (s *stubUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxFlight.Load()
		if n <= m || s.maxFlight.CompareAndSwap(m, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	if len(body) > 0 {
		s.bodies = append(s.bodies, r.Method+" "+r.URL.RequestURI()+" "+string(body))
	}
	route := r.Method + " " + r.URL.Path
	replies, ok := s.routes[route]
	if !ok {
		route = r.URL.Path
		replies, ok = s.routes[route]
	}
	var reply stubReply
	if ok {
		reply = replies[0]
		if len(replies) > 1 {
			s.routes[route] = replies[1:]
		}
	}
	hold, arrived := s.hold, s.arrived
	s.mu.Unlock()
	if arrived != nil {
		arrived <- struct{}{}
	}
	if hold != nil {
		<-hold
	}
	if !ok {
		reply = stubReply{status: 404, body: `{"id":"not_found","message":"The resource you requested could not be found."}`}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Ratelimit-Limit", "5000")
	w.Header().Set("Ratelimit-Remaining", "4816")
	w.Header().Set("Ratelimit-Reset", "1444931833")
	for k, v := range reply.headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(reply.status)
	if reply.status != http.StatusNoContent {
		_, _ = w.Write([]byte(reply.body))
	}
}

// calls returns the requests received so far, sorted, and forgets them.
func (s *stubUpstream) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.requests)
	s.requests = nil
	slices.Sort(out)
	return out
}

// assertJSON compares a response's data with the expected JSON document.
func assertJSON(t *testing.T, name string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: data is not JSON: %v", name, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: expected JSON is malformed: %v", name, err)
	}
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", "  ")
		wi, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("%s: data differs\n got: %s\nwant: %s", name, gi, wi)
	}
}

// compact strips the layout of a query written over several lines.
func compact(q string) string { return strings.Join(strings.Fields(q), " ") }
