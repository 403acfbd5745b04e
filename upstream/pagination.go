package upstream

import (
	"net/url"
	"strconv"
	"strings"
)

// ListOptions selects one page of a paginated DigitalOcean list. Zero values
// are left out of the query string, so DigitalOcean applies its defaults
// (page 1, 20 per page).
type ListOptions struct {
	Page    int
	PerPage int
}

// values renders the options as DigitalOcean's `page` and `per_page` parameters.
func (o ListOptions) values() url.Values {
	v := url.Values{}
	if o.Page > 0 {
		v.Set("page", strconv.Itoa(o.Page))
	}
	if o.PerPage > 0 {
		v.Set("per_page", strconv.Itoa(o.PerPage))
	}
	return v
}

// Links is the `links` object of a list response. It may be absent or `{}`.
type Links struct {
	Pages *Pages `json:"pages,omitempty"`
}

// Pages holds the absolute URLs of the neighbouring pages; only those that
// make sense are present (page 1 has no first/prev, the last page no next/last).
type Pages struct {
	First string `json:"first,omitempty"`
	Prev  string `json:"prev,omitempty"`
	Next  string `json:"next,omitempty"`
	Last  string `json:"last,omitempty"`
}

// HasNext reports whether the response links to a following page.
func (l *Links) HasNext() bool { return l != nil && l.Pages != nil && l.Pages.Next != "" }

// LastPage is the page number links.pages.last names; 0 when absent.
func (l *Links) LastPage() int {
	if l == nil || l.Pages == nil || l.Pages.Last == "" {
		return 0
	}
	u, err := url.Parse(l.Pages.Last)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(queryValue(u.RawQuery, "page"))
	return n
}

// queryValue is url.ParseQuery(raw).Get(key) without building the map (one a
// list page): parts holding ';' or failing to unescape are skipped as there.
func queryValue(raw, key string) string {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(part, ";") {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(k); err != nil || k != key {
			continue
		}
		if v, err := url.QueryUnescape(v); err == nil {
			return v
		}
	}
	return ""
}

// Meta is the `meta` object of a list response. Total is the number of
// objects across all pages; billing history may leave it out, hence the pointer.
type Meta struct {
	Total *int `json:"total,omitempty"`
}
