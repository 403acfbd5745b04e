package graph

// The per-request loaders: one set per GraphQL HTTP request (made in
// handler.go), never shared across requests or tokens. Each loader caches by
// the identity of an upstream call, so an identical call is made at most once
// per request however many aliases, fragments or entities ask for it.
//
// Failures: a call that fails for good (401, 403, 404) is cached like a value,
// so asking again in the same request costs nothing and gives the same error.
// A transient failure (5xx, 429, no answer, an undecodable body) is returned
// wrapped in dataloader's SkipCacheError, which v7.2.0 removes from the cache
// when the waiters read it: the fields that asked together share the failure,
// and a field that asks later tries DigitalOcean again.

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/oceangraph/oceangraph/upstream"
)

// listKey identifies one page of a list endpoint. filter carries what
// narrows the list besides paging: the invoice uuid for items, region and name
// for volumes.
type listKey struct {
	filter        string
	page, perPage int
}

// volumeListKey identifies one page of GET /v2/volumes.
type volumeListKey struct {
	region, name  string
	page, perPage int
}

// loaders is the set of per-request loaders, one per upstream call shape,
// each made on its first use: a request needs one or two of the ten, and
// making a loader costs a handful of allocations.
type loaders struct {
	client *upstream.Client
	// files: GET /v2/customers/my/invoices/{uuid}/{csv|pdf}, for InvoiceFile's fields (files.go).
	files *fileDownloads
	// naive: no cache, no de-duplication (Config.Naive).
	naive bool

	mu   sync.Mutex
	made madeLoaders
	// unprimed are the volume pages read before the by-id loader was made:
	// nothing can ask for a volume by id until it is, so priming waits for it
	// (most requests never make it, and priming costs a thunk a volume).
	unprimed []*upstream.VolumePage
}

// madeLoaders are the loaders a request has made so far (nil: not yet used).
type madeLoaders struct {
	// billingHistoryPages: GET /v2/customers/my/billing_history?page&per_page.
	billingHistoryPages *dataloader.Loader[listKey, *upstream.BillingHistoryPage]
	// invoicePages: GET /v2/customers/my/invoices?page&per_page.
	invoicePages *dataloader.Loader[listKey, *upstream.InvoicePage]
	// invoiceItemPages: GET /v2/customers/my/invoices/{uuid}?page&per_page (filter = uuid).
	invoiceItemPages *dataloader.Loader[listKey, *upstream.InvoiceItemPage]
	// invoiceSummaries: GET /v2/customers/my/invoices/{uuid}/summary.
	invoiceSummaries *dataloader.Loader[string, *upstream.InvoiceSummary]
	// volumePages: GET /v2/volumes?region&name&page&per_page; primes volumes.
	volumePages *dataloader.Loader[volumeListKey, *upstream.VolumePage]
	// volumes: GET /v2/volumes/{id}.
	volumes *dataloader.Loader[string, *upstream.Volume]
	// balance: GET /v2/customers/my/balance (one key).
	balance *dataloader.Loader[struct{}, *upstream.Balance]
	// volumeActionPages: GET /v2/volumes/{id}/actions?page&per_page (filter = volume id).
	volumeActionPages *dataloader.Loader[listKey, *upstream.VolumeActionPage]
	// volumeActions: GET /v2/volumes/{id}/actions/{action_id}.
	volumeActions *dataloader.Loader[actionKey, *upstream.VolumeAction]
	// volumeSnapshotPages: GET /v2/volumes/{id}/snapshots?page&per_page (filter = volume id).
	volumeSnapshotPages *dataloader.Loader[listKey, *upstream.SnapshotPage]
}

// newLoaders makes a request's loaders; every upstream call goes through
// callUpstream (token, concurrency bound).
//
// naive (Config.Naive, for benchmarks only) gives loaders without a cache:
// every load is its own upstream call, as a server without loaders would make.
func newLoaders(c *upstream.Client, naive bool) *loaders {
	return &loaders{client: c, naive: naive, files: newFileDownloads(c, naive)}
}

