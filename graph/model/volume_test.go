package model

import (
	"testing"

	"github.com/oceangraph/oceangraph/upstream"
)

// A volume's createdAt is parsed from any of DigitalOcean's shapes, null when
// missing or malformed, and each view keeps its own answer.
func TestVolumeCreatedAt(t *testing.T) {
	page := []upstream.Volume{
		{CreatedAt: "2020-03-02T17:00:49Z"},
		{CreatedAt: "2018-06-01 08:44:38 +0000"},
		{CreatedAt: "yesterday"},
		{},
	}
	want := []string{"2020-03-02T17:00:49Z", "2018-06-01T08:44:38Z", "", ""}
	views := make([]Volume, len(page))
	for i := range page {
		views[i] = VolumeOf(&page[i])
	}
	for i := range views {
		got := views[i].CreatedAt()
		switch {
		case want[i] == "" && got != nil:
			t.Errorf("volume %d: createdAt %v, want null", i, got)
		case want[i] != "" && (got == nil || got.String() != want[i]):
			t.Errorf("volume %d: createdAt %v, want %s", i, got, want[i])
		}
	}
	if first, second := views[0].CreatedAt(), views[1].CreatedAt(); first.Equal(second.Time) {
		t.Errorf("two views share one answer: %v", first)
	}
}
