package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"
)

// The fuzz targets of the client's input side: whatever DigitalOcean (or a
// proxy in front of it) answers, a call returns data or one *Error with a
// known kind, never a panic, never data made up from a broken body.
//
//	go test -run '^$' -fuzz '^FuzzDecodeJSON$' -fuzztime 30s ./upstream
//	go test -run '^$' -fuzz '^FuzzResponse$' -fuzztime 30s ./upstream

// pageTypes are the shapes DecodeJSON fills, one per endpoint.
var pageTypes = []func() any{
	func() any { return new(VolumePage) },
	func() any {
		return new(struct {
			Volume *Volume `json:"volume"`
		})
	},
	func() any { return new(InvoicePage) },
	func() any { return new(InvoiceItemPage) },
	func() any { return new(InvoiceSummary) },
	func() any { return new(BillingHistoryPage) },
	func() any { return new(Balance) },
	func() any { return new(VolumeActionPage) },
	func() any { return new(VolumeActionResponse) },
	func() any { return new(SnapshotPage) },
	func() any { return new(SnapshotResponse) },
}

// fuzzSeedBodies are the spec's example bodies (testdata/) and their
// near misses: cut short, wrong types, wrong top-level value.
func fuzzSeedBodies(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, name := range []string{"volumes_all.json", "volume.json", "invoices.json", "invoice_items.json", "invoice_summary.json", "billing_history.json", "balance.json",
		"volume_actions.json", "volume_action_detach.json", "volume_snapshots.json", "volume_snapshot.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b, b[:len(b)/2])
	}
	return append(seeds,
		[]byte(``), []byte(`null`), []byte(`[]`), []byte(`{}`), []byte(`{"volumes":null,"links":{},"meta":{"total":"3"}}`),
		[]byte(`{"volumes":[{"size_gigabytes":"10","droplet_ids":null,"region":{"slug":"nyc1"}}]}`),
		[]byte(`{"invoices":[{"amount":12.30}],"invoice_preview":{"invoice_uuid":1e400}}`),
		[]byte(`{"meta":{"total":-1},"links":{"pages":{"next":"http://x/?page=2"}}} trailing`),
		[]byte("<html><body>502 Bad Gateway</body></html>"),
		[]byte(`{"amount": "1", "amount": 2}`), []byte("{\"name\":\"\xff\xfe\"}"),
	)
}

// FuzzDecodeJSON: DecodeJSON either fills the page from a valid JSON object
// or fails; it never accepts bytes that are not one valid JSON object.
func FuzzDecodeJSON(f *testing.F) {
	for i, b := range fuzzSeedBodies(f) {
		f.Add(b, uint8(i))
	}
	f.Fuzz(func(t *testing.T, body []byte, shape uint8) {
		out := pageTypes[int(shape)%len(pageTypes)]()
		err := DecodeJSON(body, out)
		// DecodeJSON's fast path must answer as encoding/json's semantics do.
		v1 := pageTypes[int(shape)%len(pageTypes)]()
		if v1Err := jsonv1.Unmarshal(body, v1); err == nil && v1Err == nil && !reflect.DeepEqual(out, v1) {
			t.Errorf("DecodeJSON(%q) = %+v, encoding/json's semantics give %+v", body, out, v1)
		}
		if err != nil {
			return
		}
		trimmed := bytes.TrimSpace(body)
		if !json.Valid(trimmed) || len(trimmed) == 0 || trimmed[0] != '{' {
			t.Errorf("DecodeJSON accepted a body that is not one JSON object: %q", body)
		}
	})
}

// roundTripFunc answers requests without a network, so each fuzz input costs
// microseconds rather than a TCP connection.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzResponse sends every endpoint's call through the real request path
// (go-retryablehttp, error decoding, content-type checks, streaming) against
// an answer built from the fuzz input: status, headers and body.
func FuzzResponse(f *testing.F) {
	for i, b := range fuzzSeedBodies(f) {
		f.Add(uint16(200), "application/json; charset=utf-8", "", "", b, uint8(i))
	}
	f.Add(uint16(429), "application/json", "30", "1444931833", []byte(`{"id":"too_many_requests","message":"API rate limit exceeded.","request_id":"r1"}`), uint8(0))
	f.Add(uint16(503), "text/html", "Wed, 21 Oct 2015 07:28:00 GMT", "", []byte("<html>503</html>"), uint8(1))
	f.Add(uint16(404), "application/json", "", "", []byte(`{"id":"not_found","message":"The resource you requested could not be found."}`), uint8(8))
	f.Add(uint16(200), "application/pdf", "", "", []byte("%PDF-1.4\n%%EOF\n"), uint8(5))
	f.Add(uint16(200), "text/csv", "", "", []byte("product,group_description\nDroplets,x\n"), uint8(4))
	f.Add(uint16(200), "text/html", "", "", []byte("<html>login</html>"), uint8(5))
	f.Add(uint16(401), "", "-1", "99999999999999999", []byte(""), uint8(2))

	f.Fuzz(func(t *testing.T, status uint16, contentType, retryAfter, reset string, body []byte, endpoint uint8) {
		code := 200 + int(status)%400 // 200..599: what a server can answer
		c, err := New(Config{
			BaseURL:    "http://do.invalid",
			Token:      "fuzz-token",
			MaxRetries: -1, // one exchange per input; the retry loop has its own tests
			HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				h := http.Header{}
				for k, v := range map[string]string{"Content-Type": contentType, "Retry-After": retryAfter, "Ratelimit-Reset": reset, "Ratelimit-Limit": "5000"} {
					if v != "" {
						h.Set(k, v)
					}
				}
				return &http.Response{
					StatusCode: code, Status: strconv.Itoa(code), Header: h, Request: r,
					Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
				}, nil
			})},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		call := everyEndpoint[int(endpoint)%len(everyEndpoint)]
		err = call.call(ctx, c)
		if ctx.Err() != nil {
			t.Fatalf("%s: the call did not return within 5s", call.name)
		}
		if err == nil {
			if code/100 != 2 {
				t.Errorf("%s: HTTP %d answered with success", call.name, code)
			}
			return
		}
		var ue *Error
		if !errors.As(err, &ue) {
			t.Fatalf("%s: error %T %v is not an *upstream.Error", call.name, err, err)
		}
		_ = ue.Error()
		switch {
		case code/100 != 2 && (ue.Kind != KindHTTP || ue.Status != code):
			t.Errorf("%s: HTTP %d became kind %d status %d, want KindHTTP with the status", call.name, code, ue.Kind, ue.Status)
		case code/100 == 2 && ue.Kind != KindDecode && ue.Kind != KindTransport:
			t.Errorf("%s: a %d answer failed with kind %d, want KindDecode or KindTransport", call.name, code, ue.Kind)
		case ue.RetryAfter < 0:
			t.Errorf("%s: negative RetryAfter %v from Retry-After %q, ratelimit-reset %q", call.name, ue.RetryAfter, retryAfter, reset)
		case len(ue.Message) > maxMessage+len("…") && !json.Valid(body):
			t.Errorf("%s: message of %d bytes from a non-JSON body, want at most %d", call.name, len(ue.Message), maxMessage)
		}
	})
}
