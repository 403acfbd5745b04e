package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/oceangraph/oceangraph/upstream"
)

// DigitalOcean's limits on a volume, as the spec states them.
const (
	maxVolumeSize     = 16384 // GiB
	maxVolumeName     = 64
	maxDropletVolumes = 15 // volumes attached to one Droplet at a time
)

var volumeName = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// maxLabel is the longest filesystem label per filesystem type.
var maxLabel = map[string]int{"ext4": 16, "xfs": 12}

// The bodies of the write endpoints, on the wire. They are the sandbox's own
// (validated against the spec by spec_test.go), so that the sandbox checks
// the client rather than sharing its mistakes.

type createVolumeRequest struct {
	Name            string   `json:"name"`
	Description     string   `json:"description"`
	SizeGigabytes   int      `json:"size_gigabytes"`
	Region          string   `json:"region"`
	SnapshotID      string   `json:"snapshot_id"`
	FilesystemType  string   `json:"filesystem_type"`
	FilesystemLabel string   `json:"filesystem_label"`
	Tags            []string `json:"tags"`
}

type actionRequest struct {
	Type          string   `json:"type"`
	VolumeName    string   `json:"volume_name"` // POST /v2/volumes/actions only
	DropletID     int      `json:"droplet_id"`
	Region        string   `json:"region"`
	SizeGigabytes int      `json:"size_gigabytes"`
	Tags          []string `json:"tags"`
}

type snapshotRequest struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

type actionWire struct {
	ID          int     `json:"id"`
	Status      string  `json:"status"`
	Type        string  `json:"type"`
	StartedAt   string  `json:"started_at"`
	CompletedAt *string `json:"completed_at"`
	// ResourceID is an integer in the spec, and a volume's id is a UUID:
	// DigitalOcean sends null.
	ResourceID   *int             `json:"resource_id"`
	ResourceType string           `json:"resource_type"`
	Region       *upstream.Region `json:"region"`
	RegionSlug   string           `json:"region_slug"`
}

type actionResponse struct {
	Action actionWire `json:"action"`
}

type actionPage struct {
	Actions []actionWire    `json:"actions"`
	Links   *upstream.Links `json:"links,omitempty"`
	Meta    upstream.Meta   `json:"meta"`
}

type snapshotWire struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	CreatedAt     string   `json:"created_at"`
	Regions       []string `json:"regions"`
	MinDiskSize   int      `json:"min_disk_size"`
	SizeGigabytes float64  `json:"size_gigabytes"`
	ResourceID    string   `json:"resource_id"`
	ResourceType  string   `json:"resource_type"`
	Tags          []string `json:"tags"`
}

type snapshotResponse struct {
	Snapshot *snapshotWire `json:"snapshot"`
}

type snapshotPage struct {
	Snapshots []snapshotWire  `json:"snapshots"`
	Links     *upstream.Links `json:"links,omitempty"`
	Meta      upstream.Meta   `json:"meta"`
}

// ActionKnobs set how volume actions end: after Delay (0: at once), and
// errored (changing nothing) with probability ErrorRate. Over HTTP (GET/PUT
// /_sandbox/actions) Delay is a Go duration string ("2s").
type ActionKnobs struct {
	Delay     time.Duration `json:"-"`
	ErrorRate float64       `json:"error_rate"`
}

type actionKnobsJSON struct {
	Delay     string  `json:"delay"`
	ErrorRate float64 `json:"error_rate"`
}

// MarshalJSON writes Delay as a duration string.
func (k ActionKnobs) MarshalJSON() ([]byte, error) {
	return json.Marshal(actionKnobsJSON{Delay: k.Delay.String(), ErrorRate: k.ErrorRate})
}

// UnmarshalJSON reads Delay as a duration string; a missing knob is 0, an
// unknown one an error.
func (k *ActionKnobs) UnmarshalJSON(b []byte) error {
	var w actionKnobsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	out := ActionKnobs{ErrorRate: w.ErrorRate}
	if w.Delay != "" {
		d, err := time.ParseDuration(w.Delay)
		if err != nil {
			return fmt.Errorf("delay: %w", err)
		}
		out.Delay = d
	}
	*k = out
	return nil
}

