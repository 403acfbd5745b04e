package graph

// The one path of every mutation (runWrite): check the input cheaply (a
// refusal is a UserError and costs no call), honour the idempotency key,
// send the write once through the request's token and slots, turn
// DigitalOcean's refusal of the input into UserErrors, drop what the write
// made stale from the request's loaders, and keep the answer for a repeat.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/oceangraph/oceangraph/graph/model"
	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/upstream"
)

// DigitalOcean's limits on a volume, as the spec states them; checked here
// too so that an obvious mistake costs no upstream call.
const (
	minVolumeGiB = 1
	maxVolumeGiB = 16384
	// maxIdempotencyWait bounds how long a repeat waits for the same key's first run.
	maxIdempotencyWait = 30 * time.Second
	// maxIdempotencyKey bounds a client's key (it is hashed before it is stored).
	maxIdempotencyKey = 255
)

// volumeName is DigitalOcean's rule for a volume's name.
var volumeName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

// filesystemLabelMax is the longest label each filesystem takes.
var filesystemLabelMax = map[string]int{"ext4": 16, "xfs": 12}

// writeAnswer is a mutation's outcome as kept for a repeat with the same
// idempotency key: DigitalOcean's objects (not the payload), so that a repeat
// may select other fields than the first request did.
type writeAnswer struct {
	Volume   *upstream.Volume       `json:"volume,omitempty"`
	Action   *upstream.VolumeAction `json:"action,omitempty"`
	Snapshot *upstream.Snapshot     `json:"snapshot,omitempty"`
	// VolumeID is the volume an action acts on (DigitalOcean's action does not say).
	VolumeID   string             `json:"volumeId,omitempty"`
	DeletedID  string             `json:"deletedId,omitempty"`
	UserErrors []*model.UserError `json:"userErrors,omitempty"`
}

// refused reports whether the input was refused (no result).
func (a *writeAnswer) refused() bool { return len(a.UserErrors) > 0 }

// writeRequest is one mutation as runWrite needs it.
type writeRequest struct {
	// name is the mutation's field name; it is part of the idempotency fingerprint.
	name string
	// input is the mutation's input, fingerprinted without its idempotency key.
	input any
	key   *string
	// check returns the refusals found without asking DigitalOcean.
	check func() []*model.UserError
	// send makes the one upstream write and fills in the answer.
	send func(ctx context.Context) (writeAnswer, error)
}

// runWrite is the path every mutation takes (see the top of this file).
func (r *Resolver) runWrite(ctx context.Context, w writeRequest) (*writeAnswer, error) {
	refusals := w.check()
	if w.key != nil {
		if *w.key == "" || len(*w.key) > maxIdempotencyKey {
			refusals = append(refusals, userError(fmt.Sprintf("an idempotency key has 1 to %d characters", maxIdempotencyKey), codeInvalid, "idempotencyKey"))
		}
	}
	if len(refusals) > 0 {
		return &writeAnswer{UserErrors: refusals}, nil
	}
	s := scopeFrom(ctx)
	if s.authErr != nil {
		return nil, s.authErr
	}
	if w.key == nil || r.Idempotency == nil {
		return r.sendWrite(ctx, w)
	}
	tokenKey, fingerprint := s.cost.tokenKey, fingerprintOf(w.name, w.input)
	giveUp := time.Now().Add(maxIdempotencyWait)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		o, err := r.Idempotency.Begin(ctx, tokenKey, *w.key, fingerprint)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.name, err)
		}
		switch o.Verdict {
		case shared.Mismatch:
			return nil, errIdempotencyMismatch
		case shared.Replay:
			var a writeAnswer
			if err := json.Unmarshal(o.Answer, &a); err != nil {
				return nil, fmt.Errorf("%s: replay the first answer: %w", w.name, err)
			}
			return &a, nil
		case shared.Proceed:
			a, err := r.sendWrite(ctx, w)
			if err != nil {
				// The key stays usable: nothing was done, or nobody knows
				// (DigitalOcean then refuses a duplicate: README, "outcome").
				r.Idempotency.Abandon(context.WithoutCancel(ctx), tokenKey, *w.key)
				return nil, err
			}
			body, _ := json.Marshal(a)
			if err := r.Idempotency.Finish(context.WithoutCancel(ctx), tokenKey, *w.key, fingerprint, body); err != nil {
				s.logger.WarnContext(ctx, "idempotency: the answer was not kept", "mutation", w.name, "err", err)
			}
			return a, nil
		}
		// The same key runs now (another tab, another replica): its answer comes soon.
		if time.Now().Add(wait).After(giveUp) {
			return nil, errIdempotencyKeyInUse
		}
		select {
		case <-ctx.Done():
			return nil, errIdempotencyKeyInUse
		case <-time.After(wait):
		}
	}
}

