package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oceangraph/oceangraph/internal/logbuffer"
)

// lines is what w was given so far, as lines.
func lines(out *logbuffer.Buffer) []string {
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

func TestLogWriterWritesEveryLineInOrderSoonAfter(t *testing.T) {
	out := &logbuffer.Buffer{}
	w := NewLogWriter(out, time.Millisecond)
	defer w.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				fmt.Fprintf(w, "g%d %d\n", g, i)
			}
		})
	}
	wg.Wait()
	// Nobody flushes: the writer's own timer must write the last batch.
	deadline := time.Now().Add(5 * time.Second)
	for len(lines(out)) < 2000 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polls the output; the writer's delay is 1 ms
	}
	got := lines(out)
	if len(got) != 2000 {
		t.Fatalf("%d lines written within 5 s, want 2000", len(got))
	}
	next := map[string]int{}
	for _, l := range got {
		var g string
		var i int
		if _, err := fmt.Sscanf(l, "%s %d", &g, &i); err != nil || next[g] != i {
			t.Fatalf("line %q: want %s %d next (lines out of order, cut or mixed)", l, g, next[g])
		}
		next[g]++
	}
}

func TestLogWriterFlushAndCloseLoseNothing(t *testing.T) {
	out := &logbuffer.Buffer{}
	w := NewLogWriter(out, time.Hour) // the timer never fires here
	fmt.Fprintln(w, "held")
	if out.String() != "" {
		t.Fatalf("written before the delay: %q", out)
	}
	w.Flush()
	if out.String() != "held\n" {
		t.Fatalf("after Flush: %q, want the held line", out)
	}
	fmt.Fprintln(w, "at close")
	w.Close()
	fmt.Fprintln(w, "after close")
	if out.String() != "held\nat close\nafter close\n" {
		t.Fatalf("after Close: %q, want the held line written by Close and the later one at once", out)
	}
}

func TestLogWriterFlushesItselfWhenFull(t *testing.T) {
	out := &logbuffer.Buffer{}
	w := NewLogWriter(out, time.Hour)
	defer w.Close()
	line := strings.Repeat("x", 1023) + "\n"
	for range maxHeldLog / len(line) {
		io.WriteString(w, line)
	}
	if len(out.String()) != maxHeldLog {
		t.Fatalf("%d bytes written, want the %d held written once they reached the bound", len(out.String()), maxHeldLog)
	}
}

// A line larger than the buffers are kept at (a panic's stack) does not leave
// two batches sharing one buffer: a line logged while a batch is being
// written never overwrites it.
func TestLogWriterAfterAHugeLine(t *testing.T) {
	out := &interruptedOutput{}
	w := NewLogWriter(out, time.Hour)
	out.w = w
	defer w.Close()
	huge := strings.Repeat("s", 3*maxHeldLog)
	for i := range 6 {
		line := fmt.Sprintf("line %d", i)
		if i == 2 {
			line = huge
		}
		fmt.Fprintln(w, line)
		w.Flush()
	}
	var mine []string
	for _, l := range strings.Split(strings.TrimSuffix(out.buf.String(), "\n"), "\n") {
		switch {
		case l == "during":
		case l == huge:
			mine = append(mine, "huge")
		case strings.HasPrefix(l, "line ") && len(l) == 6:
			mine = append(mine, l)
		default:
			t.Fatalf("a line was overwritten while it was written: %.40q...", l)
		}
	}
	if got := strings.Join(mine, ","); got != "line 0,line 1,huge,line 3,line 4,line 5" {
		t.Fatalf("lines written: %s", got)
	}
}

// interruptedOutput logs a line through w at the start of every write, as
// another request may at that moment.
type interruptedOutput struct {
	w   *LogWriter
	buf strings.Builder
}

func (o *interruptedOutput) Write(p []byte) (int, error) {
	if string(p) != "during\n" {
		io.WriteString(o.w, "during\n")
	}
	return o.buf.Write(p)
}

func TestWarningsAndErrorsAreWrittenAtOnce(t *testing.T) {
	out := &logbuffer.Buffer{}
	w := NewLogWriter(out, time.Hour)
	defer w.Close()
	logger := slog.New(FlushAt(slog.LevelWarn, w, slog.NewJSONHandler(w, nil))).With("server", "a")
	logger.Info("request")
	if out.String() != "" {
		t.Fatalf("an info line was written before the delay: %q", out)
	}
	logger.Error("panic in upstream work")
	got := lines(out)
	if len(got) != 2 || !strings.Contains(got[0], `"msg":"request"`) || !strings.Contains(got[1], `"msg":"panic in upstream work","server":"a"`) {
		t.Fatalf("after an error: %q, want the held info line and then the error", got)
	}
}

// BenchmarkMiddlewareToAFile is the middleware with its access line written
// to a file, as the server's stderr is under the bench: one write a request,
// or through a LogWriter.
func BenchmarkMiddlewareToAFile(b *testing.B) {
	for _, batched := range []bool{false, true} {
		b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var out io.Writer = f
			if batched {
				w := NewLogWriter(f, 5*time.Millisecond)
				defer w.Close()
				out = w
			}
			o := New(slog.New(slog.NewJSONHandler(out, nil)), nil)
			h := o.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
			r := httptest.NewRequest(http.MethodPost, "/query", nil)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}
