package sandbox

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/oceangraph/oceangraph/upstream"
)

// Account is one token's generated DigitalOcean account. It is shared by every
// request with that token on that day: treat it as read-only.
type Account struct {
	// CustomerID is the number DigitalOcean prints beside the invoice number
	// in file names ("6173678" in "(6173678-418071234)").
	CustomerID  string
	UserName    string
	UserEmail   string
	UserCompany string
	Address     upstream.BillingAddress
	// Invoices are the issued monthly invoices, newest first.
	Invoices []*Invoice
	// Preview is the current month's invoice so far.
	Preview *Invoice
	// BillingHistory is newest first; Invoice entries point at Invoices.
	BillingHistory []upstream.BillingHistoryEntry
	// Balance is consistent with Preview and the unpaid invoices;
	// GeneratedAt is filled in when it is served.
	Balance upstream.Balance
	// Volumes are in the order GET /v2/volumes lists them (oldest first).
	Volumes []upstream.Volume

	invoiceByUUID map[string]*Invoice
	volumeByID    map[string]*upstream.Volume
	// dropletRegion holds the account's own Droplets (those its invoices
	// bill and its volumes are attached to): id to region slug.
	dropletRegion map[int]string
}

// Invoice is one generated invoice with everything the endpoints serve about it.
type Invoice struct {
	UUID string
	// Number is the invoice_id, the number printed on the PDF.
	Number string
	// Period is YYYY-MM.
	Period     string
	Start, End time.Time
	// Amount is the exact total ("123.45"): the sum of the items' amounts.
	Amount string
	// IsPreview marks the current month's month-to-date invoice.
	IsPreview bool
	// UpdatedAt is set on the preview only (RFC 3339).
	UpdatedAt string
	Items     []upstream.InvoiceItem
	Summary   upstream.InvoiceSummary
}

// Wire is the invoice as an element of GET /v2/customers/my/invoices.
func (inv *Invoice) Wire() upstream.Invoice {
	return upstream.Invoice{
		InvoiceUUID:   inv.UUID,
		InvoiceID:     inv.Number,
		Amount:        inv.Amount,
		InvoicePeriod: inv.Period,
		UpdatedAt:     inv.UpdatedAt,
	}
}

// Invoice finds an invoice by UUID; "preview" names the preview. Nil when unknown.
func (a *Account) Invoice(uuid string) *Invoice {
	if uuid == upstream.PreviewUUID {
		return a.Preview
	}
	return a.invoiceByUUID[uuid]
}

// Volume finds a volume by id. Nil when unknown.
func (a *Account) Volume(id string) *upstream.Volume { return a.volumeByID[id] }

// FilterVolumes returns the volumes GET /v2/volumes lists for an exact name
// and/or region slug ("" matches any), in list order.
func (a *Account) FilterVolumes(name, region string) []upstream.Volume {
	if name == "" && region == "" {
		return a.Volumes
	}
	var out []upstream.Volume
	for _, v := range a.Volumes {
		if (name == "" || v.Name == name) && (region == "" || v.Region.Slug == region) {
			out = append(out, v)
		}
	}
	return out
}

// accountKey identifies a generated account: the token's hash (never the
// token itself) and the day the data was generated for.
type accountKey struct {
	tokenHash [32]byte
	day       time.Time
}

func keyFor(token string, now time.Time) accountKey {
	return accountKey{tokenHash: sha256.Sum256([]byte(token)), day: now.UTC().Truncate(24 * time.Hour)}
}

// uuidSpace namespaces the sandbox's name-based (version 5) UUIDs.
var uuidSpace = uuid.MustParse("6f2b0e1c-8d54-4c43-9f7e-5b1d7a0c3e21")

// generator builds one account from a seeded source, so one token on one day
// always yields the same account.
type generator struct {
	rng      *rand.Rand
	name     string // hex of the token hash and seed: the UUID name prefix
	day      time.Time
	droplets []droplet
	projects []string
}

type droplet struct {
	id     int
	uuid   string
	name   string
	size   string
	price  cents // per month
	region string
	since  time.Time
	backup bool
}

