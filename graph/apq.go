package graph

import (
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
)

// newAPQ is automatic persisted queries (Apollo's protocol: a client sends the
// query's sha256 and, on PERSISTED_QUERY_NOT_FOUND, the query with its hash)
// over an LRU cache of size queries. The cache is per process: a replica that
// has not seen a query answers PERSISTED_QUERY_NOT_FOUND and the client resends it.
func newAPQ(size int) extension.AutomaticPersistedQuery {
	return extension.AutomaticPersistedQuery{Cache: lru.New[string](size)}
}
