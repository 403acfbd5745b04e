package graph

import (
	"bytes"
	"encoding/json"
	"io"
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