func generateAccount(k accountKey, seed int64) *Account {
	s1 := binary.BigEndian.Uint64(k.tokenHash[:8]) ^ uint64(seed)
	s2 := binary.BigEndian.Uint64(k.tokenHash[8:16])
	g := &generator{
		rng:  rand.New(rand.NewPCG(s1, s2)),
		name: fmt.Sprintf("%x-%d", k.tokenHash[:16], seed),
		day:  k.day,
	}
	a := &Account{invoiceByUUID: map[string]*Invoice{}, volumeByID: map[string]*upstream.Volume{}, dropletRegion: map[int]string{}}
	g.customer(a)
	regions := g.regions()
	g.projects = pickN(g.rng, []string{"web", "data-platform", "internal-tools", "mobile-api", "staging", "ml"}, 3)
	g.makeDroplets(regions)
	g.volumes(a, regions)
	g.invoices(a)
	g.history(a)
	g.balance(a)
	for _, inv := range a.Invoices {
		a.invoiceByUUID[inv.UUID] = inv
	}
	a.invoiceByUUID[a.Preview.UUID] = a.Preview
	for i := range a.Volumes {
		a.volumeByID[a.Volumes[i].ID] = &a.Volumes[i]
	}
	for _, d := range g.droplets {
		a.dropletRegion[d.id] = d.region
	}
	return a
}

func (g *generator) uuid(kind string, i any) string {
	return uuid.NewSHA1(uuidSpace, fmt.Appendf(nil, "%s/%s/%v", g.name, kind, i)).String()
}

