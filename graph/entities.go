package graph

import (
	"context"
	"errors"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oceangraph/oceangraph/graph/generated"
)

// resolveEntities resolves a batch of federation representations
// concurrently, each through the per-request loaders (so the batch shares
// their de-duplication and concurrency bound), and fails only the entities
// that fail: the others still resolve.
func resolveEntities[R, T any](ctx context.Context, reps []R, resolve func(R) (T, error)) ([]T, error) {
	out := make([]T, len(reps))
	errs := concurrently(ctx, len(reps), func(i int) (err error) {
		out[i], err = resolve(reps[i])
		return err
	})
	for _, err := range errs {
		if err != nil {
			return out, graphql.BatchErrorList(errs)
		}
	}
	return out, nil
}

// badRepresentation tells, for an error of the _entities field itself or of
// its representations argument, whether gqlgen's federation code raised it
// for a malformed representation, and what to tell the client. gqlgen refuses
// those before any entity resolver runs, with plain errors: sentinels where
// it has them, messages where it has none (graph/generated/federation.go and
// graphql.UnmarshalMap); TestMalformedRepresentations pins every one of them.
// Errors of one entity (path _entities.N) are not its concern.
func badRepresentation(gqlErr *gqlerror.Error) (string, bool) {
	path, cause := gqlErr.Path, gqlErr.Err
	if len(path) == 0 || path[0] != ast.PathName("_entities") || cause == nil {
		return "", false
	}
	inArgument := len(path) == 3 && path[1] == ast.PathName("representations")
	msg := cause.Error()
	switch {
	case len(path) == 1 && msg == "__typename must be an existing string":
		return "every representation needs a __typename string naming its type", true
	case len(path) == 1 && errors.Is(cause, generated.ErrUnknownType):
		return "a representation's __typename is not an entity of this service (" + msg + "): want Invoice or Volume", true
	case len(path) == 1 && errors.Is(cause, generated.ErrTypeNotFound):
		return "a representation lacks its type's key field, or has it null: Invoice needs uuid, Volume needs id", true
	case len(path) == 1 && strings.HasPrefix(msg, "Field ") && strings.HasSuffix(msg, " undefined in schema."):
		// gqlgen's words when a key field's value is not an ID.
		return "a representation's key field must be an ID (a string): Invoice's uuid, Volume's id", true
	case inArgument && strings.HasSuffix(msg, " is not a map"):
		return "every representation must be an object: {__typename, and the type's key field}", true
	}
	return "", false
}

// federationSDL keeps `_service { sdl }` answering when introspection is
// switched off: gqlgen's federation code refuses it whenever the operation's
// DisableIntrospection is set, but a gateway needs it to compose the
// supergraph. An operation that asks for no __schema or __type gets the flag
// cleared, which changes nothing else (it only guards those fields and _service).
type federationSDL struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = federationSDL{}

func (federationSDL) ExtensionName() string                   { return "FederationSDL" }
func (federationSDL) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext also refuses, before it runs, an operation that
// introspects while introspection is off: asking is the client's mistake, not
// a fault of this server.
func (federationSDL) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if !opCtx.DisableIntrospection {
		return nil
	}
	// A document too large to walk counts as introspecting.
	if anyField(opCtx.Operation.SelectionSet, isIntrospection) {
		err := gqlerror.Errorf("introspection is disabled on this server (__schema and __type); _service { sdl } still answers")
		errcode.Set(err, errcode.ValidationFailed)
		return err
	}
	opCtx.DisableIntrospection = false
	return nil
}
