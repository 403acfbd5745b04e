package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// TestAppendResponseIsJSONMarshal: the POST transport's writer gives the bytes
// gqlgen's own (json.Marshal) gave, HTML escaping included.
func TestAppendResponseIsJSONMarshal(t *testing.T) {
	yes := true
	for name, resp := range map[string]*graphql.Response{
		"data only":                   {Data: json.RawMessage(`{"volumes":{"nodes":[{"id":"a","sizeGigabytes":10}]}}`)},
		"no data":                     {},
		"HTML and line separators":    {Data: json.RawMessage(`{"d":"<b>&amp;</b> \u2028 ` + "\u2028\u2029" + ` é"}`)},
		"errors, data and extensions": {Errors: gqlerror.List{{Message: "no <such> volume", Path: ast.Path{ast.PathName("volume")}, Extensions: map[string]any{"code": "NOT_FOUND"}}}, Data: json.RawMessage(`{"volume":null}`), Extensions: map[string]any{"rateLimit": map[string]any{"limit": 250, "remaining": 249, "resetAt": nil}, "cost": 3}},
		"errors without data":         {Errors: gqlerror.List{{Message: "refused"}}},
		"incremental fields":          {Data: json.RawMessage(`{}`), Label: "later", Path: ast.Path{ast.PathName("a"), ast.PathIndex(1)}, HasNext: &yes},
		// The values this server sets, written without reflection (appendExtensions).
		"rate limit and cost":      {Data: json.RawMessage(`{}`), Extensions: map[string]any{"rateLimit": &rateLimitValue{Limit: 5000, Remaining: 4999, ResetAt: "2026-11-30T18:00:00Z"}, "cost": &costValue{CacheHits: 2, UpstreamCalls: 7}}},
		"rate limit without reset": {Data: json.RawMessage(`{}`), Extensions: map[string]any{"rateLimit": &rateLimitValue{Limit: 1, Remaining: -1}, "cost": &costValue{}}},
		"no upstream call":         {Data: json.RawMessage(`{}`), Extensions: map[string]any{"rateLimit": nil, "cost": &costValue{}}},
		"a reset to escape":        {Data: json.RawMessage(`{}`), Extensions: map[string]any{"rateLimit": &rateLimitValue{ResetAt: "<\"é\u2028\n"}}},
		"another extension beside": {Data: json.RawMessage(`{}`), Extensions: map[string]any{"rateLimit": nil, "complexity": 12}},
		"a key to escape":          {Data: json.RawMessage(`{}`), Extensions: map[string]any{"a<b": &costValue{}}},
		"empty extensions":         {Data: json.RawMessage(`{}`), Extensions: map[string]any{}},
		"five extensions":          {Data: json.RawMessage(`{}`), Extensions: map[string]any{"e": nil, "d": nil, "c": &costValue{}, "b": nil, "a": nil}},
	} {
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got bytes.Buffer
		appendResponse(&got, resp)
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got.Bytes(), want)
		}
	}
}

// BenchmarkWriteResponse: one answer of 20 volumes, written by the POST
// transport's writer and by json.Marshal (gqlgen's), for the CPU each costs.
func BenchmarkWriteResponse(b *testing.B) {
	var data bytes.Buffer
	data.WriteString(`{"volumes":{"totalCount":20,"nodes":[`)
	for i := range 20 {
		if i > 0 {
			data.WriteByte(',')
		}
		data.WriteString(`{"id":"506f78a4-e098-11e5-ad9f-000f53306ae1","name":"example-volume-` + string(rune('a'+i)) + `","sizeGigabytes":10,"region":{"slug":"nyc1","name":"New York 1"},"dropletIds":[3164444],"tags":["aninterestingtag"],"createdAt":"2020-03-02T17:00:49Z"}`)
	}
	data.WriteString(`]}}`)
	resp := &graphql.Response{Data: data.Bytes(), Extensions: map[string]any{
		"rateLimit": &rateLimitValue{Limit: 250, Remaining: 249, ResetAt: "2026-11-30T18:00:00Z"},
		"cost":      &costValue{UpstreamCalls: 1},
	}}
	b.Run("appendResponse", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			writeResponse(io.Discard, resp)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			out, _ := json.Marshal(resp)
			io.Discard.Write(out)
		}
	})
}

// FuzzDecodeParams: a POST body reads as gqlgen's transport read it with
// encoding/json (the same params, numbers as json.Number; an error where it
// gave one), whichever path decodeParams took.
func FuzzDecodeParams(f *testing.F) {
	for _, body := range []string{
		`{"query":"{ volumes { nodes { id } } }"}`,
		`{"query":"query Q($a: ID!) { invoice(uuid: $a) { uuid } }","operationName":"Q","variables":{"a":"x","n":1.50,"big":12345678901234567890,"l":[1,{"b":null}]}}`,
		`{"query":"{ a }","extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}`,
		`{"QUERY":"{ a }","OperationName":"b","variables":null}`,
		`{"query":"{ a }","query":"{ b }"}`,
		`{"query":"{ a }","QUERY":"{ b }"}`,
		`{"query":"{ a }","operation_name":"x"}`,
		`{"query":"{ a }"} trailing`,
		`{"query":"\xff\ud800 a"}`,
		`{"query":1}`,
		`{"query":"{ a }","variables":"not an object"}`,
		`{"query":"{ a }","variables":{"a":1,"a":2}}`,
		`[]`, ``, ` `, `null`, `{`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want graphql.RawParams
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		wantErr := dec.Decode(&want)
		var got graphql.RawParams
		gotErr := decodeParams(body, &got)
		if (gotErr != nil) != (wantErr != nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("body %q: error %v, encoding/json's %v", body, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("body %q:\n got %#v\nwant %#v", body, got, want)
		}
	})
}

// BenchmarkDecodeParams: the peers' volumes and dashboard bodies, read by
// decodeParams and by encoding/json (gqlgen's transport).
func BenchmarkDecodeParams(b *testing.B) {
	for name, body := range map[string]string{
		"volumes":   `{"query":"{ volumes(first: 20) { nodes { id name sizeGigabytes region { slug } } } }"}`,
		"dashboard": `{"query":"query D($a: String!, $b: String!, $c: String!) { a: invoice(uuid: $a) { summary { amount } } b: invoice(uuid: $b) { summary { amount } } c: invoice(uuid: $c) { summary { amount } } }","variables":{"a":"fdabb512-6faf-443c-ba2e-665452332a9e","b":"8b6d4c7e-2a1f-4a8e-9a55-3c2a7d6e1f00","c":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}}`,
	} {
		b.Run(name+"/decodeParams", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var p graphql.RawParams
				if err := decodeParams([]byte(body), &p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var p graphql.RawParams
				dec := json.NewDecoder(bytes.NewReader([]byte(body)))
				dec.UseNumber()
				if err := dec.Decode(&p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
