package graph

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/oceangraph/oceangraph/graph/generated"
)

// contractPaths are the public contract, in ../shared beside the repository:
// the read side and the write side, which extends it (the two are read together).
var contractPaths = []string{
	filepath.Join("..", "..", "shared", "CONTRACT.graphql"),
	filepath.Join("..", "..", "shared", "CONTRACT-writes.graphql"),
}

func ourSchema() *ast.Schema {
	return generated.NewExecutableSchema(generated.Config{Resolvers: &Resolver{}}).Schema()
}

// ours reports whether a type is this API's own (not built in, not
// introspection, not federation's plumbing).
func ours(d *ast.Definition) bool {
	return !d.BuiltIn && !strings.HasPrefix(d.Name, "_") && !strings.HasPrefix(d.Name, "link__") && !strings.HasPrefix(d.Name, "federation__")
}

// A Playground user reads the descriptions: every type and field has one.
func TestEveryTypeAndFieldIsDescribed(t *testing.T) {
	for _, d := range ourSchema().Types {
		if !ours(d) {
			continue
		}
		if strings.TrimSpace(d.Description) == "" {
			t.Errorf("type %s has no description", d.Name)
		}
		for _, f := range d.Fields {
			if !strings.HasPrefix(f.Name, "_") && strings.TrimSpace(f.Description) == "" {
				t.Errorf("field %s.%s has no description", d.Name, f.Name)
			}
		}
		for _, v := range d.EnumValues {
			if strings.TrimSpace(v.Description) == "" {
				t.Errorf("enum value %s.%s has no description", d.Name, v.Name)
			}
		}
	}
}

// The schema may add to the contract but never rename, remove or retype what
// it names: every type, field, argument and enum value of the contract is here
// with the same type.
func TestSchemaKeepsTheContract(t *testing.T) {
	var sources []*ast.Source
	for _, path := range contractPaths {
		src, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing in CI, where ../shared is always beside the repository", path)
			}
			t.Skipf("%s not present (../shared sits beside the repository only in CI and on developers' machines)", path)
		}
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, &ast.Source{Name: filepath.Base(path), Input: string(src)})
	}
	// One document: CONTRACT-writes.graphql extends types of CONTRACT.graphql.
	contract, perr := parser.ParseSchemas(sources...)
	if perr != nil {
		t.Fatalf("parse the contract: %v", perr)
	}
	schema := ourSchema()
	// The contract's Mutation and Subscription are the schema's root types, not merely types of those names.
	for name, root := range map[string]*ast.Definition{"Query": schema.Query, "Mutation": schema.Mutation, "Subscription": schema.Subscription} {
		if contract.Definitions.ForName(name) != nil && (root == nil || root.Name != name) {
			t.Errorf("%s of the contract is not the schema's %s root type", name, strings.ToLower(name))
		}
	}
	for _, want := range append(contract.Definitions, contract.Extensions...) {
		got := schema.Types[want.Name]
		if got == nil {
			t.Errorf("type %s of the contract is missing", want.Name)
			continue
		}
		if got.Kind != want.Kind {
			t.Errorf("type %s is %s, the contract says %s", want.Name, got.Kind, want.Kind)
		}
		for _, wf := range want.Fields {
			gf := got.Fields.ForName(wf.Name)
			if gf == nil {
				t.Errorf("field %s.%s of the contract is missing", want.Name, wf.Name)
				continue
			}
			if gf.Type.String() != wf.Type.String() {
				t.Errorf("field %s.%s is %s, the contract says %s", want.Name, wf.Name, gf.Type, wf.Type)
			}
			for _, wa := range wf.Arguments {
				ga := gf.Arguments.ForName(wa.Name)
				if ga == nil || ga.Type.String() != wa.Type.String() {
					t.Errorf("argument %s.%s(%s: %s) of the contract is missing or retyped (%v)", want.Name, wf.Name, wa.Name, wa.Type, ga)
				}
			}
		}
		for _, wv := range want.EnumValues {
			if got.EnumValues.ForName(wv.Name) == nil {
				t.Errorf("enum value %s.%s of the contract is missing", want.Name, wv.Name)
			}
		}
		for _, wd := range want.Directives {
			if got.Directives.ForName(wd.Name) == nil {
				t.Errorf("type %s lacks the contract's @%s", want.Name, wd.Name)
			}
		}
	}
}
