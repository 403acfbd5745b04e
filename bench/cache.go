package main

// The cache of issued invoices' data (issue 11) as the benchmark sees it: the
// server's own metrics of it, read after a load, prove that a load was cold
// (no lookup answered from the cache) and say how many bytes it held.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cacheUse is the server's cache metrics after a load.
type cacheUse struct {
	// Lookups counts oceangraph_cache_lookups_total by source (upstream: a miss).
	Lookups map[string]float64
	// Bytes is oceangraph_cache_bytes, what the in-process tier holds.
	Bytes float64
	// On: the server exports the cache's metrics, so its cache is on. False
	// also where the process has no /metrics (a floor).
	On bool
}

// Hits counts the lookups answered without an upstream call.
func (c cacheUse) Hits() float64 {
	return c.Lookups["memory"] + c.Lookups["shared"] + c.Lookups["joined"]
}

// Misses counts the lookups that called DigitalOcean.
func (c cacheUse) Misses() float64 { return c.Lookups["upstream"] }

func (c cacheUse) String() string {
	if !c.On {
		return "off"
	}
	return fmt.Sprintf("%.0f hits, %.0f misses, %.1f MiB held", c.Hits(), c.Misses(), c.Bytes/(1<<20))
}

// scrapeCache reads the cache's metrics from the server at url. A server
// without a cache (CACHE_BYTES=0) exports none: On is false.
func scrapeCache(ctx context.Context, url string) (cacheUse, error) {
	c := cacheUse{Lookups: map[string]float64{}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return c, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name, labels, _ := strings.Cut(series, "{"); name {
		case "oceangraph_cache_bytes":
			c.Bytes, c.On = v, true
		case "oceangraph_cache_lookups_total":
			_, source, _ := strings.Cut(labels, `source="`)
			source, _, _ = strings.Cut(source, `"`)
			c.Lookups[source] = v
		}
	}
	return c, sc.Err()
}
