package graph

import (
	"sync"

	"github.com/99designs/gqlgen/graphql"
)

// resolveEntities resolves a batch of federation representations
// concurrently, each through the per-request loaders (so the batch shares
// their de-duplication and concurrency bound), and fails only the entities
// that fail: the others still resolve.
func resolveEntities[R, T any](reps []R, resolve func(R) (T, error)) ([]T, error) {
	out := make([]T, len(reps))
	errs := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, rep := range reps {
		wg.Go(func() { out[i], errs[i] = resolve(rep) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, graphql.BatchErrorList(errs)
		}
	}
	return out, nil
}
