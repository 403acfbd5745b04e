package graph

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
)

const balancePath = "/v2/customers/my/balance"

// Every extensions.code this server produces, with the extensions a client sees.
func TestErrorCodes(t *testing.T) {
	const requestID = "4d9d8375-3c56-4925-a3e7-eb137fed17e9"
	cases := []struct {
		name          string
		stub          func(*stubUpstream)
		authorization string // "" means the default Bearer callerToken
		tweak         func(*Config)
		query         string
		wantPath      string
		wantExt       map[string]any
		wantMessage   string
		wantNoCall    bool
	}{{
		name: "401 from DigitalOcean",
		stub: func(s *stubUpstream) {
			s.on(balancePath, 401, `{"id":"unauthorized","message":"Unable to authenticate you."}`)
		},
		wantExt:     map[string]any{"code": "UNAUTHENTICATED", "upstream": map[string]any{"status": 401.0, "id": "unauthorized", "requestId": ""}},
		wantMessage: "Unable to authenticate you.",
	}, {
		name: "403 from DigitalOcean",
		stub: func(s *stubUpstream) {
			s.on(balancePath, 403, `{"id":"forbidden","message":"You do not have access for the attempted action.","request_id":"`+requestID+`"}`)
		},
		wantExt:     map[string]any{"code": "FORBIDDEN", "upstream": map[string]any{"status": 403.0, "id": "forbidden", "requestId": requestID}},
		wantMessage: "You do not have access for the attempted action.",
	}, {
		name:        "404 from DigitalOcean",
		stub:        func(s *stubUpstream) {},
		query:       `{ volume(id: "506f78a4-e098-11e5-ad9f-000f53306ae1") { id } }`,
		wantPath:    "volume",
		wantExt:     map[string]any{"code": "NOT_FOUND", "upstream": map[string]any{"status": 404.0, "id": "not_found", "requestId": ""}},
		wantMessage: "The resource you requested could not be found.",
	}, {
		name: "429 with Retry-After",
		stub: func(s *stubUpstream) {
			s.on(balancePath, 429, `{"id":"too_many_requests","message":"API rate limit exceeded."}`, "Retry-After", "30", "X-Request-Id", requestID)
		},
		wantExt:     map[string]any{"code": "RATE_LIMITED", "retryAfter": 30.0, "upstream": map[string]any{"status": 429.0, "id": "too_many_requests", "requestId": requestID}},
		wantMessage: "API rate limit exceeded.",
	}, {
		name: "500 from DigitalOcean",
		stub: func(s *stubUpstream) {
			s.on(balancePath, 500, `{"id":"server_error","message":"Unexpected server-side error","request_id":"`+requestID+`"}`)
		},
		wantExt:     map[string]any{"code": "UPSTREAM_UNAVAILABLE", "upstream": map[string]any{"status": 500.0, "id": "server_error", "requestId": requestID}},
		wantMessage: "Unexpected server-side error",
	}, {
		name:        "502 with a proxy's HTML page",
		stub:        func(s *stubUpstream) { s.on(balancePath, 502, `<html><body>Bad Gateway</body></html>`) },
		wantExt:     map[string]any{"code": "UPSTREAM_UNAVAILABLE"},
		wantMessage: "DigitalOcean answered with status 502",
	}, {
		name:        "200 with a body that is not JSON",
		stub:        func(s *stubUpstream) { s.on(balancePath, 200, `<html>maintenance</html>`) },
		wantExt:     map[string]any{"code": "UPSTREAM_UNAVAILABLE"},
		wantMessage: "DigitalOcean answered with a body this server cannot read",
	}, {
		name:          "no token anywhere",
		stub:          func(s *stubUpstream) {},
		authorization: "none",
		wantExt:       map[string]any{"code": "UNAUTHENTICATED"},
		wantNoCall:    true,
	}, {
		name:          "Authorization that is not a bearer token",
		stub:          func(s *stubUpstream) {},
		authorization: "Basic dXNlcjpwYXNz",
		tweak:         func(c *Config) { c.DefaultToken = "server-token" },
		wantExt:       map[string]any{"code": "UNAUTHENTICATED"},
		wantNoCall:    true,
	}, {
		name:       "bad argument",
		stub:       func(s *stubUpstream) {},
		query:      `{ volumes(first: -1) { totalCount } }`,
		wantPath:   "volumes",
		wantExt:    map[string]any{"code": "BAD_USER_INPUT"},
		wantNoCall: true,
	}, {
		name:       "an id that would address another endpoint",
		stub:       func(s *stubUpstream) {},
		query:      `{ volume(id: "..") { id } }`,
		wantPath:   "volume",
		wantExt:    map[string]any{"code": "BAD_USER_INPUT"},
		wantNoCall: true,
	}, {
		name:        "a panic",
		stub:        func(s *stubUpstream) {},
		tweak:       func(c *Config) { c.Client = nil }, // every upstream call dereferences nil
		wantExt:     map[string]any{"code": "INTERNAL_SERVER_ERROR"},
		wantMessage: "internal server error",
		wantNoCall:  true,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stub := newStub()
			c.stub(stub)
			h := newHarness(t, stub, func(cfg *Config) {
				if c.tweak != nil {
					c.tweak(cfg)
				}
			})
			query, path := c.query, c.wantPath
			if query == "" {
				query, path = `{ balance { accountBalance } }`, "balance"
			}
			auth := "Bearer " + callerToken
			switch c.authorization {
			case "":
			case "none":
				auth = ""
			default:
				auth = c.authorization
			}
			resp := h.postAs(auth, query, nil)
			if len(resp.Errors) != 1 {
				t.Fatalf("want one error, got %+v", resp.Errors)
			}
			e := resp.Errors[0]
			if !reflect.DeepEqual(e.Extensions, c.wantExt) {
				t.Errorf("extensions: got %v, want %v", e.Extensions, c.wantExt)
			}
			if c.wantMessage != "" && e.Message != c.wantMessage {
				t.Errorf("message: got %q, want %q", e.Message, c.wantMessage)
			}
			if len(e.Path) != 1 || e.Path[0] != path {
				t.Errorf("path: got %v, want [%s]", e.Path, path)
			}
			if calls := stub.calls(); c.wantNoCall && len(calls) > 0 {
				t.Errorf("want no upstream call, got %q", calls)
			}
			if strings.Contains(e.Message, "nil pointer") || strings.Contains(e.Message, "runtime error") {
				t.Errorf("message leaks an internal error: %q", e.Message)
			}
		})
	}
}

