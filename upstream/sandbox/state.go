package sandbox

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/oceangraph/oceangraph/upstream"
)

// What writes change lives in an accountState per token, laid over the
// generated Account, which stays read-only and shared: a token nobody wrote
// with has no state and is answered from the generated data alone.

// Bounds on what one account's writes may hold, and on how many accounts
// hold any: a client cannot grow the sandbox without limit.
const (
	DefaultMaxVolumes   = 200 // volumes created and not deleted
	DefaultMaxActions   = 500 // actions of volumes that still exist
	DefaultMaxSnapshots = 200 // snapshots not deleted
	// DefaultMaxWrittenAccounts is how many accounts keep their writes; past
	// it the least recently used one forgets them.
	DefaultMaxWrittenAccounts = 64
)

// DefaultActionDelay is how long an action stays in-progress by default:
// long enough to watch it, short enough not to wait.
const DefaultActionDelay = 2 * time.Second

// stateLimits are the caps above, adjustable by tests in this package.
type stateLimits struct {
	volumes, actions, snapshots int
}

// accountState is one token's writes. Its mutex guards every field; the
// volumes it hands out are copies whose slices are never written again.
type accountState struct {
	mu sync.Mutex
	// vols holds created volumes and generated ones a write changed
	// (copied on the first write), by id.
	vols    map[string]*upstream.Volume
	created []string        // ids of created volumes, oldest first
	deleted map[string]bool // generated volumes deleted
	// actions holds each volume's actions, oldest first; pending the ones
	// whose effect is not applied yet.
	actions  map[string][]*action
	nActions int
	pending  []*action
	nextDue  time.Time // the earliest due of pending; zero when none
	snaps    map[string]*snapshotWire
	snapIDs  []string // oldest first
}

func newAccountState() *accountState {
	return &accountState{
		vols: map[string]*upstream.Volume{}, deleted: map[string]bool{},
		actions: map[string][]*action{}, snaps: map[string]*snapshotWire{},
	}
}

// action is one volume action; its status follows from the clock, so no
// goroutine waits for it.
type action struct {
	id        int
	volumeID  string
	kind      string // attach_volume, detach_volume, resize_volume
	region    upstream.Region
	started   time.Time
	due       time.Time // when it ends, completed or errored
	errored   bool
	dropletID int // attach, detach
	size      int // resize
}

// states keeps the accounts' writes, least recently used evicted first.
type states struct {
	cache *lru.Cache[[32]byte, *accountState]
}

func newStates(max int) *states {
	c, _ := lru.New[[32]byte, *accountState](max) // errors only on size <= 0
	return &states{cache: c}
}

// get returns the token's state; nil when nobody wrote with it and create is false.
func (ss *states) get(token string, create bool) *accountState {
	k := sha256.Sum256([]byte(token))
	if st, ok := ss.cache.Get(k); ok || !create {
		return st
	}
	st := newAccountState()
	if prev, ok, _ := ss.cache.PeekOrAdd(k, st); ok {
		return prev
	}
	return st
}

// settle applies the effects of the actions that have ended by now, in the
// order they ended. Callers hold st.mu.
func (st *accountState) settle(a *Account, now time.Time) {
	if now.Before(st.nextDue) {
		return
	}
	var due []*action
	st.pending = slices.DeleteFunc(st.pending, func(ac *action) bool {
		if ac.due.After(now) {
			return false
		}
		due = append(due, ac)
		return true
	})
	st.nextDue = time.Time{}
	for _, ac := range st.pending {
		if st.nextDue.IsZero() || ac.due.Before(st.nextDue) {
			st.nextDue = ac.due
		}
	}
	slices.SortFunc(due, func(x, y *action) int { return x.due.Compare(y.due) })
	for _, ac := range due {
		if ac.errored {
			continue
		}
		v := st.writable(a, ac.volumeID)
		if v == nil {
			continue
		}
		switch ac.kind {
		case "attach_volume":
			v.DropletIDs = []int{ac.dropletID}
		case "detach_volume":
			v.DropletIDs = []int{}
		case "resize_volume":
			v.SizeGigabytes = ac.size
		}
	}
}

// volume returns the volume as it is now; nil when unknown or deleted.
// Callers hold st.mu and must not modify it.
func (st *accountState) volume(a *Account, id string) *upstream.Volume {
	if v, ok := st.vols[id]; ok {
		return v
	}
	if st.deleted[id] {
		return nil
	}
	return a.Volume(id)
}

// writable returns the volume for changing, copying a generated one into
// vols first; nil when unknown or deleted. Callers hold st.mu.
func (st *accountState) writable(a *Account, id string) *upstream.Volume {
	if v, ok := st.vols[id]; ok {
		return v
	}
	if st.deleted[id] {
		return nil
	}
	g := a.Volume(id)
	if g == nil {
		return nil
	}
	v := *g
	st.vols[id] = &v
	return &v
}

// volumes lists the volumes as GET /v2/volumes does: the generated ones in
// their order, as writes left them, then the created ones, oldest first;
// filtered by exact name and/or region ("" matches any). Callers hold st.mu.
func (st *accountState) volumes(a *Account, name, region string) []upstream.Volume {
	var out []upstream.Volume
	if name == "" && region == "" {
		out = make([]upstream.Volume, 0, len(a.Volumes)+len(st.created))
	}
	keep := func(v *upstream.Volume) {
		if (name == "" || v.Name == name) && (region == "" || v.Region.Slug == region) {
			out = append(out, *v)
		}
	}
	for i := range a.Volumes {
		if v := st.volume(a, a.Volumes[i].ID); v != nil {
			keep(v)
		}
	}
	for _, id := range st.created {
		keep(st.vols[id])
	}
	return out
}

// pendingAction returns the volume's action still in progress, if any.
// Callers hold st.mu and have settled.
func (st *accountState) pendingAction(volumeID string) *action {
	for _, ac := range st.pending {
		if ac.volumeID == volumeID {
			return ac
		}
	}
	return nil
}

// deleteVolume forgets a volume and its actions (its snapshots stay, as on
// DigitalOcean). Callers hold st.mu.
func (st *accountState) deleteVolume(a *Account, id string) {
	if a.Volume(id) != nil {
		st.deleted[id] = true
	}
	if i := slices.Index(st.created, id); i >= 0 {
		st.created = slices.Delete(st.created, i, i+1)
	}
	delete(st.vols, id)
	st.nActions -= len(st.actions[id])
	delete(st.actions, id)
}
