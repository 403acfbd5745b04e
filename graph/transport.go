package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// postTransport is gqlgen's POST transport (transport.POST: which requests it
// takes, the content negotiation, the request decoding and the statuses, as in
// v0.17.98) but for how the answer is written: encoding/json would validate and
// compact the whole executed data again (a json.RawMessage, appendCompact in
// the profiles), where writeResponse copies it as gqlgen wrote it.
type postTransport struct{ transport.POST }

const (
	contentTypeJSON            = "application/json"
	contentTypeGraphQLResponse = "application/graphql-response+json"
)

func (postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", contentType)
	start := graphql.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeResponse(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("could not read request body: %+v", err)}))
		return
	}
	var params graphql.RawParams
	if err := decodeParams(body, &params); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeResponse(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("json request body could not be decoded: %+v body:%s", err, string(body))}))
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	rc, opErr := exec.CreateOperationContext(ctx, &params)
	if opErr != nil {
		status := http.StatusOK
		if errcode.GetErrorKind(opErr) == errcode.KindProtocol {
			status = http.StatusUnprocessableEntity
			if contentType == contentTypeGraphQLResponse {
				status = http.StatusBadRequest
			}
		}
		w.WriteHeader(status)
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, rc), opErr))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	writeResponse(w, responses(ctx))
}

// decodeParams reads a POST body into params as gqlgen's transport does
// (encoding/json, numbers as json.Number, the first JSON value deciding, the
// same errors), the query and operation name on json/v2's path: encoding/json
// scans the body twice and reflects, 1.5% of a small query's CPU.
func decodeParams(body []byte, params *graphql.RawParams) error {
	if decodeParamsFast(body, params) {
		return nil
	}
	*params = graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // variables keep their numbers' text, as gqlgen reads them
	return dec.Decode(params)
}

// postBody is graphql.RawParams with the variables and extensions kept as
// JSON text, which encoding/json then decodes as it would have.
type postBody struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     jsontext.Value `json:"variables"`
	Extensions    jsontext.Value `json:"extensions"`
}

// encodingJSONNames are encoding/json's ways with a body json/v2 keeps by
// default: invalid UTF-8 replaced, names matched in any case (but not with
// other delimiters), null leaving a field as it was. Duplicate names are
// refused here, so encoding/json's own path reads them its way.
var encodingJSONNames = jsonv2.JoinOptions(
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(true),
	jsonv2.MatchCaseInsensitiveNames(true),
	jsonv1.MatchCaseSensitiveDelimiter(true),
	jsonv1.MergeWithLegacySemantics(true),
)

// decodeParamsFast decodes a body that is exactly one JSON object that
// json/v2 reads without complaint (anything else takes encoding/json's path,
// which gives its own answer or error); false when it did not.
func decodeParamsFast(body []byte, params *graphql.RawParams) bool {
	var b postBody
	if jsonv2.Unmarshal(body, &b, encodingJSONNames) != nil {
		return false
	}
	params.Query, params.OperationName = b.Query, b.OperationName
	return decodeObject(b.Variables, &params.Variables) && decodeObject(b.Extensions, &params.Extensions)
}

