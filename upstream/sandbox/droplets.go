package sandbox

import "slices"

// Droplets exist in the sandbox only as ids a volume can be attached to. An
// account's Droplets are those its invoices bill (its generated volumes are
// attached to some of them) plus two listed Droplets in every region of the
// catalog, which every account has, so that a client can attach a volume
// anywhere without first learning an id from the data.

// ListedDroplets returns the Droplets every account has, by region slug:
// 1000000r1 and 1000000r2, where r is the region's place in the catalog
// (nyc1 is 1, syd1 is 10). The README lists them.
func ListedDroplets() map[string][]int {
	out := make(map[string][]int, len(regionCatalog))
	for i, r := range regionCatalog {
		base := 100_000_000 + (i+1)*100
		out[r.slug] = []int{base + 1, base + 2}
	}
	return out
}

// listedDropletRegion finds a listed Droplet's region.
var listedDropletRegion = func() map[int]string {
	m := map[int]string{}
	for slug, ids := range ListedDroplets() {
		for _, id := range ids {
			m[id] = slug
		}
	}
	return m
}()

// dropletRegionOf returns the region of one of the account's Droplets; false
// when the account has no such Droplet.
func (a *Account) dropletRegionOf(id int) (string, bool) {
	if r, ok := listedDropletRegion[id]; ok {
		return r, true
	}
	r, ok := a.dropletRegion[id]
	return r, ok
}

// regionIndex finds a slug in the catalog; -1 when DigitalOcean has no such region.
func regionIndex(slug string) int {
	return slices.IndexFunc(regionCatalog, func(r struct{ slug, name string }) bool { return r.slug == slug })
}
