package graph

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"go.uber.org/goleak"

	"github.com/oceangraph/oceangraph/upstream/sandbox"
)

// The subscription over the real transports, against the sandbox: graphql-ws
// over WebSocket and graphql-sse over Server-Sent Events, with their token
// rules, the origin check, and no goroutine left behind.

// newStreamHarness is the handler on a real loopback server (WebSockets need
// one) in front of a sandbox whose actions take delay, polled every 10 ms.
func newStreamHarness(t *testing.T, delay time.Duration, tweak ...func(*Config)) (*harness, *httptest.Server) {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Seed: 1, ActionDelay: delay})
	h := newHarness(t, sb, append([]func(*Config){func(c *Config) { c.ActionPollInterval = 10 * time.Millisecond }}, tweak...)...)
	h.sandbox = sb
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	return h, srv
}

const progressSubscription = `subscription($v: ID!, $a: ID!) { volumeActionProgress(volumeId: $v, actionId: $a) { id type status volume { id dropletIds } } }`

// startDetach detaches one of the sandbox account's attached volumes and
// returns the volume, its Droplet and the detach action's id.
func startDetach(t *testing.T, h *harness) (volumeID string, dropletID int, actionID string) {
	t.Helper()
	var list struct {
		Volumes struct {
			Nodes []struct {
				ID         string
				DropletIds []int
			}
		}
	}
	h.mustData(`{ volumes(first: 200) { nodes { id dropletIds } } }`, nil, &list)
	for _, v := range list.Volumes.Nodes {
		if len(v.DropletIds) > 0 {
			volumeID, dropletID = v.ID, v.DropletIds[0]
			break
		}
	}
	if volumeID == "" {
		t.Fatal("the sandbox account has no attached volume")
	}
	var out struct {
		DetachVolume struct {
			Action     struct{ ID, Status string }
			UserErrors []any
		}
	}
	h.mustData(`mutation($v: ID!, $d: Int!) { detachVolume(input: {volumeId: $v, dropletId: $d}) { action { id status } userErrors { code message } } }`,
		map[string]any{"v": volumeID, "d": dropletID}, &out)
	if len(out.DetachVolume.UserErrors) > 0 || out.DetachVolume.Action.Status != "IN_PROGRESS" {
		t.Fatalf("detach: %+v", out.DetachVolume)
	}
	return volumeID, dropletID, out.DetachVolume.Action.ID
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialWS opens a graphql-transport-ws connection and sends connection_init
// with payload; it returns the connection after connection_ack.
func dialWS(t *testing.T, ctx context.Context, srv *httptest.Server, header http.Header, payload any) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/query", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header,
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, status)
	}
	init, _ := json.Marshal(payload)
	if err := wsjson.Write(ctx, conn, wsMessage{Type: "connection_init", Payload: init}); err != nil {
		t.Fatal(err)
	}
	var ack wsMessage
	if err := wsjson.Read(ctx, conn, &ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("want connection_ack, got %+v (%v)", ack, err)
	}
	return conn
}

type eventPayload struct {
	Data struct {
		VolumeActionProgress struct {
			ID, Type, Status string
			Volume           struct {
				ID         string
				DropletIds []int
			}
		}
	}
	Errors     []gqlError
	Extensions map[string]any
}

// Over WebSocket with the token in connection_init (as a browser sends it),
// the action's states arrive IN_PROGRESS then COMPLETED, each with the
// volume as it is then and the rate-limit extension, then the stream completes.
func TestSubscriptionOverWebSocket(t *testing.T) {
	h, srv := newStreamHarness(t, 300*time.Millisecond)
	volumeID, dropletID, actionID := startDetach(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := dialWS(t, ctx, srv, nil, map[string]any{"Authorization": "Bearer " + callerToken})
	defer conn.CloseNow()
	sub, _ := json.Marshal(map[string]any{"query": progressSubscription, "variables": map[string]any{"v": volumeID, "a": actionID}})
	if err := wsjson.Write(ctx, conn, wsMessage{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
		t.Fatal(err)
	}
	var events []eventPayload
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			t.Fatalf("read: %v after %d events", err, len(events))
		}
		if m.Type == "complete" {
			break
		}
		if m.Type != "next" {
			t.Fatalf("unexpected message %s: %s", m.Type, m.Payload)
		}
		var p eventPayload
		json.Unmarshal(m.Payload, &p)
		events = append(events, p)
	}
	assertProgress(t, events, volumeID, dropletID)
}

// Over SSE (a POST accepting text/event-stream) with the token in the
// Authorization header, the same states arrive as `next` events, then `complete`.
func TestSubscriptionOverSSE(t *testing.T) {
	h, srv := newStreamHarness(t, 300*time.Millisecond)
	volumeID, dropletID, actionID := startDetach(t, h)
	body, _ := json.Marshal(map[string]any{"query": progressSubscription, "variables": map[string]any{"v": volumeID, "a": actionID}})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+callerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q, want text/event-stream", ct)
	}
	var events []eventPayload
	completed := false
	scanner := bufio.NewScanner(resp.Body)
	event := ""
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
			if event == "complete" {
				completed = true
			}
		case strings.HasPrefix(line, "data: ") && event == "next":
			var p eventPayload
			json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &p)
			events = append(events, p)
		}
		if completed {
			break
		}
	}
	if !completed {
		t.Fatalf("the stream ended without `event: complete` after %d events", len(events))
	}
	assertProgress(t, events, volumeID, dropletID)
}

