package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oceangraph/oceangraph/upstream"
)

// The values of errors[].extensions.code this server sets (gqlgen sets its own
// GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED... and they are left alone).
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeRateLimited     = "RATE_LIMITED"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeBadRequest      = "BAD_REQUEST"
	// CodeRequestBodyTooLarge: a /query body over the server's limit (HTTP 413).
	CodeRequestBodyTooLarge = "REQUEST_BODY_TOO_LARGE"
	CodeUpstreamUnavailable = "UPSTREAM_UNAVAILABLE"
	CodeInternal            = "INTERNAL_SERVER_ERROR"
	// The guards' refusals (graph/handler.go's guards): COMPLEXITY_LIMIT_EXCEEDED
	// is gqlgen's own; the others follow its pattern.
	CodeComplexityLimitExceeded = "COMPLEXITY_LIMIT_EXCEEDED"
	CodeDepthLimitExceeded      = "DEPTH_LIMIT_EXCEEDED"
	CodeUpstreamBudgetExceeded  = "UPSTREAM_BUDGET_EXCEEDED"
)

// ErrUnauthenticated: the request carries no usable DigitalOcean token (none,
// none configured, or an Authorization header that is not "Bearer <token>").
var ErrUnauthenticated = errors.New("a DigitalOcean token is required: send Authorization: Bearer <token>")

// InputError is a bad argument, raised before any upstream call. Its message
// is shown to the client as is.
type InputError struct{ Message string }

func (e *InputError) Error() string { return e.Message }

// The argument checks, one named error each.
var (
	ErrFirstAndLast    = &InputError{"pass either `first` or `last`, not both"}
	ErrNegativeSize    = &InputError{"`first` and `last` must not be negative"}
	ErrPageTooLarge    = &InputError{fmt.Sprintf("a page may hold at most %d items", maxPageSize)}
	ErrBadCursor       = &InputError{"the cursor was not issued by this connection"}
	ErrEmptyInvoiceRef = &InputError{"`uuid` must not be empty"}
	ErrEmptyVolumeID   = &InputError{"`id` must not be empty"}
)

// errPanic stands for a recovered panic; its details go to the log only.
var errPanic = errors.New("panic")

// internalMessage is all a client learns of a fault of this server.
const internalMessage = "internal server error"

// errorPresenter is the one place errors become GraphQL errors: it sets
// extensions.code (and retryAfter, upstream) and keeps internal details out of
// the response.
func errorPresenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		if gqlErr.Err == nil {
			// An error gqlgen or a resolver built on purpose (validation, argument
			// coercion): its message is meant for the client.
			if _, coded := gqlErr.Extensions["code"]; !coded && !documentParsed(ctx) {
				// gqlgen refused the request before parsing its document (a POST body
				// that is not JSON, variables not an object, bad APQ data) and gave no code.
				if gqlErr.Extensions == nil {
					gqlErr.Extensions = map[string]any{}
				}
				gqlErr.Extensions["code"] = CodeBadRequest
				// gqlgen's decode error repeats the whole body (up to the body limit) after
				// " body:"; the client sent it and needs only the reason.
				if reason, _, echoed := strings.Cut(gqlErr.Message, " body:"); echoed {
					gqlErr.Message = reason
				}
			}
			return gqlErr
		}
		cause := gqlErr.Err
		if gqlErr.Extensions == nil {
			gqlErr.Extensions = map[string]any{}
		}
		if msg, ok := badRepresentation(gqlErr); ok {
			gqlErr.Message = msg
			gqlErr.Extensions["code"] = CodeBadUserInput
			return gqlErr
		}
		var (
			ue    *upstream.Error
			input *InputError
		)
		switch {
		case errors.Is(cause, ErrUnauthenticated):
			gqlErr.Message = ErrUnauthenticated.Error()
			gqlErr.Extensions["code"] = CodeUnauthenticated
		case errors.As(cause, &input):
			gqlErr.Message = input.Message
			gqlErr.Extensions["code"] = CodeBadUserInput
		case errors.As(cause, &ue):
			presentUpstream(gqlErr, ue)
		case errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded):
			gqlErr.Message = "DigitalOcean did not answer in time"
			gqlErr.Extensions["code"] = CodeUpstreamUnavailable
		default:
			if !errors.Is(cause, errPanic) {
				logger.ErrorContext(ctx, "internal error", "path", gqlErr.Path.String(), "err", cause)
			}
			gqlErr.Message = internalMessage
			gqlErr.Extensions["code"] = CodeInternal
		}
		return gqlErr
	}
}

// documentParsed reports whether gqlgen got as far as parsing the request's document.
func documentParsed(ctx context.Context) bool {
	return graphql.HasOperationContext(ctx) && graphql.GetOperationContext(ctx).Doc != nil
}

// presentUpstream maps a failed DigitalOcean call. The message of an answer
// with DigitalOcean's error body is DigitalOcean's own words and is shown; a
// transport or decoding failure is described generically.
func presentUpstream(gqlErr *gqlerror.Error, ue *upstream.Error) {
	ext := gqlErr.Extensions
	switch {
	case ue.Kind == upstream.KindTransport:
		gqlErr.Message = "DigitalOcean could not be reached"
		ext["code"] = CodeUpstreamUnavailable
	case ue.Kind == upstream.KindDecode:
		gqlErr.Message = "DigitalOcean answered with a body this server cannot read"
		ext["code"] = CodeUpstreamUnavailable
	case ue.Kind == upstream.KindRequest:
		// The client refused to send the request (an id such as ".." that would address another endpoint).
		gqlErr.Message = "the id does not address a DigitalOcean resource"
		ext["code"] = CodeBadUserInput
	case ue.Status == 401:
		ext["code"] = CodeUnauthenticated
	case ue.Status == 403:
		ext["code"] = CodeForbidden
	case ue.Status == 404:
		ext["code"] = CodeNotFound
	case ue.Status == 429:
		ext["code"] = CodeRateLimited
		ext["retryAfter"] = int(math.Ceil(ue.RetryAfter.Seconds()))
	case ue.Status >= 500:
		ext["code"] = CodeUpstreamUnavailable
	default:
		ext["code"] = CodeUpstreamUnavailable
	}
	if ue.Kind == upstream.KindHTTP {
		gqlErr.Message = fmt.Sprintf("DigitalOcean answered with status %d", ue.Status)
		if answeredWithErrorBody(ue) {
			if ue.Message != "" {
				gqlErr.Message = ue.Message
			}
			ext["upstream"] = map[string]any{"status": ue.Status, "id": ue.ID, "requestId": ue.RequestID}
		}
	}
}

// answeredWithErrorBody reports whether DigitalOcean sent its own error body
// ({"id","message","request_id"}; id is always there). A body that is not
// (an HTML page from a proxy) is neither shown nor described as DigitalOcean's.
func answeredWithErrorBody(ue *upstream.Error) bool {
	return ue.Kind == upstream.KindHTTP && ue.ID != ""
}

// recoverFunc turns a panic in a resolver into INTERNAL_SERVER_ERROR; the
// panic value and the stack go to the log only.
func recoverFunc(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		path := ""
		if fc := graphql.GetFieldContext(ctx); fc != nil {
			path = fc.Path().String()
		}
		logger.ErrorContext(ctx, "panic in resolver", "path", path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return errPanic
	}
}

// limitError is a guard's refusal with its code and figures in extensions.
func limitError(code, message string, figures map[string]any) *gqlerror.Error {
	err := gqlerror.Errorf("%s", message)
	errcode.Set(err, code)
	for k, v := range figures {
		err.Extensions[k] = v
	}
	return err
}
