package model

import "github.com/oceangraph/oceangraph/upstream"

// Volume is a block storage volume: a view over DigitalOcean's own, whose
// fields are read when a query selects them, so a page of volumes is not
// copied field by field (nor its timestamps parsed) for what nobody asked.
// Its methods take no context, so gqlgen resolves them in line; the nullable
// strings point into the volume rather than into copies.
type Volume struct {
	v      *upstream.Volume
	region Region
	// created holds CreatedAt's answer, so that it needs no allocation of
	// its own; a view is resolved by one goroutine (its fields run in line).
	created DateTime
}

// VolumeOf is a view over a block storage volume (no copy).
func VolumeOf(v *upstream.Volume) Volume { return Volume{v: v, region: Region{r: v.Region}} }

// VolumeFrom is VolumeOf on the heap, for a volume on its own.
func VolumeFrom(v *upstream.Volume) *Volume {
	x := VolumeOf(v)
	return &x
}

// ID is the volume's id.
func (x *Volume) ID() string { return x.v.ID }

// Name is the volume's name.
func (x *Volume) Name() string { return x.v.Name }

// Description is null when DigitalOcean sends none.
func (x *Volume) Description() *string { return present(&x.v.Description) }

// SizeGigabytes is the volume's size in GiB.
func (x *Volume) SizeGigabytes() int { return x.v.SizeGigabytes }

// CreatedAt is null when missing or unparseable.
func (x *Volume) CreatedAt() *DateTime { return parseDateTime(x.v.CreatedAt, &x.created) }

// Region is null when DigitalOcean sends none.
func (x *Volume) Region() *Region {
	if x.region.r == nil {
		return nil
	}
	return &x.region
}

// DropletIds is empty (not null) when detached or when DigitalOcean sends null.
func (x *Volume) DropletIds() []int { return nonNil(x.v.DropletIDs) }

// Tags is empty (not null) when DigitalOcean sends null.
func (x *Volume) Tags() []string { return nonNil(x.v.Tags) }

// FilesystemType is null when the volume is not formatted.
func (x *Volume) FilesystemType() *string { return present(&x.v.FilesystemType) }

// FilesystemLabel is null when there is none.
func (x *Volume) FilesystemLabel() *string { return present(&x.v.FilesystemLabel) }

// IsEntity marks Volume as an Apollo Federation entity (key: id).
func (Volume) IsEntity() {}

// Region is a DigitalOcean region as a volume carries it (perhaps only its slug).
type Region struct{ r *upstream.Region }

// Slug is the region's slug, e.g. nyc3.
func (x *Region) Slug() string { return x.r.Slug }

// Name is null when DigitalOcean sends none.
func (x *Region) Name() *string { return present(&x.r.Name) }

// Available is null when DigitalOcean does not say.
func (x *Region) Available() *bool { return x.r.Available }

// Features is empty (not null) when DigitalOcean sends none.
func (x *Region) Features() []string { return nonNil(x.r.Features) }

// Sizes is empty (not null) when DigitalOcean sends none.
func (x *Region) Sizes() []string { return nonNil(x.r.Sizes) }

// present is s, or nil for a missing (empty) upstream string.
func present(s *string) *string {
	if *s == "" {
		return nil
	}
	return s
}
