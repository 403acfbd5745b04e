// Package logbuffer holds the one concurrency-safe buffer the tests hand to a
// logger, so that a test can read what a server under test logged while its
// handlers are still writing.
package logbuffer

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe for one writer (a slog handler) and readers
// on other goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p, as io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