// listCacheName is a list's cache entry name, made only when lists are cached
// (CACHE_LIST_TTL), the only case in which cachedList reads it: by default a
// list call would format a name for nothing.
func listCacheName(ctx context.Context, name func() string) string {
	if c := scopeFrom(ctx).cost; c == nil || c.cache == nil || c.state.ListTTL <= 0 {
		return ""
	}
	return name()
}

// made returns *slot, making it with newLoader(call) on its first use.
func made[K comparable, V any](l *loaders, slot **dataloader.Loader[K, V], call func(ctx context.Context, key K) (V, error)) *dataloader.Loader[K, V] {
	l.mu.Lock()
	defer l.mu.Unlock()
	if *slot == nil {
		*slot = newLoader(l.naive, call)
	}
	return *slot
}

func (l *loaders) billingHistoryPages() *dataloader.Loader[listKey, *upstream.BillingHistoryPage] {
	return made(l, &l.made.billingHistoryPages, func(ctx context.Context, k listKey) (*upstream.BillingHistoryPage, error) {
		p, err := cachedList(ctx, listCacheName(ctx, func() string { return fmt.Sprintf("billing_history?page=%d&per_page=%d", k.page, k.perPage) }), func(ctx context.Context) (*upstream.BillingHistoryPage, error) {
			return l.client.ListBillingHistory(ctx, upstream.ListOptions{Page: k.page, PerPage: k.perPage})
		})
		if err == nil {
			uuids := make([]string, len(p.BillingHistory))
			for i, e := range p.BillingHistory {
				uuids[i] = e.InvoiceUUID
			}
			markIssued(ctx, uuids...) // one write for the page
		}
		return p, err
	})
}

func (l *loaders) invoicePages() *dataloader.Loader[listKey, *upstream.InvoicePage] {
	return made(l, &l.made.invoicePages, func(ctx context.Context, k listKey) (*upstream.InvoicePage, error) {
		p, err := cachedList(ctx, listCacheName(ctx, func() string { return fmt.Sprintf("invoices?page=%d&per_page=%d", k.page, k.perPage) }), func(ctx context.Context) (*upstream.InvoicePage, error) {
			return l.client.ListInvoices(ctx, upstream.ListOptions{Page: k.page, PerPage: k.perPage})
		})
		if err == nil {
			uuids := make([]string, len(p.Invoices))
			for i, inv := range p.Invoices { // the list holds issued invoices; the preview is apart
				uuids[i] = inv.InvoiceUUID
			}
			markIssued(ctx, uuids...) // one write for the page
		}
		return p, err
	})
}

// An issued invoice's item pages and summary never change: they go through the cache.
func (l *loaders) invoiceItemPages() *dataloader.Loader[listKey, *upstream.InvoiceItemPage] {
	return made(l, &l.made.invoiceItemPages, func(ctx context.Context, k listKey) (*upstream.InvoiceItemPage, error) {
		return cachedIfIssued(ctx, k.filter, fmt.Sprintf("items/%s?page=%d&per_page=%d", k.filter, k.page, k.perPage), func(ctx context.Context) (*upstream.InvoiceItemPage, error) {
			return l.client.ListInvoiceItems(ctx, k.filter, upstream.ListOptions{Page: k.page, PerPage: k.perPage})
		})
	})
}

func (l *loaders) invoiceSummaries() *dataloader.Loader[string, *upstream.InvoiceSummary] {
	return made(l, &l.made.invoiceSummaries, func(ctx context.Context, ref string) (*upstream.InvoiceSummary, error) {
		return cachedIfIssued(ctx, ref, "summary/"+ref, func(ctx context.Context) (*upstream.InvoiceSummary, error) {
			return l.client.GetInvoiceSummary(ctx, ref)
		})
	})
}