func (k ActionKnobs) validate() error {
	if k.Delay < 0 || k.ErrorRate < 0 || k.ErrorRate > 1 {
		return fmt.Errorf("delay must not be negative and error_rate must be in [0, 1]")
	}
	return nil
}

// actionDice holds the action knobs and the seeded dice that err actions.
type actionDice struct {
	mu    sync.Mutex
	knobs ActionKnobs
	rng   *rand.Rand
}

// roll returns the delay of a new action and whether it will end errored.
func (d *actionDice) roll() (time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.knobs.Delay, d.knobs.ErrorRate > 0 && d.rng.Float64() < d.knobs.ErrorRate
}

// ActionKnobs returns how volume actions end now.
func (s *Sandbox) ActionKnobs() ActionKnobs {
	s.actionDice.mu.Lock()
	defer s.actionDice.mu.Unlock()
	return s.actionDice.knobs
}

// SetActionKnobs changes how actions started from now on end; actions
// already started keep their delay and outcome.
func (s *Sandbox) SetActionKnobs(k ActionKnobs) error {
	if err := k.validate(); err != nil {
		return err
	}
	s.actionDice.mu.Lock()
	defer s.actionDice.mu.Unlock()
	s.actionDice.knobs = k
	return nil
}

// refusal is a DigitalOcean error answer to a write.
type refusal struct {
	status      int
	id, message string
}

func unprocessable(format string, args ...any) *refusal {
	return &refusal{http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf(format, args...)}
}

var (
	errNotFound = &refusal{http.StatusNotFound, "not_found", "The resource you requested could not be found."}
	// DigitalOcean's answer to deleting an attached volume.
	errAttached = &refusal{http.StatusConflict, "conflict", "A volume that's attached to a Droplet cannot be deleted. Please detach it first before deleting."}
	// As DigitalOcean answers a Droplet action while another is running.
	errPending = unprocessable("Volume already has a pending event.")
)

// readBody decodes a JSON request body, answering 400 as DigitalOcean does
// when it cannot.
func (s *Sandbox) readBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(dst); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "bad_request", "error parsing request body: "+err.Error())
		return false
	}
	return true
}

// answer is a response decided under an account state's lock and written
// after it, so a slow client never holds the lock.
type answer struct {
	status  int
	body    any      // nil: no body (204)
	refusal *refusal // set instead of status and body for a refusal
}

func reply(status int, body any) answer { return answer{status: status, body: body} }
func refused(e *refusal) answer         { return answer{refusal: e} }

func (s *Sandbox) respond(w http.ResponseWriter, r *http.Request, ans answer) {
	switch {
	case ans.refusal != nil:
		s.writeError(w, r, ans.refusal.status, ans.refusal.id, ans.refusal.message)
	case ans.body == nil:
		w.WriteHeader(ans.status)
	default:
		writeJSON(w, ans.status, ans.body)
	}
}

// write runs fn on the request's account and its state (made if need be),
// locked and with ended actions applied, and answers what fn decided.
func (s *Sandbox) write(w http.ResponseWriter, r *http.Request, fn func(*Account, *accountState) answer) {
	token := bearerToken(r)
	a := s.Account(token)
	st := s.states.get(token, true)
	st.mu.Lock()
	st.settle(a, s.now())
	ans := fn(a, st)
	st.mu.Unlock()
	if ans.refusal == nil && !s.faults.holdWhile(r.Context(), func(f Faults) bool { return f.HangAfterWrite }) {
		return // the client gave up after the write
	}
	s.respond(w, r, ans)
}

