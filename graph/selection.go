package graph

import "github.com/vektah/gqlparser/v2/ast"

// maxExpandedFields bounds the fields a document may expand to through its
// fragments: fragments that spread each other twice over double at every
// level, and every walk over the operation (gqlgen's complexity included)
// would follow them. The depth guard refuses a document past it, before the
// other guards and gqlgen's complexity walk it.
const maxExpandedFields = 10000

// fieldWalk visits fields through fragments, counting them against
// maxExpandedFields: the one walk over selections of this package (guards,
// estimate, the files' base64 check).
type fieldWalk struct{ fields int }

// exceeded reports whether the walk has gone past maxExpandedFields; a walker
// then stops and its caller takes the safe answer.
func (w *fieldWalk) exceeded() bool { return w.fields > maxExpandedFields }

// each calls visit for every field of set, through inline fragments and
// fragment spreads, with the type condition of the nearest fragment that
// names an object type ("" when none; the _Entity union passes its parent's
// on). It does not descend into a field's own selection: visit does, by
// calling each again, so the count spans the whole walk.
func (w *fieldWalk) each(set ast.SelectionSet, visit func(f *ast.Field, on string)) {
	w.eachOn(set, "", visit)
}

func (w *fieldWalk) eachOn(set ast.SelectionSet, on string, visit func(f *ast.Field, on string)) {
	for _, sel := range set {
		if w.exceeded() {
			return
		}
		switch s := sel.(type) {
		case *ast.Field:
			w.fields++
			visit(s, on)
		case *ast.InlineFragment:
			w.eachOn(s.SelectionSet, typeCondition(s.TypeCondition, on), visit)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				w.eachOn(s.Definition.SelectionSet, typeCondition(s.Definition.TypeCondition, on), visit)
			}
		}
	}
}

func typeCondition(cond, outer string) string {
	if cond == "" || cond == "_Entity" {
		return outer
	}
	return cond
}

// anyField reports whether match holds for a field anywhere in set, at any
// depth; a document too large to walk counts as matching (the safe answer of
// each caller).
func anyField(set ast.SelectionSet, match func(f *ast.Field) bool) bool {
	w := &fieldWalk{}
	var found func(set ast.SelectionSet) bool
	found = func(set ast.SelectionSet) bool {
		hit := false
		w.each(set, func(f *ast.Field, _ string) {
			hit = hit || match(f) || found(f.SelectionSet)
		})
		return hit || w.exceeded()
	}
	return found(set)
}