// A panic's details go to the log, never to the client.
func TestPanicIsLoggedWithItsStack(t *testing.T) {
	h := newHarness(t, newStub(), func(c *Config) { c.Client = nil })
	resp := h.post(`{ balance { accountBalance } }`, nil)
	if len(resp.Errors) != 1 || resp.Errors[0].Message != "internal server error" {
		t.Fatalf("want one generic error, got %+v", resp.Errors)
	}
	if log := h.logs.String(); !strings.Contains(log, "nil pointer") || !strings.Contains(log, "goroutine") {
		t.Errorf("log should carry the panic and its stack, got: %s", log)
	}
}

// The transport being down is UPSTREAM_UNAVAILABLE, with no upstream details.
func TestUnreachableUpstream(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	h := newHarnessAt(t, dead.URL)
	resp := h.post(`{ balance { accountBalance } }`, nil)
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "UPSTREAM_UNAVAILABLE" {
		t.Fatalf("want one UPSTREAM_UNAVAILABLE, got %+v", resp.Errors)
	}
	if _, ok := resp.Errors[0].Extensions["upstream"]; ok {
		t.Errorf("no DigitalOcean answer, yet extensions.upstream is set: %v", resp.Errors[0].Extensions)
	}
}

// gqlgen's own codes are left as gqlgen sets them.
func TestGraphQLCodesAreGqlgens(t *testing.T) {
	h := newHarness(t, newStub())
	for query, code := range map[string]string{
		`{ balance {`:                            "GRAPHQL_PARSE_FAILED",
		`{ nope }`:                               "GRAPHQL_VALIDATION_FAILED",
		`{ volumes(first: "x") { totalCount } }`: "GRAPHQL_VALIDATION_FAILED",
	} {
		resp := h.post(query, nil)
		if len(resp.Errors) == 0 || resp.Errors[0].Extensions["code"] != code {
			t.Errorf("%s: want code %s, got %+v", query, code, resp.Errors)
		}
	}
}

