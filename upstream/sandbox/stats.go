package sandbox

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// stats counts the DigitalOcean requests the sandbox received, in arrival
// order, whatever their outcome (errors and injected faults included).
type stats struct {
	mu      sync.Mutex
	total   int
	counts  map[string]int
	log     []string // ring of the newest request URIs
	next    int      // where the ring writes next once full
	logSize int
}

func newStats(logSize int) *stats {
	return &stats{counts: map[string]int{}, logSize: logSize}
}

// record counts one request under its route ("GET /v2/volumes/{id}", the
// labels of upstream.Endpoint*) and logs its URI exactly as received.
func (st *stats) record(method, pattern, requestURI string, u *url.URL) {
	route := method + " " + pattern
	if pattern == "" {
		route = method + " (unknown path)"
	}
	if requestURI == "" { // a handler called directly rather than by net/http
		requestURI = u.RequestURI()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.total++
	st.counts[route]++
	entry := method + " " + requestURI
	if len(st.log) < st.logSize {
		st.log = append(st.log, entry)
		return
	}
	st.log[st.next] = entry
	st.next = (st.next + 1) % st.logSize
}

// Requests returns the DigitalOcean requests served, oldest first, as
// "GET /v2/volumes?page=1&per_page=3" (the request URI exactly as received);
// only the newest Options.RequestLog are kept.
func (s *Sandbox) Requests() []string {
	st := s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]string, 0, len(st.log))
	out = append(out, st.log[st.next:]...)
	return append(out, st.log[:st.next]...)
}

// Counts returns how many DigitalOcean requests were served per route, keyed
// like upstream.EndpointVolumes ("GET /v2/volumes", "GET /v2/volumes/{id}").
func (s *Sandbox) Counts() map[string]int {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	return maps.Clone(s.stats.counts)
}

// Total returns how many DigitalOcean requests were served since the last Reset.
func (s *Sandbox) Total() int {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	return s.stats.total
}

// Reset zeroes the counters, the request log and the rate-limit windows; the
// generated accounts and the fault knobs stay.
func (s *Sandbox) Reset() {
	st := s.stats
	st.mu.Lock()
	st.total, st.log, st.next = 0, nil, 0
	clear(st.counts)
	st.mu.Unlock()
	s.limiter.reset()
}

// Stats is the body of GET /_sandbox/stats.
type Stats struct {
	Total    int            `json:"total"`
	Counts   map[string]int `json:"counts"`
	Requests []string       `json:"requests"`
}

// control serves the sandbox's own endpoints under ControlPrefix, for load
// tests in another process: GET stats, POST reset, GET/PUT faults, GET/PUT
// actions. They need no token and are not counted.
func (s *Sandbox) control(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", s.newRequestID())
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET " + ControlPrefix + "stats":
		writeJSON(w, http.StatusOK, Stats{Total: s.Total(), Counts: s.Counts(), Requests: s.Requests()})
	case "POST " + ControlPrefix + "reset":
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case "GET " + ControlPrefix + "faults":
		writeJSON(w, http.StatusOK, s.Faults())
	case "PUT " + ControlPrefix + "faults":
		var f Faults
		if s.readKnobs(w, r, "faults", &f) && s.setKnobs(w, r, s.SetFaults(f)) {
			writeJSON(w, http.StatusOK, s.Faults())
		}
	case "GET " + ControlPrefix + "actions":
		writeJSON(w, http.StatusOK, s.ActionKnobs())
	case "PUT " + ControlPrefix + "actions":
		var k ActionKnobs
		if s.readKnobs(w, r, "actions", &k) && s.setKnobs(w, r, s.SetActionKnobs(k)) {
			writeJSON(w, http.StatusOK, s.ActionKnobs())
		}
	default:
		switch r.URL.Path {
		case ControlPrefix + "stats", ControlPrefix + "reset", ControlPrefix + "faults", ControlPrefix + "actions":
			w.Header().Set("Allow", map[string]string{"stats": "GET", "reset": "POST", "faults": "GET, PUT", "actions": "GET, PUT"}[strings.TrimPrefix(r.URL.Path, ControlPrefix)])
			s.writeError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "The "+r.Method+" method is not supported here.")
		default:
			s.writeError(w, r, http.StatusNotFound, "not_found", "The resource you requested could not be found.")
		}
	}
}

// readKnobs decodes a PUT of knobs, refusing unknown ones with 400.
func (s *Sandbox) readKnobs(w http.ResponseWriter, r *http.Request, what string, dst any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "bad_request", fmt.Sprintf("%s body: %v", what, err))
		return false
	}
	return true
}

// setKnobs answers 400 when setting the knobs failed.
func (s *Sandbox) setKnobs(w http.ResponseWriter, r *http.Request, err error) bool {
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, "bad_request", err.Error())
		return false
	}
	return true
}
