package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrorKind says how a call to DigitalOcean failed.
type ErrorKind int

const (
	// KindHTTP: DigitalOcean answered with a non-2xx status.
	KindHTTP ErrorKind = iota
	// KindTransport: no answer (refused or reset connection, timeout, deadline).
	KindTransport
	// KindDecode: a 2xx whose body is not what the endpoint promises.
	KindDecode
	// KindRequest: the call was never sent, e.g. an empty id or "..", which
	// would otherwise address a different endpoint.
	KindRequest
)

// Outcome says whether a write that failed may nevertheless have happened.
type Outcome int

const (
	// OutcomeNotApplied: DigitalOcean refused the write (a 4xx) or never
	// received it (the connection was refused); also every failed read.
	OutcomeNotApplied Outcome = iota
	// OutcomeUnknown: the request may have reached DigitalOcean and been
	// carried out: a timeout or broken connection after sending, a 5xx, a 3xx.
	// It is not retried; the caller should look (list the volumes, the
	// volume's actions) before trying again.
	OutcomeUnknown
	// OutcomeApplied: DigitalOcean answered 2xx, but the answer could not be read.
	OutcomeApplied
)

// String is the outcome's name for a GraphQL extension: NOT_APPLIED, UNKNOWN, APPLIED.
func (o Outcome) String() string {
	switch o {
	case OutcomeUnknown:
		return "UNKNOWN"
	case OutcomeApplied:
		return "APPLIED"
	}
	return "NOT_APPLIED"
}

// ErrInvalidInput matches (errors.Is) an *Error by which DigitalOcean refused
// the request's input; AsRefusal classifies it.
var ErrInvalidInput = errors.New("DigitalOcean refused the input")

// ErrorBody is DigitalOcean's error object, as every failing endpoint sends it.
type ErrorBody struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// Error is the one error type every failed call returns; resolvers inspect it
// with errors.As to choose a GraphQL error code.
type Error struct {
	// Endpoint is the operation's route template, e.g. EndpointVolume.
	Endpoint string
	Kind     ErrorKind
	// Status is the HTTP status; 0 when DigitalOcean never answered.
	Status int
	// ID, Message and RequestID come from DigitalOcean's error body
	// ({"id","message","request_id"}); RequestID falls back to x-request-id.
	// A body that is not such JSON becomes Message, shortened.
	ID        string
	Message   string
	RequestID string
	RateLimit RateLimit
	// RetryAfter is from Retry-After or, on a 429 without it, ratelimit-reset; 0 when neither.
	RetryAfter time.Duration
	// Attempts is how many HTTP exchanges the call made, retries included.
	Attempts int
	// Outcome says whether a failed POST or DELETE may have been carried out;
	// OutcomeNotApplied for every read.
	Outcome Outcome
	// Err is the underlying transport or decoding error, if any; for a deadline
	// it wraps context.DeadlineExceeded.
	Err error
}

// Error is one line naming the endpoint and the cause; it never holds a token.
func (e *Error) Error() string {
	switch {
	case e.Kind == KindTransport || e.Kind == KindRequest:
		return fmt.Sprintf("%s: %v", e.Endpoint, e.Err)
	case e.Kind == KindDecode && e.Err != nil:
		return fmt.Sprintf("%s: status %d: undecodable body: %v", e.Endpoint, e.Status, e.Err)
	case e.ID != "" || e.Message != "":
		return fmt.Sprintf("%s: status %d: %s: %s", e.Endpoint, e.Status, e.ID, e.Message)
	default:
		return fmt.Sprintf("%s: status %d", e.Endpoint, e.Status)
	}
}

// Unwrap exposes the cause, so errors.Is(err, context.DeadlineExceeded) works.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalidInput) hold for DigitalOcean's refusals of the input.
func (e *Error) Is(target error) bool { return target == ErrInvalidInput && e.Refused() }

// Refused reports whether DigitalOcean refused the request's input: a 400,
// 409 or 422 (validation, a taken name, an attached volume). See AsRefusal.
func (e *Error) Refused() bool {
	return e.Kind == KindHTTP && (e.Status == http.StatusBadRequest || e.Status == http.StatusConflict || e.Status == http.StatusUnprocessableEntity)
}

// HasBody reports whether DigitalOcean answered with an error body of its own.
func (e *Error) HasBody() bool { return e.Kind == KindHTTP && (e.ID != "" || e.Message != "") }

// Transient reports whether the failure may go away on a later try (5xx, 429,
// no answer, an undecodable body); a per-request cache must not keep it.
func (e *Error) Transient() bool {
	if errors.Is(e.Err, ErrBodyBudgetExceeded) {
		return false // the request's bound, not DigitalOcean's state: asking again cannot help
	}
	switch e.Kind {
	case KindTransport, KindDecode:
		return true
	case KindHTTP:
		return e.Status == 429 || e.Status >= 500
	}
	return false
}

// maxErrorBody bounds how much of an error body is read; DigitalOcean's are tiny.
const maxErrorBody = 64 << 10

// maxMessage bounds a Message taken from a body that is not DigitalOcean's JSON
// (an HTML page from a proxy, say): enough to recognise it, not enough to flood a log.
const maxMessage = 200

// errorFrom reads DigitalOcean's error body and headers into an *Error and
// closes the body.
func errorFrom(endpoint string, resp *http.Response, now time.Time) *Error {
	defer resp.Body.Close()
	e := responseError(endpoint, KindHTTP, resp, now)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var wire ErrorBody
	if json.Unmarshal(body, &wire) == nil && (wire.ID != "" || wire.Message != "") {
		e.ID, e.Message = wire.ID, wire.Message
		if wire.RequestID != "" {
			e.RequestID = wire.RequestID
		}
	} else {
		e.Message = shorten(string(body), maxMessage)
	}
	return e
}

// responseError is an *Error carrying what every response's headers say.
func responseError(endpoint string, kind ErrorKind, resp *http.Response, now time.Time) *Error {
	e := &Error{
		Endpoint:  endpoint,
		Kind:      kind,
		Status:    resp.StatusCode,
		RequestID: resp.Header.Get("X-Request-Id"),
		RateLimit: parseRateLimit(resp.Header, now),
	}
	if resp.StatusCode/100 != 2 {
		e.RetryAfter, _ = serverWait(resp, now)
	}
	return e
}

// shorten collapses whitespace and cuts s to at most n bytes on a rune boundary.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
