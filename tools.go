//go:build tools

// Package tools pins the code generators this module runs, so that
// `go run github.com/99designs/gqlgen generate` uses the version in go.mod.
package tools

import (
	_ "github.com/99designs/gqlgen"
)
