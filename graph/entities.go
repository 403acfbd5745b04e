package graph

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
)

// resolveEntities resolves a batch of federation representations
// concurrently, each through the per-request loaders (so the batch shares
// their de-duplication and concurrency bound), and fails only the entities
// that fail: the others still resolve.
func resolveEntities[R, T any](ctx context.Context, reps []R, resolve func(R) (T, error)) ([]T, error) {
	out := make([]T, len(reps))
	errs := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, rep := range reps {
		wg.Go(func() {
			errs[i] = safely(ctx, func() (err error) {
				out[i], err = resolve(rep)
				return err
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, graphql.BatchErrorList(errs)
		}
	}
	return out, nil
}
