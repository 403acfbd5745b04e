package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// gqlparser refuses a variable whose JSON number is not an Int (0.5, 1e3) with
// "cannot use value 0 as Int", printing a zero for the value it could not
// read. rawVariables keeps the request's variables as sent, so that the
// presenter can say which value was wrong.
type rawVariables struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = rawVariables{}

func (rawVariables) ExtensionName() string                   { return "RawVariables" }
func (rawVariables) Validate(graphql.ExecutableSchema) error { return nil }
func (rawVariables) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	scopeFrom(ctx).rawVariables = p.Variables
	return nil
}

// mistypedVariable rewrites gqlparser's message for a number that is not of
// its variable's type; ok is false for every other error.
func mistypedVariable(ctx context.Context, gqlErr *gqlerror.Error) (string, bool) {
	path := gqlErr.Path
	if len(path) != 2 || path[0] != ast.PathName("variable") || !strings.HasPrefix(gqlErr.Message, "cannot use value ") {
		return "", false
	}
	name, _ := path[1].(ast.PathName)
	typ := gqlErr.Message[strings.LastIndexByte(gqlErr.Message, ' ')+1:]
	value, _ := json.Marshal(scopeFrom(ctx).rawVariables[string(name)])
	switch typ {
	case "Int":
		return fmt.Sprintf("variable $%s: %s is not an Int (a whole number from -2147483648 to 2147483647)", name, value), true
	case "Float":
		return fmt.Sprintf("variable $%s: %s is not a Float (a finite number)", name, value), true
	}
	return "", false
}
