package graph

// The pollers behind Subscription.volumeActionProgress. DigitalOcean has no
// push for actions, so someone must poll GET /v2/volumes/{id}/actions/{action_id};
// this server polls once per (token, volume, action) however many clients
// watch it: the first subscriber starts the poller, later ones join it (and get
// the newest state at once), and the poller stops when the action ends or the
// last subscriber leaves. A subscriber costs no goroutine of its own: its
// channel is fed by the poller and its departure is a context.AfterFunc.

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oceangraph/oceangraph/graph/model"
	"github.com/oceangraph/oceangraph/upstream"
)

// Polling back-off: the first poll at once, then minInterval, growing by half
// while nothing changes, up to maxInterval. An action takes seconds, so the
// first few polls are close together; a slow one costs ~6 calls a minute.
const (
	defaultPollMin = time.Second
	defaultPollMax = 10 * time.Second
	// maxPollFailures ends a watch whose polls fail transiently this many
	// times in a row (DigitalOcean down for minutes): its subscribers get the error.
	maxPollFailures = 8
	// watcherBuffer holds an action's every status (IN_PROGRESS, an UNKNOWN, the end) with room to spare.
	watcherBuffer = 4
)

// actionPoll asks DigitalOcean for an action's state once, with token; it
// returns the rate-limit headers of the answer too (zero when there were none).
type actionPoll func(ctx context.Context, token, volumeID, actionID string) (*model.VolumeAction, upstream.RateLimit, error)

// progressHub is the set of running pollers of one server.
type progressHub struct {
	poll          actionPoll
	pollMin       time.Duration
	pollMax       time.Duration
	mu            sync.Mutex
	watches       map[watchKey]*actionWatch
	afterPollHook func() // tests: called after each poll's result is published
}

// watchKey identifies a watch: the token by its hash (a map of tokens is
// never printed, but a hash keeps even a heap dump of keys harmless).
type watchKey struct {
	token              [sha256.Size]byte
	volumeID, actionID string
}

// actionWatch is one poller and its subscribers.
type actionWatch struct {
	key    watchKey
	token  string
	cancel context.CancelFunc
	subs   map[*watcher]struct{}
	// latest is the newest published state; nil before the first poll answered.
	latest *model.VolumeAction
	// rateLimit is the newest rate-limit headers DigitalOcean sent the poller.
	rateLimit upstream.RateLimit
	// done is closed when the poller's goroutine has returned.
	done chan struct{}
}

// watcher is one subscriber. Its channel holds every state change unread (an
// action has two or three), and were it ever full the newest state would
// replace the oldest unread one (each state is whole): a slow client never
// holds the poller up.
type watcher struct {
	ch     chan *model.VolumeAction
	closed bool
	// onEvent runs, under the hub's lock, before each state is offered
	// (the subscription records the rate-limit headers in its request scope).
	onEvent func(upstream.RateLimit)
	// fail runs, under the hub's lock, when the watch ends on an error.
	fail func(error)
}

func newProgressHub(poll actionPoll) *progressHub {
	return &progressHub{poll: poll, pollMin: defaultPollMin, pollMax: defaultPollMax, watches: map[watchKey]*actionWatch{}}
}

// subscription is what subscribe returns: the states, and leave for when the
// subscriber goes (safe to call more than once, and after the watch ended).
type subscription struct {
	states <-chan *model.VolumeAction
	leave  func()
}

// subscribe joins (or starts) the watch of an action for token.
func (h *progressHub) subscribe(token, volumeID, actionID string, w *watcher) subscription {
	key := watchKey{token: sha256.Sum256([]byte(token)), volumeID: volumeID, actionID: actionID}
	w.ch = make(chan *model.VolumeAction, watcherBuffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	aw := h.watches[key]
	if aw == nil {
		ctx, cancel := context.WithCancel(context.Background())
		aw = &actionWatch{key: key, token: token, cancel: cancel, subs: map[*watcher]struct{}{}, done: make(chan struct{})}
		h.watches[key] = aw
		go h.run(ctx, aw)
	}
	aw.subs[w] = struct{}{}
	if aw.latest != nil {
		w.offer(aw.latest, aw.rateLimit)
	}
	return subscription{states: w.ch, leave: func() { h.leave(aw, w) }}
}

// leave removes a subscriber; the last one out stops the poller.
func (h *progressHub) leave(aw *actionWatch, w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := aw.subs[w]; !ok {
		return
	}
	delete(aw.subs, w)
	w.close()
	if len(aw.subs) == 0 {
		h.endLocked(aw)
	}
}

// endLocked stops a watch and forgets it; a later subscriber starts afresh.
func (h *progressHub) endLocked(aw *actionWatch) {
	aw.cancel()
	if h.watches[aw.key] == aw {
		delete(h.watches, aw.key)
	}
}

// offer hands a state to the subscriber; when its buffer is full, the oldest unread state makes room.
func (w *watcher) offer(a *model.VolumeAction, rl upstream.RateLimit) {
	if w.closed {
		return
	}
	if w.onEvent != nil {
		w.onEvent(rl)
	}
	for {
		select {
		case w.ch <- a:
			return
		default:
		}
		select {
		case <-w.ch: // drop the oldest unread state
		default:
		}
	}
}

func (w *watcher) close() {
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
}

// run is the poller: it polls with back-off, publishes each change of status,
// and ends the watch when the action ends, the poll fails for good, or its
// context is cancelled (the last subscriber left).
func (h *progressHub) run(ctx context.Context, aw *actionWatch) {
	defer close(aw.done)
	wait, failures := h.pollMin, 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		a, rl, err := h.poll(ctx, aw.token, aw.key.volumeID, aw.key.actionID)
		var ue *upstream.Error
		if ctx.Err() != nil {
			return
		}
		h.mu.Lock()
		if !rl.IsZero() {
			aw.rateLimit = rl
		}
		ended := false
		switch {
		case err == nil:
			failures = 0
			if aw.latest == nil || aw.latest.Status != a.Status {
				aw.latest, wait = a, h.pollMin
				for w := range aw.subs {
					w.offer(a, aw.rateLimit)
				}
			} else {
				wait = min(wait+wait/2, h.pollMax)
			}
			ended = a.Ended()
		case errors.As(err, &ue) && ue.Transient() && failures < maxPollFailures:
			failures++
			wait = min(wait+wait/2, h.pollMax)
			if ue.RetryAfter > wait {
				wait = ue.RetryAfter
			}
		default:
			for w := range aw.subs {
				if w.fail != nil {
					w.fail(err)
				}
			}
			ended = true
		}
		if ended {
			for w := range aw.subs {
				w.close()
			}
			clear(aw.subs)
			h.endLocked(aw)
		}
		hook := h.afterPollHook
		h.mu.Unlock()
		if hook != nil {
			hook()
		}
		if ended {
			return
		}
		timer.Reset(wait)
	}
}

