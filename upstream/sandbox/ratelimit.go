package sandbox

import (
	"sync"
	"time"
)

// limiter counts requests per token in one-second buckets over a rolling
// minute, as DigitalOcean's per-minute limit does.
type limiter struct {
	mu      sync.Mutex
	windows map[string]*window
	swept   int64 // the Unix second of the last sweep for idle windows
}

type window struct {
	second [60]int64 // the Unix second each bucket counts
	count  [60]int
}

// hourlyLimit is what ratelimit-limit announces when rate-limit mode is off:
// DigitalOcean's hourly allowance.
const hourlyLimit = 5000

// maxWindows bounds the limiter's memory; past it, idle tokens are forgotten.
const maxWindows = 10_000

func newLimiter() *limiter { return &limiter{windows: map[string]*window{}} }

type limitState struct {
	limit, remaining int
	reset            time.Time
	refused          bool
	retryAfter       int // seconds
}

// count counts one request of token at now against limit (0: not enforced).
func (l *limiter) count(token string, now time.Time, limit int) limitState {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[token]
	if w == nil {
		if len(l.windows) >= maxWindows {
			l.makeRoom(now)
		}
		w = &window{}
		l.windows[token] = w
	}
	sec := now.Unix()
	used, oldest := w.used(sec)
	st := limitState{limit: limit}
	if limit <= 0 {
		st.limit = hourlyLimit
	}
	if limit > 0 && used >= limit {
		st.refused = true
		st.reset = time.Unix(oldest+60, 0)
		st.retryAfter = int(max(1, oldest+60-sec))
		return st
	}
	i := sec % 60
	if w.second[i] != sec {
		w.second[i], w.count[i] = sec, 0
	}
	w.count[i]++
	used++
	if used == 1 {
		oldest = sec
	}
	st.remaining = max(st.limit-used, 0)
	if limit <= 0 {
		st.remaining = max(st.remaining, 1) // with the limit off, never announce exhaustion
	}
	st.reset = time.Unix(oldest+60, 0)
	return st
}

// used sums the buckets of the minute ending at sec and finds its oldest second.
func (w *window) used(sec int64) (used int, oldest int64) {
	oldest = sec
	for i := range w.second {
		if w.count[i] > 0 && w.second[i] > sec-60 && w.second[i] <= sec {
			used += w.count[i]
			oldest = min(oldest, w.second[i])
		}
	}
	return used, oldest
}

// makeRoom forgets idle tokens, sweeping at most once a second: a sweep reads
// every window, and a load of fresh tokens (the bench's) fills the limiter
// within a minute. Still full, it forgets one token at random, which can only
// undercount that token's minute; a full limiter stays a map lookup a request.
func (l *limiter) makeRoom(now time.Time) {
	if sec := now.Unix(); sec != l.swept {
		l.swept = sec
		for token, w := range l.windows {
			if used, _ := w.used(sec); used == 0 {
				delete(l.windows, token)
			}
		}
	}
	for token := range l.windows {
		if len(l.windows) < maxWindows {
			break
		}
		delete(l.windows, token)
	}
}

func (l *limiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.windows)
}