// read is write for reads: st is nil (and nothing locked) when nobody wrote
// with the token, so its answers are the generated data's.
func (s *Sandbox) read(w http.ResponseWriter, r *http.Request, fn func(*Account, *accountState) answer) {
	token := bearerToken(r)
	a := s.Account(token)
	st := s.states.get(token, false)
	if st == nil {
		s.respond(w, r, fn(a, nil))
		return
	}
	st.mu.Lock()
	st.settle(a, s.now())
	ans := fn(a, st)
	st.mu.Unlock()
	s.respond(w, r, ans)
}

// currentVolume is a volume as writes left it; nil when unknown or deleted.
func currentVolume(a *Account, st *accountState, id string) *upstream.Volume {
	if st == nil {
		return a.Volume(id)
	}
	return st.volume(a, id)
}

func (s *Sandbox) createVolume(w http.ResponseWriter, r *http.Request) {
	var req createVolumeRequest
	if !s.readBody(w, r, &req) {
		return
	}
	s.write(w, r, func(a *Account, st *accountState) answer {
		v, e := s.newVolume(a, st, req)
		if e != nil {
			return refused(e)
		}
		st.vols[v.ID] = v
		st.created = append(st.created, v.ID)
		out := *v // v changes under the lock later; the answer is written after it
		return reply(http.StatusCreated, upstream.VolumeResponse{Volume: &out})
	})
}

// newVolume validates a create request as DigitalOcean does and builds the volume.
func (s *Sandbox) newVolume(a *Account, st *accountState, req createVolumeRequest) (*upstream.Volume, *refusal) {
	if len(req.Name) > maxVolumeName || !volumeName.MatchString(req.Name) {
		return nil, unprocessable("name %q is invalid: use lowercase letters, digits and \"-\", starting with a letter and not ending with \"-\", at most %d characters", req.Name, maxVolumeName)
	}
	ri := regionIndex(req.Region)
	if ri < 0 {
		return nil, unprocessable("region %q is not a valid region", req.Region)
	}
	size := req.SizeGigabytes
	if req.SnapshotID != "" {
		snap := st.snaps[req.SnapshotID]
		if snap == nil {
			return nil, unprocessable("snapshot %q does not exist", req.SnapshotID)
		}
		if !slices.Contains(snap.Regions, req.Region) {
			return nil, unprocessable("snapshot %q is in another region: it is available in %s only", req.SnapshotID, strings.Join(snap.Regions, ", "))
		}
		if size == 0 {
			size = snap.MinDiskSize
		}
		if size < snap.MinDiskSize {
			return nil, unprocessable("size_gigabytes %d is smaller than the snapshot's min_disk_size %d", size, snap.MinDiskSize)
		}
	}
	if size < 1 || size > maxVolumeSize {
		return nil, unprocessable("size_gigabytes must be from 1 to %d", maxVolumeSize)
	}
	switch longest, ok := maxLabel[req.FilesystemType]; {
	case req.FilesystemType != "" && !ok:
		return nil, unprocessable("filesystem_type %q is invalid: use ext4 or xfs", req.FilesystemType)
	case req.FilesystemLabel != "" && !ok:
		return nil, unprocessable("filesystem_label may only be used with filesystem_type")
	case len(req.FilesystemLabel) > longest:
		return nil, unprocessable("filesystem_label may be at most %d characters for %s", longest, req.FilesystemType)
	}
	if len(st.volumes(a, req.Name, req.Region)) > 0 {
		return nil, &refusal{http.StatusConflict, "conflict", fmt.Sprintf("a volume named %q already exists in region %s", req.Name, req.Region)}
	}
	if len(st.created) >= s.limits.volumes {
		return nil, unprocessable("this sandbox account already holds %d created volumes, its limit; delete some first", s.limits.volumes)
	}
	region := catalogRegion(ri)
	return &upstream.Volume{
		ID:              uuid.NewString(),
		DropletIDs:      []int{},
		Name:            req.Name,
		Description:     req.Description,
		SizeGigabytes:   size,
		CreatedAt:       s.now().UTC().Format(time.RFC3339),
		Tags:            nonNil(slices.Clone(req.Tags)),
		Region:          &region,
		FilesystemType:  req.FilesystemType,
		FilesystemLabel: req.FilesystemLabel,
	}, nil
}