// volumes is the by-id loader, primed with the volumes of the pages read so far.
func (l *loaders) volumes(ctx context.Context) *dataloader.Loader[string, *upstream.Volume] {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.made.volumes == nil {
		l.made.volumes = newLoader(l.naive, l.client.GetVolume)
		for _, p := range l.unprimed {
			prime(ctx, l.made.volumes, p)
		}
		l.unprimed = nil
	}
	return l.made.volumes
}

// primeListed lets the volumes of a page answer volume(id) and Volume
// entities without a call: at once when the by-id loader exists, else when it is made.
func (l *loaders) primeListed(ctx context.Context, p *upstream.VolumePage) {
	l.mu.Lock()
	volumes := l.made.volumes
	if volumes == nil {
		l.unprimed = append(l.unprimed, p)
	}
	l.mu.Unlock()
	if volumes != nil {
		prime(ctx, volumes, p)
	}
}

// prime puts a page's volumes into the by-id loader; one primed before stays.
func prime(ctx context.Context, volumes *dataloader.Loader[string, *upstream.Volume], p *upstream.VolumePage) {
	for i := range p.Volumes {
		if v := &p.Volumes[i]; v.ID != "" {
			volumes.Prime(ctx, v.ID, v)
		}
	}
}

func (l *loaders) volumePages() *dataloader.Loader[volumeListKey, *upstream.VolumePage] {
	return made(l, &l.made.volumePages, func(ctx context.Context, k volumeListKey) (*upstream.VolumePage, error) {
		p, err := cachedList(ctx, listCacheName(ctx, func() string {
			return fmt.Sprintf("volumes@%s?region=%q&name=%q&page=%d&per_page=%d", volumeListGeneration(ctx), k.region, k.name, k.page, k.perPage)
		}), func(ctx context.Context) (*upstream.VolumePage, error) {
			return l.client.ListVolumes(ctx, upstream.VolumeListOptions{
				ListOptions: upstream.ListOptions{Page: k.page, PerPage: k.perPage},
				Region:      k.region, Name: k.name,
			})
		})
		if err == nil {
			l.primeListed(ctx, p)
		}
		return p, err
	})
}

func (l *loaders) balance() *dataloader.Loader[struct{}, *upstream.Balance] {
	return made(l, &l.made.balance, func(ctx context.Context, _ struct{}) (*upstream.Balance, error) {
		return l.client.GetBalance(ctx)
	})
}

func (l *loaders) volumeActionPages() *dataloader.Loader[listKey, *upstream.VolumeActionPage] {
	return made(l, &l.made.volumeActionPages, func(ctx context.Context, k listKey) (*upstream.VolumeActionPage, error) {
		return l.client.ListVolumeActions(ctx, k.filter, upstream.ListOptions{Page: k.page, PerPage: k.perPage})
	})
}

func (l *loaders) volumeActions() *dataloader.Loader[actionKey, *upstream.VolumeAction] {
	return made(l, &l.made.volumeActions, func(ctx context.Context, k actionKey) (*upstream.VolumeAction, error) {
		return l.client.GetVolumeAction(ctx, k.volumeID, k.actionID)
	})
}

func (l *loaders) volumeSnapshotPages() *dataloader.Loader[listKey, *upstream.SnapshotPage] {
	return made(l, &l.made.volumeSnapshotPages, func(ctx context.Context, k listKey) (*upstream.SnapshotPage, error) {
		return l.client.ListVolumeSnapshots(ctx, k.filter, upstream.ListOptions{Page: k.page, PerPage: k.perPage})
	})
}

// actionKey identifies one action of a volume.
type actionKey struct {
	volumeID string
	actionID int
}

// forgetVolumes drops what a write to block storage may have made stale, so
// that a later field of the request asks DigitalOcean again: the volume
// lists, volumes by id, and the volumes' actions and snapshots. A write is
// rare and these entries cheap, so all of them go rather than a guess at which.
func (l *loaders) forgetVolumes() {
	l.mu.Lock()
	m := l.made
	l.unprimed = nil
	l.mu.Unlock()
	clearAll(m.volumePages)
	clearAll(m.volumes)
	clearAll(m.volumeActionPages)
	clearAll(m.volumeActions)
	clearAll(m.volumeSnapshotPages)
}

