package upstream

import (
	"net/url"
	"testing"
)

// queryValue answers what url.ParseQuery(raw).Get(key) answers.
func FuzzQueryValue(f *testing.F) {
	for _, raw := range []string{
		"", "page=3&per_page=20", "per_page=20&page=7", "page=1&page=2", "pag%65=4", "page=%34%32",
		"a=1;b=2&page=5", "page=5;x", "page=%zz&page=6", "page", "page=&page=2", "page+=3", "%zz=1&page=8",
	} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		if got, want := queryValue(raw, "page"), q.Get("page"); got != want {
			t.Errorf("queryValue(%q) = %q, url.ParseQuery says %q", raw, got, want)
		}
	})
}

func TestLastPage(t *testing.T) {
	for last, want := range map[string]int{
		"https://api.digitalocean.com/v2/volumes?page=3&per_page=20":  3,
		"https://api.digitalocean.com/v2/volumes?per_page=20&page=12": 12,
		"https://api.digitalocean.com/v2/volumes?per_page=20":         0,
		"":     0,
		"%zz?": 0,
	} {
		if got := (&Links{Pages: &Pages{Last: last}}).LastPage(); got != want {
			t.Errorf("LastPage(%q) = %d, want %d", last, got, want)
		}
	}
}