func (s *Sandbox) deleteVolume(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, func(a *Account, st *accountState) answer {
		return st.deleteIfIdle(a, st.volume(a, r.PathValue("id")))
	})
}

// deleteVolumeByName serves DELETE /v2/volumes?name=…&region=….
func (s *Sandbox) deleteVolumeByName(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("name") == "" || q.Get("region") == "" {
		s.writeError(w, r, http.StatusBadRequest, "bad_request", "name and region are required to delete a volume by name")
		return
	}
	s.write(w, r, func(a *Account, st *accountState) answer {
		var v *upstream.Volume
		if list := st.volumes(a, q.Get("name"), q.Get("region")); len(list) == 1 {
			v = st.volume(a, list[0].ID)
		}
		return st.deleteIfIdle(a, v)
	})
}

// deleteIfIdle deletes v (nil: not found) unless it is attached or busy.
func (st *accountState) deleteIfIdle(a *Account, v *upstream.Volume) answer {
	switch {
	case v == nil:
		return refused(errNotFound)
	case st.pendingAction(v.ID) != nil:
		return refused(errPending)
	case len(v.DropletIDs) > 0:
		return refused(errAttached)
	}
	st.deleteVolume(a, v.ID)
	return reply(http.StatusNoContent, nil)
}

func (s *Sandbox) postVolumeAction(w http.ResponseWriter, r *http.Request) {
	var req actionRequest
	if !s.readBody(w, r, &req) {
		return
	}
	s.write(w, r, func(a *Account, st *accountState) answer {
		return s.startAction(a, st, st.volume(a, r.PathValue("id")), req)
	})
}

// postVolumeActionByName serves POST /v2/volumes/actions, which names the
// volume by volume_name and region and offers attach and detach only.
func (s *Sandbox) postVolumeActionByName(w http.ResponseWriter, r *http.Request) {
	var req actionRequest
	if !s.readBody(w, r, &req) {
		return
	}
	if req.Type != "attach" && req.Type != "detach" {
		s.writeError(w, r, http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf("type %q is not an action this endpoint takes: attach or detach", req.Type))
		return
	}
	if req.VolumeName == "" || req.Region == "" {
		s.writeError(w, r, http.StatusUnprocessableEntity, "unprocessable_entity", "volume_name and region are required")
		return
	}
	s.write(w, r, func(a *Account, st *accountState) answer {
		var v *upstream.Volume
		if list := st.volumes(a, req.VolumeName, req.Region); len(list) == 1 {
			v = st.volume(a, list[0].ID)
		}
		return s.startAction(a, st, v, req)
	})
}

// startAction starts an action on v (nil: not found) if DigitalOcean would.
func (s *Sandbox) startAction(a *Account, st *accountState, v *upstream.Volume, req actionRequest) answer {
	if v == nil {
		return refused(errNotFound)
	}
	ac, e := s.newAction(a, st, v, req)
	if e != nil {
		return refused(e)
	}
	st.actions[v.ID] = append(st.actions[v.ID], ac)
	st.nActions++
	st.pending = append(st.pending, ac)
	if st.nextDue.IsZero() || ac.due.Before(st.nextDue) {
		st.nextDue = ac.due
	}
	return reply(http.StatusAccepted, actionResponse{Action: ac.wire(false)})
}