// A failing field carries its path and leaves its siblings' data alone.
func TestFailingFieldDoesNotTakeSiblingsDown(t *testing.T) {
	sb := newSandboxHarness(t).sandbox
	failVolumes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/volumes" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(503)
			_, _ = w.Write([]byte(`{"id":"service_unavailable","message":"Service is temporarily unavailable."}`))
			return
		}
		sb.ServeHTTP(w, r)
	})
	h := newHarness(t, failVolumes)
	resp := h.post(`{ invoices(first: 2) { nodes { uuid amount } } volumes(first: 2) { nodes { id } } }`, nil)
	var data struct {
		Invoices *struct{ Nodes []struct{ UUID string } }
		Volumes  *struct{}
	}
	decode(t, resp, &data)
	if data.Invoices == nil || len(data.Invoices.Nodes) != 2 {
		t.Errorf("invoices should survive volumes failing, got %s", resp.Data)
	}
	if data.Volumes != nil {
		t.Errorf("volumes should be null, got %s", resp.Data)
	}
	if len(resp.Errors) != 1 || len(resp.Errors[0].Path) != 1 || resp.Errors[0].Path[0] != "volumes" || resp.Errors[0].Extensions["code"] != "UPSTREAM_UNAVAILABLE" {
		t.Errorf("want one UPSTREAM_UNAVAILABLE error at [volumes], got %+v", resp.Errors)
	}
}

// A nonexistent invoice is null with NOT_FOUND at ["invoice"].
func TestUnknownInvoiceIsNotFound(t *testing.T) {
	h := newSandboxHarness(t)
	for _, sel := range []string{"uuid", "amount", "items { totalCount }", "summary { amount } items(first: 3) { nodes { amount } }"} {
		resp := h.post(`{ invoice(uuid: "00000000-0000-0000-0000-000000000000") { `+sel+` } }`, nil)
		if string(resp.Data) != `{"invoice":null}` {
			t.Errorf("%s: data: got %s, want invoice null", sel, resp.Data)
		}
		if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "NOT_FOUND" || len(resp.Errors[0].Path) != 1 || resp.Errors[0].Path[0] != "invoice" {
			t.Errorf("%s: want one NOT_FOUND at [invoice], got %+v", sel, resp.Errors)
		}
	}
}

// A panic gqlgen recovers in a resolver becomes the same generic
// INTERNAL_SERVER_ERROR, its value and stack in the log only; so does any Go
// error this package did not map.
func TestRecoverFuncAndUnmappedErrors(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := graphql.WithResponseContext(t.Context(), graphql.DefaultErrorPresenter, nil)
	present := errorPresenter(logger)

	err := recoverFunc(logger)(ctx, "secret panic value")
	for name, e := range map[string]error{"panic": err, "unmapped": errors.New("dial tcp 10.0.0.7:5432: secret detail")} {
		got := present(ctx, e)
		if got.Message != "internal server error" || got.Extensions["code"] != "INTERNAL_SERVER_ERROR" {
			t.Errorf("%s: got %q %v, want the generic INTERNAL_SERVER_ERROR", name, got.Message, got.Extensions)
		}
	}
	if !strings.Contains(logs.String(), "secret panic value") || !strings.Contains(logs.String(), "goroutine") || !strings.Contains(logs.String(), "secret detail") {
		t.Errorf("the log should carry the panic, its stack and the unmapped error: %s", logs.String())
	}
}