// running is the number of pollers (for tests and metrics).
func (h *progressHub) running() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watches)
}

// watchAction is Subscription.volumeActionProgress: it joins the action's
// watch with the request's token. Each state first records the poll's
// rate-limit headers in the request (extensions.rateLimit of that event) and
// drops the request's cached volume, so that `volume { dropletIds }` of the
// event is read afresh; a lasting failure ends the stream with its coded error.
func (r *Resolver) watchAction(ctx context.Context, volumeID, actionID string) (<-chan *model.VolumeAction, error) {
	if err := checkID("volumeId", volumeID); err != nil {
		return nil, err
	}
	if _, err := parseActionID(actionID); err != nil {
		return nil, err
	}
	s := scopeFrom(ctx)
	if s.authErr != nil {
		return nil, s.authErr
	}
	failure, _ := ctx.Value(streamFailureKey{}).(*streamFailure)
	sub := r.progress.subscribe(s.token, volumeID, actionID, &watcher{
		onEvent: func(rl upstream.RateLimit) {
			s.recordRateLimit(rl)
			if s.loaders != nil {
				s.loaders.forgetVolumes()
			}
		},
		fail: func(err error) {
			if failure != nil {
				failure.set(err)
			}
		},
	})
	context.AfterFunc(ctx, sub.leave)
	return sub.states, nil
}

// pollAction is the pollers' one call: GET the action with the watch's token,
// in a request scope of its own so that its rate-limit headers are recorded
// (ObserveUpstream) and handed to every subscriber.
func (r *Resolver) pollAction(ctx context.Context, token, volumeID, actionID string) (*model.VolumeAction, upstream.RateLimit, error) {
	id, err := parseActionID(actionID)
	if err != nil {
		return nil, upstream.RateLimit{}, err
	}
	s := newRequestScope(Config{Logger: r.Logger}, token, nil)
	var a *upstream.VolumeAction
	err = callUpstream(withScope(ctx, s), func(ctx context.Context) (err error) {
		a, err = r.Client.GetVolumeAction(ctx, volumeID, id)
		return err
	})
	rl, _ := s.newestRateLimit()
	if err != nil {
		return nil, rl, err
	}
	return model.VolumeActionFrom(a, volumeID), rl, nil
}

// streamFailure holds the error a subscription's stream ended on, until the
// streamFailures extension sends it.
type streamFailure struct {
	mu  sync.Mutex
	err error
}

type streamFailureKey struct{}

func (f *streamFailure) set(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// take returns the error once.
func (f *streamFailure) take() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.err
	f.err = nil
	return err
}

// streamFailures lets a subscription end on a coded error: gqlgen ends a
// stream when its channel closes, with nothing to say why, so the resolver
// leaves the error in the operation's streamFailure and this extension sends
// it as one last response (through the one error presenter).
type streamFailures struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
	graphql.ResponseInterceptor
} = streamFailures{}

func (streamFailures) ExtensionName() string                   { return "StreamFailures" }
func (streamFailures) Validate(graphql.ExecutableSchema) error { return nil }

func (streamFailures) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if op := graphql.GetOperationContext(ctx).Operation; op != nil && op.Operation == ast.Subscription {
		ctx = context.WithValue(ctx, streamFailureKey{}, &streamFailure{})
	}
	return next(ctx)
}

func (streamFailures) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp != nil {
		return resp
	}
	f, _ := ctx.Value(streamFailureKey{}).(*streamFailure)
	if f == nil {
		return nil
	}
	err := f.take()
	if err == nil {
		return nil
	}
	op := graphql.GetOperationContext(ctx).Operation
	path := ast.Path{}
	if len(op.SelectionSet) > 0 {
		if field, ok := op.SelectionSet[0].(*ast.Field); ok {
			path = ast.Path{ast.PathName(field.Alias)}
		}
	}
	graphql.AddError(ctx, gqlerror.WrapPath(path, err))
	return &graphql.Response{Errors: graphql.GetErrors(ctx)}
}
