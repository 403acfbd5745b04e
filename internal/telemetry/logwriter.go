package telemetry

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// LogWriter gathers log lines and writes them to out together, shortly after
// the first of them: one write a request (the access line) cost about 1.5%
// of a small query's CPU under load, in the syscall alone. Nothing is lost
// by waiting: Flush writes what is held, Close flushes and then writes
// through, and a handler made with FlushAt writes serious records at once.
type LogWriter struct {
	out   io.Writer
	delay time.Duration

	mu     sync.Mutex
	held   []byte
	closed bool
	kick   chan struct{}
	done   chan struct{}

	// writing keeps the batches in order: it is held from taking a batch
	// to having written it.
	writing sync.Mutex
	spare   []byte
}

// maxHeldLog is how much a LogWriter holds before the writer of a line
// flushes it itself.
const maxHeldLog = 64 << 10

// NewLogWriter writes to out what it is given, at most delay after it was
// given. Close it when done.
func NewLogWriter(out io.Writer, delay time.Duration) *LogWriter {
	w := &LogWriter{out: out, delay: delay, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go w.flushing()
	return w
}

// Write holds a copy of p (a whole line: slog writes one a call).
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.writing.Lock()
		defer w.writing.Unlock()
		return w.out.Write(p)
	}
	first := len(w.held) == 0
	w.held = append(w.held, p...)
	full := len(w.held) >= maxHeldLog
	w.mu.Unlock()
	switch {
	case full:
		w.Flush()
	case first:
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Flush writes what is held.
func (w *LogWriter) Flush() {
	w.writing.Lock()
	defer w.writing.Unlock()
	w.mu.Lock()
	batch := w.held
	w.held = w.spare[:0]
	w.mu.Unlock()
	if len(batch) > 0 {
		w.out.Write(batch)
	}
	// The buffer just written is the next one filled; held now has the other.
	// A rare huge one is dropped, never kept beside held (they would share it).
	w.spare = nil
	if cap(batch) <= maxHeldLog*2 {
		w.spare = batch
	}
}

// Close writes what is held; later lines are written as they come.
func (w *LogWriter) Close() error {
	w.writing.Lock()
	defer w.writing.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	batch := w.held
	w.held = nil
	w.mu.Unlock()
	close(w.done)
	if len(batch) > 0 {
		w.out.Write(batch)
	}
	return nil
}

// flushing writes each batch delay after its first line arrived.
func (w *LogWriter) flushing() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-w.kick:
		}
		timer.Reset(w.delay)
		select {
		case <-w.done:
			timer.Stop()
			return
		case <-timer.C:
		}
		w.Flush()
	}
}

// FlushAt makes h's records at level or above reach w's output before Handle
// returns (with what was held before them): a warning or an error is not left
// waiting, nor lost if the process then ends.
func FlushAt(level slog.Level, w *LogWriter, h slog.Handler) slog.Handler {
	return flushingHandler{Handler: h, level: level, w: w}
}

type flushingHandler struct {
	slog.Handler
	level slog.Level
	w     *LogWriter
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= h.level {
		h.w.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.level, h.w}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.level, h.w}
}