// clearAll empties a loader's cache; one not made yet has none.
func clearAll[K comparable, V any](l *dataloader.Loader[K, V]) {
	if l != nil {
		l.ClearAll()
	}
}

// newLoader wraps a one-key upstream call in a per-request loader: the call
// runs under the request's token and concurrency bound, and a transient
// failure is handed back without being cached.
//
// No DigitalOcean endpoint takes several keys, so a batch would only make the
// first key wait for others (a timer of 16 ms by default, ~1 ms of wall time
// even at 100 µs): every key is its own batch, dispatched at once, and the
// loader's cache still de-duplicates identical calls.
func newLoader[K comparable, V any](naive bool, call func(ctx context.Context, key K) (V, error)) *dataloader.Loader[K, V] {
	batch := func(ctx context.Context, keys []K) []*dataloader.Result[V] {
		results := make([]*dataloader.Result[V], len(keys))
		for i, err := range concurrently(ctx, len(keys), func(i int) error {
			results[i] = &dataloader.Result[V]{}
			return callUpstream(ctx, func(ctx context.Context) (err error) {
				results[i].Data, err = call(ctx, keys[i])
				return err
			})
		}) {
			var ue *upstream.Error
			if errors.As(err, &ue) && ue.Transient() {
				err = dataloader.NewSkipCacheError(err)
			}
			results[i].Error = err
		}
		return results
	}
	// A batch of one key takes one request: the default input capacity (1,000)
	// would make each Load a batcher with an 8 KB channel buffer, live for the call.
	options := []dataloader.Option[K, V]{dataloader.WithBatchCapacity[K, V](1), dataloader.WithInputCapacity[K, V](1)}
	if naive {
		options = append(options, dataloader.WithCache[K, V](&dataloader.NoCache[K, V]{}))
	}
	return dataloader.NewBatchedLoader(batch, options...)
}

// load asks a loader for one key and waits for the answer.
func load[K comparable, V any](ctx context.Context, l *dataloader.Loader[K, V], key K) (V, error) {
	return l.Load(ctx, key)()
}

// Page fetchers: how a connection (connection.go) reads one upstream page
// through the request's loaders.

// billingHistoryPage reads a page of the billing history.
func billingHistoryPage(ctx context.Context, page, perPage int) (listPage[upstream.BillingHistoryEntry], error) {
	p, err := load(ctx, scopeFrom(ctx).loaders.billingHistoryPages(), listKey{page: page, perPage: perPage})
	if err != nil {
		return listPage[upstream.BillingHistoryEntry]{}, err
	}
	return listPage[upstream.BillingHistoryEntry]{items: p.BillingHistory, total: p.Meta.Total, hasNext: p.Links.HasNext(), lastPage: p.Links.LastPage()}, nil
}

// loadInvoicePage reads the raw invoice list page (for its invoice_preview).
func loadInvoicePage(ctx context.Context, page, perPage int) (*upstream.InvoicePage, error) {
	return load(ctx, scopeFrom(ctx).loaders.invoicePages(), listKey{page: page, perPage: perPage})
}

// invoiceItemPages returns the fetcher of an invoice's item pages.
func invoiceItemPages(ref string) pageFetcher[upstream.InvoiceItem] {
	return func(ctx context.Context, page, perPage int) (listPage[upstream.InvoiceItem], error) {
		p, err := load(ctx, scopeFrom(ctx).loaders.invoiceItemPages(), listKey{filter: ref, page: page, perPage: perPage})
		if err != nil {
			return listPage[upstream.InvoiceItem]{}, err
		}
		return listPage[upstream.InvoiceItem]{items: p.InvoiceItems, total: p.Meta.Total, hasNext: p.Links.HasNext(), lastPage: p.Links.LastPage()}, nil
	}
}

