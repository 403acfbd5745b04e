package model

// VolumeAction is an action of a volume. Its `volume` field resolves lazily
// (graph/volume_writes.resolvers.go) through the request's volume loader, so
// an action costs no second call unless the volume's fields are selected.
type VolumeAction struct {
	// ID is DigitalOcean's numeric id, as a string.
	ID string
	// Type is DigitalOcean's type, e.g. attach_volume.
	Type   string
	Status ActionStatus
	// StartedAt and CompletedAt are nil when DigitalOcean leaves them out.
	StartedAt   *DateTime
	CompletedAt *DateTime
	Region      *Region
	// VolumeID addresses the volume acted on; "" when unknown.
	VolumeID string
}

// Ended reports whether the action will not change again.
func (a *VolumeAction) Ended() bool {
	return a.Status == ActionStatusCompleted || a.Status == ActionStatusErrored
}