func (g *generator) customer(a *Account) {
	first := []string{"Sammy", "Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Ken", "Radia", "Dennis"}
	last := []string{"Shark", "Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Thompson", "Perlman", "Ritchie"}
	companies := []string{"DigitalOcean", "Acme Corp", "Initech", "Globex", "Hooli", "Umbrella Labs", "Stark Industries"}
	cities := []struct{ city, region, postal, country string }{
		{"New York", "NY", "10013", "US"}, {"Cambridge", "MA", "02139", "US"}, {"Austin", "TX", "78701", "US"},
		{"Toronto", "ON", "M5V 2T6", "CA"}, {"Berlin", "BE", "10115", "DE"}, {"Amsterdam", "NH", "1012 JS", "NL"},
	}
	f, l := first[g.rng.IntN(len(first))], last[g.rng.IntN(len(last))]
	a.CustomerID = strconv.Itoa(1_000_000 + g.rng.IntN(8_999_999))
	a.UserName = f + " " + l
	a.UserEmail = fmt.Sprintf("%s.%s@example.com", lower(f), lower(l))
	a.UserCompany = companies[g.rng.IntN(len(companies))]
	c := cities[g.rng.IntN(len(cities))]
	created := g.day.AddDate(-3, 0, -g.rng.IntN(300)).Add(time.Duration(g.rng.IntN(86400)) * time.Second)
	a.Address = upstream.BillingAddress{
		AddressLine1:    fmt.Sprintf("%d %s", 1+g.rng.IntN(999), []string{"Main St", "Broadway", "Elm Street", "Harbour Rd", "Market St"}[g.rng.IntN(5)]),
		AddressLine2:    " ",
		City:            c.city,
		Region:          c.region,
		PostalCode:      c.postal,
		CountryISO2Code: c.country,
		CreatedAt:       created.Format("2006-01-02T15:04:05.000+00:00"),
		UpdatedAt:       created.AddDate(0, 2, 0).Format("2006-01-02T15:04:05.000+00:00"),
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// regionCatalog is DigitalOcean's region list as the embedded Region object gives it.
var regionCatalog = []struct{ slug, name string }{
	{"nyc1", "New York 1"}, {"nyc3", "New York 3"}, {"sfo3", "San Francisco 3"}, {"ams3", "Amsterdam 3"},
	{"fra1", "Frankfurt 1"}, {"lon1", "London 1"}, {"sgp1", "Singapore 1"}, {"tor1", "Toronto 1"},
	{"blr1", "Bangalore 1"}, {"syd1", "Sydney 1"},
}

var sizeCatalog = []struct {
	slug  string
	price cents
}{
	{"s-1vcpu-1gb", 600}, {"s-1vcpu-2gb", 1200}, {"s-2vcpu-2gb", 1800}, {"s-2vcpu-4gb", 2400},
	{"s-4vcpu-8gb", 4800}, {"g-2vcpu-8gb", 6300}, {"c-4", 8400},
}

// regions picks the 7 to 10 regions this account uses.
func (g *generator) regions() []upstream.Region {
	n := 7 + g.rng.IntN(len(regionCatalog)-6)
	idx := g.rng.Perm(len(regionCatalog))[:n]
	slices.Sort(idx)
	out := make([]upstream.Region, 0, n)
	for _, i := range idx {
		out = append(out, catalogRegion(i))
	}
	return out
}

// catalogRegion is the region object of regionCatalog[i], as a volume embeds it.
func catalogRegion(i int) upstream.Region {
	sizes := make([]string, len(sizeCatalog))
	for j, s := range sizeCatalog {
		sizes[j] = s.slug
	}
	available := true
	return upstream.Region{
		Name:      regionCatalog[i].name,
		Slug:      regionCatalog[i].slug,
		Features:  []string{"backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"},
		Available: &available,
		Sizes:     sizes,
	}
}

func (g *generator) makeDroplets(regions []upstream.Region) {
	n := 10 + g.rng.IntN(9)
	roles := []string{"web", "api", "worker", "db", "cache", "lb", "ci", "bastion"}
	for i := range n {
		sz := sizeCatalog[g.rng.IntN(len(sizeCatalog))]
		g.droplets = append(g.droplets, droplet{
			id:     300_000_000 + g.rng.IntN(200_000_000),
			uuid:   g.uuid("droplet", i),
			name:   fmt.Sprintf("%s-%02d", roles[g.rng.IntN(len(roles))], i+1),
			size:   sz.slug,
			price:  sz.price,
			region: regions[i%len(regions)].Slug,
			since:  g.day.AddDate(0, -g.rng.IntN(30), -g.rng.IntN(28)),
			backup: g.rng.IntN(3) == 0,
		})
	}
}

// volumes makes 100 to 159 volumes over every region of the account.
func (g *generator) volumes(a *Account, regions []upstream.Region) {
	prefixes := []string{"pg-data", "mysql-data", "redis-aof", "backups", "media", "uploads", "logs", "elastic",
		"minio", "registry", "ci-cache", "prometheus", "grafana", "mongo", "kafka", "etcd", "nfs-share", "scratch", "assets", "archive"}
	tags := []string{"production", "staging", "database", "k8s", "backup", "team-web", "team-data"}
	sizes := []int{10, 10, 20, 25, 50, 50, 100, 100, 250, 500}
	n := 100 + g.rng.IntN(60)
	taken := map[string]bool{} // region/name
	type made struct {
		v       upstream.Volume
		created time.Time
	}
	var vols []made
	for i := range n {
		region := regions[i%len(regions)]
		if i >= len(regions) {
			region = regions[g.rng.IntN(len(regions))]
		}
		prefix := prefixes[g.rng.IntN(len(prefixes))]
		if i == 1 {
			prefix = vols[0].v.Name[:len(vols[0].v.Name)-3] // one name in two regions
		}
		var name string
		for k := 1; ; k++ {
			name = fmt.Sprintf("%s-%02d", prefix, k)
			if !taken[region.Slug+"/"+name] {
				break
			}
		}
		taken[region.Slug+"/"+name] = true
		created := g.day.Add(-time.Duration(1+g.rng.IntN(30*30*24)) * time.Hour).Add(time.Duration(g.rng.IntN(3600)) * time.Second)
		v := upstream.Volume{
			ID:            g.uuid("volume", i),
			DropletIDs:    []int{},
			Name:          name,
			Description:   "Block store for " + prefix,
			SizeGigabytes: sizes[g.rng.IntN(len(sizes))],
			CreatedAt:     created.Format(time.RFC3339),
			Tags:          []string{},
			Region:        &region,
		}
		if g.rng.IntN(100) < 45 {
			for _, d := range g.droplets {
				if d.region == region.Slug {
					v.DropletIDs = []int{d.id}
					break
				}
			}
		}
		if g.rng.IntN(100) < 50 {
			v.Tags = pickN(g.rng, tags, 1+g.rng.IntN(2))
		}
		switch r := g.rng.IntN(10); {
		case r < 5:
			v.FilesystemType, v.FilesystemLabel = "ext4", truncate(name, 16)
		case r < 7:
			v.FilesystemType, v.FilesystemLabel = "xfs", truncate(name, 12)
		}
		vols = append(vols, made{v, created})
	}
	slices.SortStableFunc(vols, func(x, y made) int { return x.created.Compare(y.created) })
	for _, m := range vols {
		a.Volumes = append(a.Volumes, m.v)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func pickN[T any](rng *rand.Rand, from []T, n int) []T {
	out := make([]T, 0, n)
	for _, i := range rng.Perm(len(from))[:n] {
		out = append(out, from[i])
	}
	return out
}

// invoices makes 24 issued monthly invoices (newest first) and the preview.
func (g *generator) invoices(a *Account) {
	const issued = 24
	month := time.Date(g.day.Year(), g.day.Month(), 1, 0, 0, 0, 0, time.UTC)
	number := 100_000_000 + g.rng.IntN(400_000_000)
	for back := issued; back >= 0; back-- {
		start := month.AddDate(0, -back, 0)
		end := start.AddDate(0, 1, 0)
		inv := &Invoice{
			UUID:   g.uuid("invoice", start.Format("2006-01")),
			Number: strconv.Itoa(number),
			Period: start.Format("2006-01"),
			Start:  start,
			End:    end,
		}
		number += 1000 + g.rng.IntN(900_000)
		if back == 0 {
			inv.IsPreview = true
			inv.End = later(g.day, start.Add(time.Hour))
			inv.UpdatedAt = inv.End.Format(time.RFC3339)
		}
		g.items(a, inv, a.Volumes)
		if back == 0 {
			a.Preview = inv
		} else {
			a.Invoices = append(a.Invoices, inv)
		}
	}
	slices.Reverse(a.Invoices)
}

// bucket says which block of the summary an item adds to.
type bucket int

const (
	productCharge bucket = iota
	overage
	tax
	credit
)

type line struct {
	item   upstream.InvoiceItem
	amount cents
	bucket bucket
}

// items fills inv.Items, inv.Amount and inv.Summary from the account's
// resources alive in the invoice's period.
func (g *generator) items(a *Account, inv *Invoice, volumes []upstream.Volume) {
	monthHours := inv.Start.AddDate(0, 1, 0).Sub(inv.Start).Hours()
	var lines []line
	add := func(product, desc, group, resUUID, resID, category string, from time.Time, monthly cents, b bucket) {
		from = later(from, inv.Start)
		if !from.Before(inv.End) {
			return
		}
		hours := inv.End.Sub(from).Hours()
		amount := cents(float64(monthly)*hours/monthHours + 0.5)
		if b != productCharge || monthly < 0 {
			amount = monthly
		}
		lines = append(lines, line{bucket: b, amount: amount, item: upstream.InvoiceItem{
			Product:          product,
			ResourceUUID:     resUUID,
			ResourceID:       resID,
			GroupDescription: group,
			Description:      desc,
			Amount:           amount.String(),
			Duration:         strconv.Itoa(int(hours + 0.5)),
			DurationUnit:     "Hours",
			StartTime:        from.Format(time.RFC3339),
			EndTime:          inv.End.Format(time.RFC3339),
			ProjectName:      g.projects[len(lines)%len(g.projects)],
			Category:         category,
		}})
	}
	for _, d := range g.droplets {
		add("Droplets", fmt.Sprintf("%s (%s)", d.name, d.size), "", d.uuid, strconv.Itoa(d.id), "iaas", d.since, d.price, productCharge)
		if d.backup {
			add("Backups", fmt.Sprintf("%s (%s) backups", d.name, d.size), "", d.uuid, strconv.Itoa(d.id), "iaas", d.since, d.price/5, productCharge)
		}
	}
	for _, v := range volumes {
		created, _ := time.Parse(time.RFC3339, v.CreatedAt)
		add("Volumes", fmt.Sprintf("%s (%d GiB)", v.Name, v.SizeGigabytes), "", v.ID, "", "iaas", created, cents(v.SizeGigabytes*10), productCharge)
	}
	cluster := "k8s-" + g.projects[0] + "-prod"
	for i := range 3 {
		add("Kubernetes Clusters", fmt.Sprintf("%s-pool-%d node (s-2vcpu-4gb)", cluster, i+1), cluster, g.uuid("node", i), "", "iaas", inv.Start.AddDate(0, 0, -40), 2400, productCharge)
	}
	db := "db-postgresql-" + g.droplets[0].region + "-" + strconv.Itoa(10000+g.rng.IntN(89999))
	add("Managed Databases", "PostgreSQL db-s-2vcpu-4gb", db, g.uuid("db", 0), "", "paas", inv.Start, 6000, productCharge)
	add("Spaces Subscription", "Spaces (250 GiB storage, 1 TiB transfer)", "", "", "", "iaas", inv.Start, 500, productCharge)
	add("App Platform", g.projects[1]+" basic-xs", "", g.uuid("app", 0), "", "paas", inv.Start, 1000, productCharge)
	add("Load Balancers", "lb-"+g.projects[0]+" (small)", "", g.uuid("lb", 0), "", "iaas", inv.Start, 1200, productCharge)
	add("Reserved IPs", fmt.Sprintf("Unused Reserved IP - 203.0.113.%d", 1+g.rng.IntN(250)), "", "", "", "iaas", inv.End.Add(-time.Duration(20+g.rng.IntN(200))*time.Hour), 400, productCharge)
	for i := 0; len(lines) < 34 || i < 2; i++ {
		gib := 1 + g.rng.IntN(80)
		add("Snapshots", fmt.Sprintf("snapshot-%s-%d (%d GiB)", inv.Period, i+1, gib), "", g.uuid("snapshot/"+inv.Period, i), "", "iaas", inv.Start, cents(gib*6), productCharge)
	}
	var usage cents
	for _, l := range lines {
		usage += l.amount
	}
	if g.rng.IntN(10) < 4 {
		gib := 10 + g.rng.IntN(500)
		add("Bandwidth", fmt.Sprintf("Outbound transfer over allowance (%d GiB)", gib), "", "", "", "iaas", inv.Start, cents(gib), overage)
		usage += lines[len(lines)-1].amount
	}
	add("Taxes", "STATE SALES TAX (6.25%)", "", "", "", "iaas", inv.Start, (usage*625+5000)/10000, tax)
	if g.rng.IntN(2) == 0 {
		add("Taxes", "CITY SALES TAX (0.5%)", "", "", "", "iaas", inv.Start, (usage*50+5000)/10000, tax)
	}
	if g.rng.IntN(10) < 3 {
		c := -min(cents(500+100*g.rng.IntN(20)), usage/10)
		add("Credits", []string{"Promotional credit", "Service credit (incident)", "Referral credit"}[g.rng.IntN(3)], "", "", "", "", inv.Start, c, credit)
	}

	var total cents
	sums := map[bucket]cents{}
	type group struct {
		amount cents
		count  int
	}
	var order []string
	byProduct := map[string]*group{}
	for _, l := range lines {
		inv.Items = append(inv.Items, l.item)
		total += l.amount
		sums[l.bucket] += l.amount
		if l.bucket == productCharge {
			p := byProduct[l.item.Product]
			if p == nil {
				p = &group{}
				byProduct[l.item.Product] = p
				order = append(order, l.item.Product)
			}
			p.amount += l.amount
			p.count++
		}
	}
	inv.Amount = total.String()
	charges := &upstream.ProductUsageCharges{Name: "Product usage charges", Amount: sums[productCharge].String()}
	for _, name := range order {
		p := byProduct[name]
		charges.Items = append(charges.Items, upstream.ProductChargeItem{Name: name, Amount: p.amount.String(), Count: strconv.Itoa(p.count)})
	}
	address := a.Address
	inv.Summary = upstream.InvoiceSummary{
		InvoiceUUID:           inv.UUID,
		InvoiceID:             inv.Number,
		BillingPeriod:         inv.Period,
		Amount:                inv.Amount,
		UserName:              a.UserName,
		UserBillingAddress:    &address,
		UserCompany:           a.UserCompany,
		UserEmail:             a.UserEmail,
		ProductCharges:        charges,
		Overages:              &upstream.SimpleCharge{Name: "Overages", Amount: sums[overage].String()},
		Taxes:                 &upstream.SimpleCharge{Name: "Taxes", Amount: sums[tax].String()},
		CreditsAndAdjustments: &upstream.SimpleCharge{Name: "Credits & adjustments", Amount: sums[credit].String()},
	}
}

// history makes the billing history: each issued invoice, its payment a few
// days later (sometimes after a failed attempt), and occasional credits,
// newest first, leaving out what lies after the account's day.
func (g *generator) history(a *Account) {
	var entries []upstream.BillingHistoryEntry
	at := func(t time.Time) string { return t.Format(time.RFC3339) }
	for i := len(a.Invoices) - 1; i >= 0; i-- {
		inv := a.Invoices[i]
		issued := inv.End.Add(time.Duration(8*3600+g.rng.IntN(3600)) * time.Second)
		amount, _ := parseCents(inv.Amount)
		label := inv.Start.Format("January 2006")
		entries = append(entries, upstream.BillingHistoryEntry{
			Description: "Invoice for " + label, Amount: inv.Amount,
			InvoiceID: inv.Number, InvoiceUUID: inv.UUID, Date: at(issued), Type: "Invoice",
		})
		if g.rng.IntN(5) == 0 {
			c := -min(cents(100+100*g.rng.IntN(10)), amount)
			amount += c // the credit lowers what the payment has to cover
			entries = append(entries, upstream.BillingHistoryEntry{
				Description: "Credit applied to invoice for " + label, Amount: c.String(),
				InvoiceID: inv.Number, InvoiceUUID: inv.UUID, Date: at(issued.Add(time.Hour)), Type: "Credit",
			})
		}
		paid := issued.Add(time.Duration(24+g.rng.IntN(72)) * time.Hour)
		if g.rng.IntN(8) == 0 {
			entries = append(entries, upstream.BillingHistoryEntry{
				Description: "Payment attempt failed (Visa 4242)", Amount: inv.Amount, Date: at(paid), Type: "AttemptFailed",
			})
			paid = paid.Add(48 * time.Hour)
		}
		entries = append(entries, upstream.BillingHistoryEntry{
			Description: "Payment (Visa 4242)", Amount: (-amount).String(), Date: at(paid), Type: "Payment",
		})
	}
	var kept []upstream.BillingHistoryEntry
	for _, e := range entries {
		if t, _ := time.Parse(time.RFC3339, e.Date); !t.After(g.day) {
			kept = append(kept, e)
		}
	}
	slices.SortStableFunc(kept, func(x, y upstream.BillingHistoryEntry) int {
		tx, _ := time.Parse(time.RFC3339, x.Date)
		ty, _ := time.Parse(time.RFC3339, y.Date)
		return ty.Compare(tx)
	})
	a.BillingHistory = kept
}

// balance: account_balance is what the history says is owed (invoices minus
// payments and credits); month_to_date_usage is the preview's amount.
func (g *generator) balance(a *Account) {
	var owed cents
	for _, e := range a.BillingHistory {
		if e.Type == "AttemptFailed" {
			continue
		}
		c, _ := parseCents(e.Amount)
		owed += c
	}
	usage, _ := parseCents(a.Preview.Amount)
	a.Balance = upstream.Balance{
		MonthToDateBalance: (owed + usage).String(),
		AccountBalance:     owed.String(),
		MonthToDateUsage:   usage.String(),
	}
}