// volumeActionPages returns the fetcher of a volume's actions.
func volumeActionPages(volumeID string) pageFetcher[upstream.VolumeAction] {
	return func(ctx context.Context, page, perPage int) (listPage[upstream.VolumeAction], error) {
		p, err := load(ctx, scopeFrom(ctx).loaders.volumeActionPages(), listKey{filter: volumeID, page: page, perPage: perPage})
		if err != nil {
			return listPage[upstream.VolumeAction]{}, err
		}
		return listPage[upstream.VolumeAction]{items: p.Actions, total: p.Meta.Total, hasNext: p.Links.HasNext(), lastPage: p.Links.LastPage()}, nil
	}
}

// volumeSnapshotPages returns the fetcher of a volume's snapshots.
func volumeSnapshotPages(volumeID string) pageFetcher[upstream.Snapshot] {
	return func(ctx context.Context, page, perPage int) (listPage[upstream.Snapshot], error) {
		p, err := load(ctx, scopeFrom(ctx).loaders.volumeSnapshotPages(), listKey{filter: volumeID, page: page, perPage: perPage})
		if err != nil {
			return listPage[upstream.Snapshot]{}, err
		}
		return listPage[upstream.Snapshot]{items: p.Snapshots, total: p.Meta.Total, hasNext: p.Links.HasNext(), lastPage: p.Links.LastPage()}, nil
	}
}

// loadVolumeAction reads one action of a volume.
func loadVolumeAction(ctx context.Context, volumeID string, actionID int) (*upstream.VolumeAction, error) {
	return load(ctx, scopeFrom(ctx).loaders.volumeActions(), actionKey{volumeID, actionID})
}

// volumePages returns the fetcher of the volume list filtered by region and name.
func volumePages(region, name string) pageFetcher[upstream.Volume] {
	return func(ctx context.Context, page, perPage int) (listPage[upstream.Volume], error) {
		p, err := load(ctx, scopeFrom(ctx).loaders.volumePages(), volumeListKey{region: region, name: name, page: page, perPage: perPage})
		if err != nil {
			return listPage[upstream.Volume]{}, err
		}
		return listPage[upstream.Volume]{items: p.Volumes, total: p.Meta.Total, hasNext: p.Links.HasNext(), lastPage: p.Links.LastPage()}, nil
	}
}

// loadInvoiceSummary reads an invoice's summary (ref: a UUID or "preview").
func loadInvoiceSummary(ctx context.Context, ref string) (*upstream.InvoiceSummary, error) {
	return load(ctx, scopeFrom(ctx).loaders.invoiceSummaries(), ref)
}

// loadVolume reads a volume by id (free when a list page of this request had it).
func loadVolume(ctx context.Context, id string) (*upstream.Volume, error) {
	return load(ctx, scopeFrom(ctx).loaders.volumes(ctx), id)
}

// loadBalance reads the account balance.
func loadBalance(ctx context.Context) (*upstream.Balance, error) {
	return load(ctx, scopeFrom(ctx).loaders.balance(), struct{}{})
}

// previewSink keeps the invoice_preview of the first invoice list page read
// (pages of one window may be read concurrently).
type previewSink struct {
	mu      sync.Mutex
	preview *upstream.Invoice
	seen    bool
}

// invoiceListPages returns the fetcher of the invoice list; the preview the
// pages carry goes to sink, so `preview` costs no call of its own.
func invoiceListPages(sink *previewSink) pageFetcher[upstream.Invoice] {
	return func(ctx context.Context, page, perPage int) (listPage[upstream.Invoice], error) {
		p, err := loadInvoicePage(ctx, page, perPage)
		if err != nil {
			return listPage[upstream.Invoice]{}, err
		}
		sink.mu.Lock()
		if !sink.seen {
			sink.preview, sink.seen = p.InvoicePreview, true
		}
		sink.mu.Unlock()
		return listPage[upstream.Invoice]{items: p.Invoices, total: p.Meta.Total, hasNext: p.Links.HasNext(), lastPage: p.Links.LastPage()}, nil
	}
}
