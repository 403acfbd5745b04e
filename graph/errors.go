package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
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
	codeUnauthenticated = "UNAUTHENTICATED"
	codeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	codeRateLimited     = "RATE_LIMITED"
	codeBadUserInput    = "BAD_USER_INPUT"
	CodeBadRequest      = "BAD_REQUEST"
	// CodeRequestBodyTooLarge: a /query body over the server's limit (HTTP 413).
	CodeRequestBodyTooLarge = "REQUEST_BODY_TOO_LARGE"
	codeUpstreamUnavailable = "UPSTREAM_UNAVAILABLE"
	codeInternal            = "INTERNAL_SERVER_ERROR"
	// codeShuttingDown: the server stopped while the request was still running.
	codeShuttingDown = "SHUTTING_DOWN"
	// The guards' refusals (graph/handler.go's guards): COMPLEXITY_LIMIT_EXCEEDED
	// is gqlgen's own; the others follow its pattern.
	codeComplexityLimitExceeded = "COMPLEXITY_LIMIT_EXCEEDED"
	codeDepthLimitExceeded      = "DEPTH_LIMIT_EXCEEDED"
	CodeUpstreamBudgetExceeded  = "UPSTREAM_BUDGET_EXCEEDED"
	// codeBase64BudgetExceeded: the operation's base64 writes do not fit the
	// per-request or the process-wide bound on base64 output.
	codeBase64BudgetExceeded = "BASE64_BUDGET_EXCEEDED"
	// codeUpstreamBytesExceeded: the request's DigitalOcean bodies passed the
	// bound on the bytes one request may hold.
	codeUpstreamBytesExceeded = "UPSTREAM_BYTES_EXCEEDED"
	// codeIdempotencyKeyInUse: a mutation with the same idempotency key still runs.
	codeIdempotencyKeyInUse = "IDEMPOTENCY_KEY_IN_USE"
)

// errUnauthenticated: the request carries no usable DigitalOcean token (none,
// none configured, or an Authorization header that is not "Bearer <token>").
var errUnauthenticated = errors.New("a DigitalOcean token is required: send Authorization: Bearer <token>")

// inputError is a bad argument, raised before any upstream call. Its message
// is shown to the client as is.
type inputError struct{ Message string }

func (e *inputError) Error() string { return e.Message }

// The argument checks, one named error each.
var (
	errFirstAndLast = &inputError{"pass either `first` or `last`, not both"}
	errNegativeSize = &inputError{"`first` and `last` must not be negative"}
	errPageTooLarge = &inputError{fmt.Sprintf("a page may hold at most %d items", maxPageSize)}
	errBadCursor    = &inputError{"the cursor was not issued by this connection"}
	errBadActionID  = &inputError{"`actionId` is DigitalOcean's action number, e.g. 72531856"}
	// errIdempotencyMismatch: the same key (and token) within 24 hours with another input.
	errIdempotencyMismatch = &inputError{"this idempotencyKey was used with a different input in the last 24 hours; use a new key for a new mutation"}
)

// errIdempotencyKeyInUse: a mutation with the same key ran for longer than a repeat waits for it.
var errIdempotencyKeyInUse = errors.New("a mutation with this idempotencyKey is still running; repeat it in a moment to get its answer")

// ErrShuttingDown is the cause with which a server ends the contexts of the
// requests still running at its shutdown deadline; they answer SHUTTING_DOWN.
var ErrShuttingDown = errors.New("the server is shutting down: send the request again (another replica will answer)")

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
			if msg, ok := mistypedVariable(ctx, gqlErr); ok {
				gqlErr.Message = msg
			}
			if _, coded := gqlErr.Extensions["code"]; !coded && !documentParsed(ctx) {
				// gqlgen refused the request before parsing its document (a POST body
				// that is not JSON, variables not an object, bad APQ data) and gave no code.
				if gqlErr.Extensions == nil {
					gqlErr.Extensions = map[string]any{}
				}
				gqlErr.Extensions["code"] = CodeBadRequest
				scopeFrom(ctx).refuse(http.StatusBadRequest)
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
			gqlErr.Extensions["code"] = codeBadUserInput
			return gqlErr
		}
		var (
			ue    *upstream.Error
			input *inputError
		)
		switch {
		case ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrShuttingDown):
			gqlErr.Message = ErrShuttingDown.Error()
			gqlErr.Extensions["code"] = codeShuttingDown
		case errors.Is(cause, errUnauthenticated):
			gqlErr.Message = errUnauthenticated.Error()
			gqlErr.Extensions["code"] = codeUnauthenticated
		case errors.Is(cause, errBadHost):
			gqlErr.Message = errBadHost.Error()
			gqlErr.Extensions["code"] = CodeBadRequest
		case errors.As(cause, &input):
			gqlErr.Message = input.Message
			gqlErr.Extensions["code"] = codeBadUserInput
		case errors.Is(cause, errIdempotencyKeyInUse):
			gqlErr.Message = errIdempotencyKeyInUse.Error()
			gqlErr.Extensions["code"] = codeIdempotencyKeyInUse
		case errors.Is(cause, upstream.ErrBodyBudgetExceeded):
			gqlErr.Message = upstream.ErrBodyBudgetExceeded.Error() + ": ask for smaller pages or fewer fields"
			gqlErr.Extensions["code"] = codeUpstreamBytesExceeded
		case errors.As(cause, &ue):
			presentUpstream(gqlErr, ue)
		case errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded):
			gqlErr.Message = "DigitalOcean did not answer in time"
			gqlErr.Extensions["code"] = codeUpstreamUnavailable
		default:
			if !errors.Is(cause, errPanic) {
				logger.ErrorContext(ctx, "internal error", "path", gqlErr.Path.String(), "err", cause)
			}
			gqlErr.Message = internalMessage
			gqlErr.Extensions["code"] = codeInternal
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
		ext["code"] = codeUpstreamUnavailable
	case ue.Kind == upstream.KindDecode:
		gqlErr.Message = "DigitalOcean answered with a body this server cannot read"
		ext["code"] = codeUpstreamUnavailable
	case ue.Kind == upstream.KindRequest:
		// The client refused to send the request (an id such as ".." that would address another endpoint).
		gqlErr.Message = "the id does not address a DigitalOcean resource"
		ext["code"] = codeBadUserInput
	case ue.Status == 401:
		ext["code"] = codeUnauthenticated
	case ue.Status == 403:
		ext["code"] = codeForbidden
	case ue.Status == 404:
		ext["code"] = CodeNotFound
	case ue.Status == 429:
		ext["code"] = codeRateLimited
		ext["retryAfter"] = int(math.Ceil(ue.RetryAfter.Seconds()))
	case ue.Status >= 500:
		ext["code"] = codeUpstreamUnavailable
	default:
		ext["code"] = codeUpstreamUnavailable
	}
	switch ue.Outcome {
	case upstream.OutcomeUnknown:
		// A write may have been carried out: the README says how to find out.
		ext["outcome"] = "UNKNOWN"
	case upstream.OutcomeApplied:
		ext["outcome"] = "APPLIED"
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
