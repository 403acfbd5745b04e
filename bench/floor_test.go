package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/oceangraph/oceangraph/internal/server"
	"github.com/oceangraph/oceangraph/upstream"
	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// startInProcessServer runs the server's production wiring against upstreamURL
// on a loopback port and returns its base URL.
func startInProcessServer(t *testing.T, upstreamURL string) string {
	t.Helper()
	env := map[string]string{"DIGITALOCEAN_API_URL": upstreamURL, "MAX_CONCURRENCY": "8", "SHUTDOWN_DRAIN": "0s"}
	cfg, err := server.LoadConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenHost, cfg.Port = "127.0.0.1", 0
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- server.Run(ctx, cfg, slog.New(slog.DiscardHandler), func(a string) { addr <- a })
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case a := <-addr:
		return "http://" + a
	case err := <-done:
		t.Fatalf("server: %v", err)
		return ""
	}
}

// answerAndCalls posts body to url with the token and returns the answer's
// data and the upstream requests it caused, as the sandbox logged them, sorted.
func answerAndCalls(t *testing.T, sb *sandbox.Sandbox, url string, body []byte) (any, []string) {
	t.Helper()
	sb.Reset()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer floor-test")
	b, err := graphQLAnswer(http.DefaultClient, req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	var got struct {
		Data any `json:"data"`
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Data == nil {
		t.Fatalf("POST %s: no data in %s", url, b)
	}
	return got.Data, slices.Sorted(slices.Values(sb.Requests()))
}

// TestFloorDashboard27MatchesServer: the floor's canonical Dashboard writes
// the server's data and makes the server's upstream requests, the same URIs
// as many times each (counted at the sandbox), 27 in all.
func TestFloorDashboard27MatchesServer(t *testing.T) {
	sb := sandbox.New(sandbox.Options{})
	up := httptest.NewServer(sb)
	defer up.Close()
	srvURL := startInProcessServer(t, up.URL)
	f := &floor{base: up.URL, http: upstream.NewHTTPClient(), codec: floorCodecs["server"], concurrency: 8}
	fl := httptest.NewServer(f.handler())
	defer fl.Close()

	body := dashboard.body("")
	want, wantCalls := answerAndCalls(t, sb, srvURL+"/query", body)
	got, gotCalls := answerAndCalls(t, sb, fl.URL+"/dashboard27", body)
	if len(wantCalls) != dashboardMinCalls {
		t.Errorf("the server made %d upstream calls, want %d: %q", len(wantCalls), dashboardMinCalls, wantCalls)
	}
	if !slices.Equal(gotCalls, wantCalls) {
		t.Errorf("upstream calls:\nfloor  %q\nserver %q", gotCalls, wantCalls)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("data differ:\nfloor  %s\nserver %s", g, w)
	}
}

// TestCompareAnswersChecksDashboard27: the suite reports a floor whose
// 27-call answer or upstream call count differs from the server's.
func TestCompareAnswersChecksDashboard27(t *testing.T) {
	answer := func(data string) []byte {
		return []byte(`{"data":` + data + `,"extensions":{"rateLimit":{"limit":5000,"remaining":4999}}}`)
	}
	rows := func(floorData string, floorCalls int) floorSuite {
		mk := func(system, data string, calls int) floorRow {
			return floorRow{Round: 1, System: system, Query: dashboard27.Name, Latency: dashboardLatency, row: row{Answer: answer(data), Calls: calls}}
		}
		// The floor first, as in an even round's order.
		return floorSuite{Rows: []floorRow{mk(systemFloorServer, floorData, floorCalls), mk(systemServer, `{"a":1}`, 27)}}
	}
	if p := rows(`{"a":1}`, 27).compareAnswers(); len(p) != 0 {
		t.Errorf("equal answers and calls: %q", p)
	}
	if p := rows(`{"a":2}`, 27).compareAnswers(); len(p) != 1 || !strings.Contains(p[0], "differs") {
		t.Errorf("different data: %q, want one problem", p)
	}
	if p := rows(`{"a":1}`, 26).compareAnswers(); len(p) != 1 || !strings.Contains(p[0], "26 upstream calls") {
		t.Errorf("26 calls: %q, want one problem", p)
	}
}