func assertProgress(t *testing.T, events []eventPayload, volumeID string, dropletID int) {
	t.Helper()
	var statuses []string
	for _, e := range events {
		if len(e.Errors) > 0 {
			t.Fatalf("an event carried errors: %+v", e.Errors)
		}
		statuses = append(statuses, e.Data.VolumeActionProgress.Status)
		if e.Extensions["rateLimit"] == nil {
			t.Errorf("an event without extensions.rateLimit: %+v", e.Extensions)
		}
	}
	if strings.Join(statuses, " ") != "IN_PROGRESS COMPLETED" {
		t.Fatalf("statuses %v, want IN_PROGRESS then COMPLETED", statuses)
	}
	first, last := events[0].Data.VolumeActionProgress, events[1].Data.VolumeActionProgress
	if first.Type != "detach_volume" || first.Volume.ID != volumeID {
		t.Errorf("first event %+v", first)
	}
	if len(first.Volume.DropletIds) != 1 || first.Volume.DropletIds[0] != dropletID {
		t.Errorf("while in progress the volume is still attached: dropletIds %v, want [%d]", first.Volume.DropletIds, dropletID)
	}
	if len(last.Volume.DropletIds) != 0 {
		t.Errorf("after COMPLETED the volume is detached: dropletIds %v, want []", last.Volume.DropletIds)
	}
}

// A WebSocket opened by a page of an origin CORS does not allow is refused
// with 403 before the handshake; this server's own origin, an allowed one
// and a client sending no Origin are accepted.
func TestWebSocketOriginCheck(t *testing.T) {
	_, srv := newStreamHarness(t, 0, func(c *Config) {
		c.AllowOrigin = func(origin string) bool { return origin == "https://app.example.com" }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/query"
	for origin, want := range map[string]int{
		"https://evil.example":    http.StatusForbidden,
		"https://app.example.com": http.StatusSwitchingProtocols,
		srv.URL:                   http.StatusSwitchingProtocols,
		"":                        http.StatusSwitchingProtocols,
	} {
		header := http.Header{}
		if origin != "" {
			header.Set("Origin", origin)
		}
		conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header})
		if conn != nil {
			conn.CloseNow()
		}
		got := 0
		if resp != nil {
			got = resp.StatusCode
		}
		if got != want {
			t.Errorf("origin %q: HTTP %d (%v), want %d", origin, got, err, want)
		}
	}
}

// Without a token (none in the header, the init payload or the
// configuration), the subscription is refused with UNAUTHENTICATED.
func TestSubscriptionNeedsAToken(t *testing.T) {
	_, srv := newStreamHarness(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := dialWS(t, ctx, srv, nil, map[string]any{})
	defer conn.CloseNow()
	sub, _ := json.Marshal(map[string]any{"query": progressSubscription, "variables": map[string]any{"v": "vol", "a": "1"}})
	wsjson.Write(ctx, conn, wsMessage{ID: "1", Type: "subscribe", Payload: sub})
	var m wsMessage
	if err := wsjson.Read(ctx, conn, &m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.Payload), codeUnauthenticated) {
		t.Errorf("got %s %s, want an UNAUTHENTICATED error", m.Type, m.Payload)
	}
}

// A client that goes away mid-action stops the poller (it was the only
// subscriber) and leaves no goroutine behind.
func TestSubscriberLeavingStopsThePoller(t *testing.T) {
	h, srv := newStreamHarness(t, time.Hour)
	volumeID, _, actionID := startDetach(t, h)
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := dialWS(t, ctx, srv, http.Header{"Authorization": {"Bearer " + callerToken}}, nil)
	sub, _ := json.Marshal(map[string]any{"query": progressSubscription, "variables": map[string]any{"v": volumeID, "a": actionID}})
	wsjson.Write(ctx, conn, wsMessage{ID: "1", Type: "subscribe", Payload: sub})
	var m wsMessage
	if err := wsjson.Read(ctx, conn, &m); err != nil || m.Type != "next" {
		t.Fatalf("want the first state, got %+v (%v)", m, err)
	}
	conn.Close(websocket.StatusNormalClosure, "bye")
	srv.CloseClientConnections()
	goleak.VerifyNone(t, before)
}

// GET runs queries only: a mutation or subscription by GET is refused with
// 405 and `Allow: POST`, and nothing reaches DigitalOcean.
func TestWritesByGetAreRefused(t *testing.T) {
	stub := newStub()
	h := newHarness(t, stub)
	for _, q := range []string{
		`mutation { deleteVolume(input: {id: "v"}) { deletedVolumeId } }`,
		`subscription { volumeActionProgress(volumeId: "v", actionId: "1") { status } }`,
	} {
		req := httptest.NewRequest(http.MethodGet, "/query?query="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+callerToken)
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
			t.Errorf("%s: HTTP %d Allow %q, want 405 and POST: %s", q, rec.Code, rec.Header().Get("Allow"), rec.Body)
		}
		if !strings.Contains(rec.Body.String(), codeMethodNotAllowed) {
			t.Errorf("%s: body %s, want code %s", q, rec.Body, codeMethodNotAllowed)
		}
	}
	if calls := stub.calls(); len(calls) != 0 {
		t.Errorf("upstream requests %q, want none", calls)
	}
}
