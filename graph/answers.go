package graph

import (
	"encoding/json"
	"net/http"
)

// The GraphQL-over-HTTP spec's two media types answer a request that never ran
// (it did not parse, validate or have its variables coerced) differently:
// application/json with 200, application/graphql-response+json with 4xx; with
// both, such an answer has no data entry. gqlgen picks the media type from
// Accept and writes 422 or 400 and `"data": null`; answerWriter settles the
// status and the body before they go out.

// answerWriter holds back the status gqlgen's transports write until the body
// comes, to settle both by the media type and by what the error presenter
// learned (refusedWith).
type answerWriter struct {
	http.ResponseWriter
	scope  *requestScope
	status int
	sent   bool
}

func (w *answerWriter) WriteHeader(status int) {
	if !w.sent && w.status == 0 {
		w.status = status
	}
}

func (w *answerWriter) Write(body []byte) (int, error) {
	if !w.sent {
		body = w.settle(body)
	}
	if _, err := w.ResponseWriter.Write(body); err != nil {
		return 0, err
	}
	return len(body), nil
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *answerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish sends a status that came without a body (an OPTIONS answer).
func (w *answerWriter) finish() {
	if !w.sent && w.status != 0 {
		w.sent = true
		w.ResponseWriter.WriteHeader(w.status)
	}
}

// settle writes the final status and returns the body to send.
func (w *answerWriter) settle(body []byte) []byte {
	w.sent = true
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	neverRan := status >= 400
	if refused := w.scope.refusal(); refused != 0 {
		status, neverRan = refused, true
	} else if status == http.StatusUnprocessableEntity && isJSON(w.Header().Get("Content-Type")) {
		// gqlgen's 422 for a document that did not parse or validate; the spec's
		// application/json answers it with 200.
		status = http.StatusOK
	}
	if neverRan {
		body = withoutData(body)
	}
	if status == http.StatusMethodNotAllowed && w.Header().Get("Allow") == "" {
		w.Header().Set("Allow", http.MethodPost) // a mutation or subscription by GET (queriesOnlyOverGet)
	}
	w.ResponseWriter.WriteHeader(status)
	return body
}

// withoutData drops the data entry of a GraphQL response that never executed.
func withoutData(body []byte) []byte {
	var resp struct {
		Errors     json.RawMessage `json:"errors,omitempty"`
		Data       json.RawMessage `json:"data,omitempty"`
		Extensions json.RawMessage `json:"extensions,omitempty"`
	}
	if json.Unmarshal(body, &resp) != nil || (resp.Data != nil && string(resp.Data) != "null") {
		return body
	}
	resp.Data = nil
	out, err := json.Marshal(resp)
	if err != nil {
		return body
	}
	return out
}
