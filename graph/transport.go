package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
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
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // variables keep their numbers' text, as gqlgen reads them
	if err := dec.Decode(&params); err != nil {
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