// decodeObject decodes an optional JSON object as encoding/json does into a
// map with UseNumber; false when text is not one (null and absent are nil).
func decodeObject(text jsontext.Value, m *map[string]any) bool {
	if len(text) == 0 || string(text) == "null" {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	return dec.Decode(m) == nil
}

// responseContentType is transport.POST's choice by the Accept header: the
// first of application/json, application/graphql-response+json or a wildcard
// that it names; application/json when there is none.
func responseContentType(accept string) string {
	if accept == "" {
		return contentTypeJSON
	}
	for part := range strings.SplitSeq(accept, ",") {
		mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mediaType {
		case "*/*", "application/*", contentTypeJSON:
			return contentTypeJSON
		case contentTypeGraphQLResponse:
			return contentTypeGraphQLResponse
		}
	}
	return contentTypeGraphQLResponse
}

// responseBuffers keep the answers' buffers between requests.
var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeResponse writes resp in one Write, exactly as json.Marshal(resp) would.
func writeResponse(w io.Writer, resp *graphql.Response) {
	buf := responseBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	appendResponse(buf, resp)
	w.Write(buf.Bytes())
	if buf.Cap() <= 1<<20 { // a rare huge answer is not kept
		responseBuffers.Put(buf)
	}
}

// responseTail is graphql.Response after its data, with the same JSON names.
type responseTail struct {
	Label      string         `json:"label,omitempty"`
	Path       ast.Path       `json:"path,omitempty"`
	HasNext    *bool          `json:"hasNext,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// appendResponse writes the bytes json.Marshal(resp) gives. The data is
// gqlgen's own output, compact already: it is copied with only the HTML
// escaping encoding/json adds (<, >, &, U+2028, U+2029), not re-validated.
func appendResponse(buf *bytes.Buffer, resp *graphql.Response) {
	buf.WriteByte('{')
	if len(resp.Errors) > 0 {
		errs, err := json.Marshal(resp.Errors)
		if err != nil {
			panic("marshal GraphQL errors: " + err.Error()) // as gqlgen's writer does
		}
		buf.WriteString(`"errors":`)
		buf.Write(errs)
		buf.WriteByte(',')
	}
	buf.WriteString(`"data":`)
	if len(resp.Data) == 0 {
		buf.WriteString("null")
	} else {
		json.HTMLEscape(buf, resp.Data)
	}
	if resp.Label == "" && resp.Path == nil && resp.HasNext == nil && appendExtensions(buf, resp.Extensions) {
		buf.WriteByte('}')
		return
	}
	tail, err := json.Marshal(responseTail{Label: resp.Label, Path: resp.Path, HasNext: resp.HasNext, Extensions: resp.Extensions})
	if err != nil {
		panic("marshal GraphQL response extensions: " + err.Error())
	}
	if len(tail) > 2 { // not {}
		buf.WriteByte(',')
		buf.Write(tail[1 : len(tail)-1])
	}
	buf.WriteByte('}')
}

// extensionValue is a value this server puts in a response's extensions,
// written as encoding/json writes it but without its reflection and map
// sorting (a quarter of writing a small answer).
type extensionValue interface{ appendJSON(b []byte) []byte }

// appendExtensions writes `,"extensions":{...}` exactly as json.Marshal would
// (no entry when empty, keys sorted) when every value is nil or an
// extensionValue and every key is a plain name; otherwise it writes nothing
// and reports false.
func appendExtensions(buf *bytes.Buffer, ext map[string]any) bool {
	if len(ext) == 0 {
		return true
	}
	var room [4]string
	keys := room[:0]
	for k, v := range ext {
		if _, ok := v.(extensionValue); (!ok && v != nil) || !plainJSON(k) || len(keys) == len(room) {
			return false
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := append(buf.AvailableBuffer(), `,"extensions":{`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), k...), `":`...)
		if v, ok := ext[k].(extensionValue); ok {
			b = v.appendJSON(b)
		} else {
			b = append(b, "null"...)
		}
	}
	buf.Write(append(b, '}'))
	return true
}

// plainJSON reports whether s is written in JSON as it is, between quotes:
// printable ASCII that encoding/json does not escape.
func plainJSON(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendJSONString writes s as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	if plainJSON(s) {
		return append(append(append(b, '"'), s...), '"')
	}
	quoted, _ := json.Marshal(s)
	return append(b, quoted...)
}

func (v *rateLimitValue) appendJSON(b []byte) []byte {
	b = strconv.AppendInt(append(b, `{"limit":`...), int64(v.Limit), 10)
	b = strconv.AppendInt(append(b, `,"remaining":`...), int64(v.Remaining), 10)
	b = append(b, `,"resetAt":`...)
	switch at := v.ResetAt.(type) {
	case nil:
		b = append(b, "null"...)
	case string:
		b = appendJSONString(b, at)
	default:
		out, _ := json.Marshal(at)
		b = append(b, out...)
	}
	return append(b, '}')
}

func (v *costValue) appendJSON(b []byte) []byte {
	b = strconv.AppendInt(append(b, `{"cacheHits":`...), v.CacheHits, 10)
	b = strconv.AppendInt(append(b, `,"upstreamCalls":`...), v.UpstreamCalls, 10)
	return append(b, '}')
}