// sendWrite sends the write once, under the request's token and slots.
func (r *Resolver) sendWrite(ctx context.Context, w writeRequest) (*writeAnswer, error) {
	var a writeAnswer
	err := callUpstream(ctx, func(ctx context.Context) (err error) {
		a, err = w.send(ctx)
		return err
	})
	var ue *upstream.Error
	if err == nil || (errors.As(err, &ue) && ue.Outcome != upstream.OutcomeNotApplied) {
		// The write happened, or may have: what this request read before is stale,
		// and so are the token's volume lists in the cache (CACHE_LIST_TTL).
		scopeFrom(ctx).loaders.forgetVolumes()
		forgetCachedVolumeLists(ctx)
	}
	if refusal, ok := upstream.AsRefusal(err); ok {
		return &writeAnswer{UserErrors: []*model.UserError{refusalError(refusal)}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// IdempotencyStore keeps mutations' first answers by (token, key) for 24
// hours, with an in-progress claim while one runs, so that a repeat (on any
// replica sharing the store) reaches DigitalOcean at most once.
//
// shared.Idempotency (internal/shared, in process or on Redis) is one;
// memoryIdempotency (idempotency.go) is the handler's own default.
type IdempotencyStore interface {
	// Begin claims key for a mutation with this input fingerprint, or says why not.
	Begin(ctx context.Context, tokenKey, key, fingerprint string) (shared.Outcome, error)
	// Finish keeps the claimed mutation's answer for replay.
	Finish(ctx context.Context, tokenKey, key, fingerprint string, answer []byte) error
	// Abandon drops a claim, so that the key may be used again.
	Abandon(ctx context.Context, tokenKey, key string) error
}

// fingerprintOf identifies a mutation's input (its key left out, the
// mutation's name in): the same key with another fingerprint is refused.
func fingerprintOf(name string, input any) string {
	body, _ := json.Marshal(input)
	h := sha256.Sum256(append([]byte(name+"\x00"), body...))
	return hex.EncodeToString(h[:])
}

// The codes of UserError.code this server sets itself; DigitalOcean's
// refusals use upstream's RefusalCodes, of which these are a subset.
const (
	codeInvalid = string(upstream.RefusalInvalid)
)

// userError is a refusal aimed at input.<field> (the whole input when field is "").
func userError(message, code, field string) *model.UserError {
	path := []string{}
	if field != "" {
		path = []string{"input", field}
	}
	return &model.UserError{Field: path, Message: message, Code: code}
}

// inputFields maps DigitalOcean's request fields to this API's input fields.
var inputFields = map[string]string{
	"name":             "name",
	"region":           "region",
	"size_gigabytes":   "sizeGigabytes",
	"description":      "description",
	"filesystem_type":  "filesystemType",
	"filesystem_label": "filesystemLabel",
	"snapshot_id":      "snapshotId",
	"tags":             "tags",
	"droplet_id":       "dropletId",
}

// refusalError is DigitalOcean's refusal as a UserError, in its own words.
func refusalError(r upstream.Refusal) *model.UserError {
	message := r.Message
	if message == "" {
		message = "DigitalOcean refused the input"
	}
	return userError(message, string(r.Code), inputFields[r.Field])
}

// checkSize refuses a size DigitalOcean would refuse.
func checkSize(size int, field string) []*model.UserError {
	if size < minVolumeGiB || size > maxVolumeGiB {
		return []*model.UserError{userError(fmt.Sprintf("a volume has %d to %d GiB", minVolumeGiB, maxVolumeGiB), codeInvalid, field)}
	}
	return nil
}

// requireID refuses an id that checkID (ids.go) refuses, as a UserError.
func requireID(id, field string) []*model.UserError {
	if err := checkID(field, id); err != nil {
		return []*model.UserError{userError(err.Error(), codeInvalid, field)}
	}
	return nil
}

// checkDroplet refuses a Droplet id that cannot exist.
func checkDroplet(id int) []*model.UserError {
	if id < 1 {
		return []*model.UserError{userError("a Droplet id is a positive number", codeInvalid, "dropletId")}
	}
	return nil
}

// checkCreateVolume applies DigitalOcean's documented rules to a new volume.
func checkCreateVolume(in model.CreateVolumeInput) []*model.UserError {
	var errs []*model.UserError
	if !volumeName.MatchString(in.Name) {
		errs = append(errs, userError("a volume name has lowercase letters, digits and '-', starts with a letter and has at most 64 characters", codeInvalid, "name"))
	}
	errs = append(errs, requireID(in.Region, "region")...)
	switch {
	case in.SizeGigabytes != nil:
		errs = append(errs, checkSize(*in.SizeGigabytes, "sizeGigabytes")...)
	case in.SnapshotID == nil:
		errs = append(errs, userError("give a size, or a snapshot to create the volume from", codeInvalid, "sizeGigabytes"))
	}
	if in.FilesystemType != nil {
		max, ok := filesystemLabelMax[*in.FilesystemType]
		switch {
		case !ok:
			errs = append(errs, userError("the filesystem is ext4 or xfs (or null for none)", codeInvalid, "filesystemType"))
		case in.FilesystemLabel != nil && len(*in.FilesystemLabel) > max:
			errs = append(errs, userError(fmt.Sprintf("an %s label has at most %d characters", *in.FilesystemType, max), codeInvalid, "filesystemLabel"))
		}
	}
	return errs
}

// withoutKey returns the inputs without their idempotency keys, for the fingerprint.
func withoutKey[T any](in T, clear func(*T)) T {
	clear(&in)
	return in
}

// volumeListGenerationName holds the generation of a token's cached volume
// lists: the lists are cached under names carrying it (loaders.go), so a write
// moving it on retires every list cached before, whatever its filters and page.
const volumeListGenerationName = "list/volumes-generation"

// volumeListGeneration is the token's current generation ("0" before any write).
func volumeListGeneration(ctx context.Context) string {
	c := scopeFrom(ctx).cost
	if c == nil || c.cache == nil || c.state.ListTTL <= 0 {
		return "0"
	}
	if gen, _, ok := c.cache.Get(ctx, volumeListGenerationName); ok {
		return string(gen)
	}
	return "0"
}

// forgetCachedVolumeLists moves the token's volume-list generation on.
func forgetCachedVolumeLists(ctx context.Context) {
	c := scopeFrom(ctx).cost
	if c == nil || c.cache == nil || c.state.ListTTL <= 0 {
		return
	}
	c.cache.Put(ctx, volumeListGenerationName, []byte(strconv.FormatInt(time.Now().UnixNano(), 36)), 2*c.state.ListTTL)
}

// volumeAction is the path of attachVolume, detachVolume and resizeVolume.
func (r *Resolver) volumeAction(ctx context.Context, name string, input any, key *string, volumeID string, check func() []*model.UserError, send func(ctx context.Context) (*upstream.VolumeAction, error)) (*model.VolumeActionPayload, error) {
	a, err := r.runWrite(ctx, writeRequest{
		name: name, input: input, key: key, check: check,
		send: func(ctx context.Context) (writeAnswer, error) {
			act, err := send(ctx)
			return writeAnswer{Action: act, VolumeID: volumeID}, err
		},
	})
	if err != nil {
		return nil, err
	}
	payload := &model.VolumeActionPayload{UserErrors: nonNilErrors(a.UserErrors)}
	if a.Action != nil {
		payload.Action = model.VolumeActionFrom(a.Action, a.VolumeID)
	}
	return payload, nil
}

// nonNilErrors is a payload's userErrors: [] rather than null on success.
func nonNilErrors(errs []*model.UserError) []*model.UserError {
	if errs == nil {
		return []*model.UserError{}
	}
	return errs
}

// primeVolume lets a later field of the request read a volume the write returned without a call.
func primeVolume(ctx context.Context, v *upstream.Volume) {
	if s := scopeFrom(ctx); s.loaders != nil && v.ID != "" {
		s.loaders.volumes(ctx).Prime(ctx, v.ID, v)
	}
}

// parseActionID reads DigitalOcean's action number from an ID argument.
func parseActionID(id string) (int, error) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 || strconv.Itoa(n) != id {
		return 0, errBadActionID
	}
	return n, nil
}

// optionalString returns nil for "" (an id the answer does not have).
func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// derefInt returns the int an optional argument points to, 0 when absent.
func derefInt(n *int) int {
	if n == nil {
		return 0
	}
	return *n
}
