package model

import (
	"strconv"

	"github.com/oceangraph/oceangraph/upstream"
)

// actionStatuses maps DigitalOcean's action statuses to the enum.
var actionStatuses = map[string]ActionStatus{
	upstream.ActionInProgress: ActionStatusInProgress,
	upstream.ActionCompleted:  ActionStatusCompleted,
	upstream.ActionErrored:    ActionStatusErrored,
}

// VolumeActionOf converts an action of the volume volumeID; a status this
// server does not know becomes UNKNOWN.
func VolumeActionOf(a *upstream.VolumeAction, volumeID string) VolumeAction {
	status, ok := actionStatuses[a.Status]
	if !ok {
		status = ActionStatusUnknown
	}
	out := VolumeAction{
		ID:          strconv.Itoa(a.ID),
		Type:        a.Type,
		Status:      status,
		StartedAt:   DateTimeFrom(a.StartedAt),
		CompletedAt: DateTimeFrom(a.CompletedAt),
		VolumeID:    volumeID,
	}
	switch {
	case a.Region != nil:
		out.Region = &Region{r: a.Region}
	case a.RegionSlug != "":
		out.Region = &Region{r: &upstream.Region{Slug: a.RegionSlug}}
	}
	return out
}

// VolumeActionFrom is VolumeActionOf on the heap, for an action on its own.
func VolumeActionFrom(a *upstream.VolumeAction, volumeID string) *VolumeAction {
	x := VolumeActionOf(a, volumeID)
	return &x
}

// VolumeSnapshotOf converts a volume snapshot; null regions and tags become empty lists.
func VolumeSnapshotOf(s *upstream.Snapshot) VolumeSnapshot {
	minDisk, size, volumeID := s.MinDiskSize, s.SizeGigabytes, s.ResourceID
	return VolumeSnapshot{
		ID:            s.ID,
		Name:          s.Name,
		CreatedAt:     DateTimeFrom(s.CreatedAt),
		Regions:       nonNil(s.Regions),
		MinDiskSize:   &minDisk,
		SizeGigabytes: &size,
		Tags:          nonNil(s.Tags),
		VolumeID:      present(&volumeID),
	}
}