// newAction validates an action request on v as DigitalOcean does.
func (s *Sandbox) newAction(a *Account, st *accountState, v *upstream.Volume, req actionRequest) (*action, *refusal) {
	kind := map[string]string{"attach": "attach_volume", "detach": "detach_volume", "resize": "resize_volume"}[req.Type]
	if kind == "" {
		return nil, unprocessable("type %q is not an action a volume takes", req.Type)
	}
	if req.Region != "" && req.Region != v.Region.Slug {
		return nil, unprocessable("the volume is in region %s, not %s", v.Region.Slug, req.Region)
	}
	if st.pendingAction(v.ID) != nil {
		return nil, errPending
	}
	if st.nActions >= s.limits.actions {
		return nil, unprocessable("this sandbox account already holds %d volume actions, its limit; delete volumes first", s.limits.actions)
	}
	switch req.Type {
	case "attach", "detach":
		if req.DropletID <= 0 {
			return nil, unprocessable("droplet_id is required to %s a volume", req.Type)
		}
	}
	switch req.Type {
	case "attach":
		region, ok := a.dropletRegionOf(req.DropletID)
		switch {
		case !ok:
			return nil, unprocessable("Droplet %d was not found", req.DropletID)
		case region != v.Region.Slug:
			return nil, unprocessable("Droplet %d is in another region (%s): a volume attaches only to a Droplet in its own region (%s)", req.DropletID, region, v.Region.Slug)
		case len(v.DropletIDs) > 0:
			return nil, unprocessable("the volume is already attached to Droplet %d: a volume attaches to one Droplet at a time", v.DropletIDs[0])
		case st.attachedTo(a, req.DropletID) >= maxDropletVolumes:
			return nil, unprocessable("Droplet %d already has %d volumes attached, its limit", req.DropletID, maxDropletVolumes)
		}
	case "detach":
		if !slices.Contains(v.DropletIDs, req.DropletID) {
			return nil, unprocessable("Attachment not found")
		}
	case "resize":
		switch {
		case req.SizeGigabytes > maxVolumeSize:
			return nil, unprocessable("size_gigabytes must be at most %d", maxVolumeSize)
		case req.SizeGigabytes <= v.SizeGigabytes:
			return nil, unprocessable("size_gigabytes %d is not larger than the volume's %d: volumes may only be resized upwards", req.SizeGigabytes, v.SizeGigabytes)
		}
	}
	delay, errored := s.actionDice.roll()
	now := s.now().UTC()
	return &action{
		id: int(s.nextActionID.Add(1)), volumeID: v.ID, kind: kind, region: *v.Region,
		started: now, due: now.Add(delay), errored: errored,
		dropletID: req.DropletID, size: req.SizeGigabytes,
	}, nil
}

// attachedTo counts the volumes attached, or being attached, to a Droplet.
func (st *accountState) attachedTo(a *Account, dropletID int) int {
	n := 0
	for _, v := range st.volumes(a, "", "") {
		if slices.Contains(v.DropletIDs, dropletID) {
			n++
		}
	}
	for _, ac := range st.pending {
		if ac.kind == "attach_volume" && ac.dropletID == dropletID {
			n++
		}
	}
	return n
}

// wire is the action as DigitalOcean shows it: in-progress until it has
// ended, then completed or errored with completed_at.
func (ac *action) wire(ended bool) actionWire {
	region := ac.region
	out := actionWire{
		ID: ac.id, Status: "in-progress", Type: ac.kind, StartedAt: ac.started.Format(time.RFC3339),
		ResourceType: "volume", Region: &region, RegionSlug: region.Slug,
	}
	if ended {
		out.Status = "completed"
		if ac.errored {
			out.Status = "errored"
		}
		done := ac.due.Format(time.RFC3339)
		out.CompletedAt = &done
	}
	return out
}

// volumeList serves a page of what a volume holds (actions, snapshots);
// 404 when the volume is unknown. st is nil when nobody wrote with the token.
func (s *Sandbox) volumeList(w http.ResponseWriter, r *http.Request, page func(pageWindow, *accountState, *upstream.Volume) answer) {
	p, ok := s.parsePage(w, r)
	if !ok {
		return
	}
	s.read(w, r, func(a *Account, st *accountState) answer {
		v := currentVolume(a, st, r.PathValue("id"))
		if v == nil {
			return refused(errNotFound)
		}
		return page(p, st, v)
	})
}

