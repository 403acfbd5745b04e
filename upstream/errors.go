package upstream

import (
	"fmt"
	"time"
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
)

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
	ID        string
	Message   string
	RequestID string
	RateLimit RateLimit
	// RetryAfter is from Retry-After or, failing that, ratelimit-reset; 0 when neither.
	RetryAfter time.Duration
	// Err is the underlying transport or decoding error, if any.
	Err error
}

func (e *Error) Error() string {
	switch {
	case e.Kind == KindTransport:
		return fmt.Sprintf("%s: %v", e.Endpoint, e.Err)
	case e.Kind == KindDecode && e.Err != nil:
		return fmt.Sprintf("%s: status %d: undecodable body: %v", e.Endpoint, e.Status, e.Err)
	case e.ID != "" || e.Message != "":
		return fmt.Sprintf("%s: status %d: %s: %s", e.Endpoint, e.Status, e.ID, e.Message)
	default:
		return fmt.Sprintf("%s: status %d", e.Endpoint, e.Status)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// HasBody reports whether DigitalOcean answered with an error body of its own.
func (e *Error) HasBody() bool { return e.Kind == KindHTTP && (e.ID != "" || e.Message != "") }