func (s *Sandbox) volumeActions(w http.ResponseWriter, r *http.Request) {
	s.volumeList(w, r, func(p pageWindow, st *accountState, v *upstream.Volume) answer {
		var all []*action
		if st != nil {
			all = st.actions[v.ID]
		}
		p.total = len(all)
		lo, hi := p.bounds()
		now := s.now()
		list := make([]actionWire, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ac := all[len(all)-1-i] // newest first
			list = append(list, ac.wire(!now.Before(ac.due)))
		}
		return reply(http.StatusOK, actionPage{Actions: list, Links: p.links(r), Meta: p.meta()})
	})
}

func (s *Sandbox) volumeAction(w http.ResponseWriter, r *http.Request) {
	s.read(w, r, func(a *Account, st *accountState) answer {
		v := currentVolume(a, st, r.PathValue("id"))
		id, err := strconv.Atoi(r.PathValue("action_id"))
		if v == nil || st == nil || err != nil {
			return refused(errNotFound)
		}
		i := slices.IndexFunc(st.actions[v.ID], func(ac *action) bool { return ac.id == id })
		if i < 0 {
			return refused(errNotFound)
		}
		ac := st.actions[v.ID][i]
		return reply(http.StatusOK, actionResponse{Action: ac.wire(!s.now().Before(ac.due))})
	})
}

func (s *Sandbox) createSnapshot(w http.ResponseWriter, r *http.Request) {
	var req snapshotRequest
	if !s.readBody(w, r, &req) {
		return
	}
	s.write(w, r, func(a *Account, st *accountState) answer {
		v := st.volume(a, r.PathValue("id"))
		switch {
		case v == nil:
			return refused(errNotFound)
		case req.Name == "":
			return refused(unprocessable("name is required"))
		case len(st.snaps) >= s.limits.snapshots:
			return refused(unprocessable("this sandbox account already holds %d snapshots, its limit; delete some first", s.limits.snapshots))
		}
		snap := &snapshotWire{
			ID: uuid.NewString(), Name: req.Name, CreatedAt: s.now().UTC().Format(time.RFC3339),
			Regions: []string{v.Region.Slug}, MinDiskSize: v.SizeGigabytes,
			// The billable size is the data written, which the sandbox does
			// not have: a tenth of the volume stands in for it.
			SizeGigabytes: float64(v.SizeGigabytes) / 10,
			ResourceID:    v.ID, ResourceType: "volume", Tags: nonNil(slices.Clone(req.Tags)),
		}
		st.snaps[snap.ID] = snap
		st.snapIDs = append(st.snapIDs, snap.ID)
		return reply(http.StatusCreated, snapshotResponse{Snapshot: snap})
	})
}

func (s *Sandbox) volumeSnapshots(w http.ResponseWriter, r *http.Request) {
	s.volumeList(w, r, func(p pageWindow, st *accountState, v *upstream.Volume) answer {
		var all []snapshotWire
		if st != nil {
			for _, id := range st.snapIDs {
				if snap := st.snaps[id]; snap.ResourceID == v.ID {
					all = append(all, *snap)
				}
			}
		}
		p.total = len(all)
		lo, hi := p.bounds()
		return reply(http.StatusOK, snapshotPage{Snapshots: nonNil(all[lo:hi]), Links: p.links(r), Meta: p.meta()})
	})
}

func (s *Sandbox) snapshot(w http.ResponseWriter, r *http.Request) {
	s.read(w, r, func(_ *Account, st *accountState) answer {
		if st == nil || st.snaps[r.PathValue("snapshot_id")] == nil {
			return refused(errNotFound)
		}
		return reply(http.StatusOK, snapshotResponse{Snapshot: st.snaps[r.PathValue("snapshot_id")]})
	})
}

func (s *Sandbox) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, func(_ *Account, st *accountState) answer {
		id := r.PathValue("snapshot_id")
		if st.snaps[id] == nil {
			return refused(errNotFound)
		}
		delete(st.snaps, id)
		st.snapIDs = slices.DeleteFunc(st.snapIDs, func(x string) bool { return x == id })
		return reply(http.StatusNoContent, nil)
	})
}
