package sandbox

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
)

func mustCents(t *testing.T, what, s string) cents {
	t.Helper()
	c, err := parseCents(s)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return c
}

// TestInvoicesAddUp: 24 issued invoices newest first, each with at least 30
// items summing to its amount and to its summary's four blocks.
func TestInvoicesAddUp(t *testing.T) {
	a := New(Options{Now: func() time.Time { return fixedNow }}).Account(testToken)
	if len(a.Invoices) < 24 {
		t.Fatalf("%d issued invoices, want at least 24", len(a.Invoices))
	}
	if a.Preview == nil || a.Preview.Period != "2026-11" || a.Preview.UpdatedAt == "" {
		t.Fatalf("preview %+v, want period 2026-11 with updated_at", a.Preview)
	}
	for i, inv := range append([]*Invoice{a.Preview}, a.Invoices...) {
		name := fmt.Sprintf("invoice %s (%s)", inv.Period, inv.UUID)
		if u, err := uuid.Parse(inv.UUID); err != nil || u.String() != inv.UUID {
			t.Errorf("%s: uuid %q is not a canonical UUID", name, inv.UUID)
		}
		if want := fixedNow.AddDate(0, -i, 0).Format("2006-01"); inv.Period != want {
			t.Errorf("%s: period %s, want %s (newest first, after the preview)", name, inv.Period, want)
		}
		if len(inv.Items) < 30 {
			t.Errorf("%s: %d items, want at least 30", name, len(inv.Items))
		}
		var sum cents
		for _, it := range inv.Items {
			sum += mustCents(t, name+" item", it.Amount)
		}
		if total := mustCents(t, name, inv.Amount); sum != total || total < 0 {
			t.Errorf("%s: items add up to %s, amount is %s", name, sum, inv.Amount)
		}
		sm := inv.Summary
		if sm.Amount != inv.Amount || sm.InvoiceUUID != inv.UUID || sm.InvoiceID != inv.Number || sm.BillingPeriod != inv.Period {
			t.Errorf("%s: summary %s/%s/%s/%s disagrees with the invoice", name, sm.InvoiceUUID, sm.InvoiceID, sm.BillingPeriod, sm.Amount)
		}
		blocks := mustCents(t, name, sm.ProductCharges.Amount) + mustCents(t, name, sm.Overages.Amount) +
			mustCents(t, name, sm.Taxes.Amount) + mustCents(t, name, sm.CreditsAndAdjustments.Amount)
		if blocks != sum {
			t.Errorf("%s: summary blocks add up to %s, items to %s", name, blocks, sum)
		}
		var charges cents
		count := 0
		for _, p := range sm.ProductCharges.Items {
			charges += mustCents(t, name, p.Amount)
			n, err := strconv.Atoi(p.Count)
			if err != nil || n < 1 {
				t.Errorf("%s: product %s count %q", name, p.Name, p.Count)
			}
			count += n
		}
		if charges != mustCents(t, name, sm.ProductCharges.Amount) {
			t.Errorf("%s: product charge items add up to %s, product_charges.amount is %s", name, charges, sm.ProductCharges.Amount)
		}
		if count < 30 {
			t.Errorf("%s: product charge counts add up to %d, want at least 30", name, count)
		}
	}
}

// TestHistoryPointsAtInvoices: newest first, every invoice reference resolves,
// and the types include invoices, payments and credits.
func TestHistoryPointsAtInvoices(t *testing.T) {
	a := New(Options{Now: func() time.Time { return fixedNow }}).Account(testToken)
	types := map[string]int{}
	var prev time.Time
	for i, e := range a.BillingHistory {
		types[e.Type]++
		at, err := time.Parse(time.RFC3339, e.Date)
		if err != nil {
			t.Fatalf("entry %d: date %q: %v", i, e.Date, err)
		}
		if i > 0 && at.After(prev) {
			t.Errorf("entry %d (%s) is newer than entry %d (%s): want newest first", i, e.Date, i-1, prev)
		}
		if at.After(fixedNow) {
			t.Errorf("entry %d is dated %s, after now", i, e.Date)
		}
		prev = at
		mustCents(t, "history amount", e.Amount)
		if e.InvoiceUUID == "" {
			if e.Type == "Invoice" {
				t.Errorf("entry %d: an Invoice entry without invoice_uuid", i)
			}
			continue
		}
		inv := a.Invoice(e.InvoiceUUID)
		if inv == nil || inv.Number != e.InvoiceID || inv.IsPreview {
			t.Errorf("entry %d (%s) points at invoice %s/%s, which is not an issued invoice", i, e.Type, e.InvoiceUUID, e.InvoiceID)
		} else if e.Type == "Invoice" && e.Amount != inv.Amount {
			t.Errorf("entry %d: invoice amount %s, the invoice says %s", i, e.Amount, inv.Amount)
		}
	}
	for _, typ := range []string{"Invoice", "Payment", "Credit"} {
		if types[typ] == 0 {
			t.Errorf("no %s entry in the history (types: %v)", typ, types)
		}
	}
	if types["Invoice"] < 23 {
		t.Errorf("%d Invoice entries, want one per issued invoice (the newest may be pending)", types["Invoice"])
	}
	owed := cents(0)
	for _, e := range a.BillingHistory {
		if e.Type != "AttemptFailed" {
			owed += mustCents(t, "history", e.Amount)
		}
	}
	usage := mustCents(t, "preview", a.Preview.Amount)
	if a.Balance.AccountBalance != owed.String() || a.Balance.MonthToDateUsage != a.Preview.Amount || a.Balance.MonthToDateBalance != (owed+usage).String() {
		t.Errorf("balance %+v, want account %s, usage %s (the preview), month to date %s", a.Balance, owed, a.Preview.Amount, owed+usage)
	}
}

// TestVolumes: at least 100 over at least 6 full regions, unique names per
// region, some attached, some tagged, some without a filesystem.
func TestVolumes(t *testing.T) {
	a := New(Options{Now: func() time.Time { return fixedNow }}).Account(testToken)
	if len(a.Volumes) < 100 {
		t.Errorf("%d volumes, want at least 100", len(a.Volumes))
	}
	regions := map[string]bool{}
	names := map[string]bool{}
	ids := map[string]bool{}
	var attached, tagged, bare int
	for _, v := range a.Volumes {
		r := v.Region
		if r == nil || r.Slug == "" || r.Name == "" || len(r.Features) == 0 || r.Available == nil || len(r.Sizes) == 0 {
			t.Fatalf("volume %s: region %+v is not a full region object", v.ID, r)
		}
		regions[r.Slug] = true
		if names[r.Slug+"/"+v.Name] {
			t.Errorf("name %q twice in %s", v.Name, r.Slug)
		}
		names[r.Slug+"/"+v.Name] = true
		if ids[v.ID] {
			t.Errorf("id %s twice", v.ID)
		}
		ids[v.ID] = true
		if !volumeName.MatchString(v.Name) {
			t.Errorf("name %q is not a valid volume name", v.Name)
		}
		if v.DropletIDs == nil || v.Tags == nil {
			t.Errorf("volume %s: nil droplet_ids or tags (want [] when empty)", v.ID)
		}
		if len(v.DropletIDs) > 0 {
			attached++
		}
		if len(v.Tags) > 0 {
			tagged++
		}
		if v.FilesystemType == "" && v.FilesystemLabel == "" {
			bare++
		}
		if _, err := time.Parse(time.RFC3339, v.CreatedAt); err != nil || v.SizeGigabytes <= 0 {
			t.Errorf("volume %s: created_at %q, size %d", v.ID, v.CreatedAt, v.SizeGigabytes)
		}
	}
	if len(regions) < 6 {
		t.Errorf("volumes in %d regions, want at least 6", len(regions))
	}
	if attached == 0 || attached == len(a.Volumes) || tagged == 0 || tagged == len(a.Volumes) || bare == 0 {
		t.Errorf("%d attached, %d tagged, %d without filesystem out of %d: want some of each, not all", attached, tagged, bare, len(a.Volumes))
	}
	if got := a.FilterVolumes(a.Volumes[0].Name, ""); len(got) < 2 {
		t.Errorf("name %q names %d volumes, want one in each of two regions (so the name filter has something to do)", a.Volumes[0].Name, len(got))
	}
	for slug := range regions {
		for _, v := range a.FilterVolumes("", slug) {
			if v.Region.Slug != slug {
				t.Errorf("region filter %s returned a volume in %s", slug, v.Region.Slug)
			}
		}
	}
}

// TestAccountsPerToken: the same token sees the same account (even from a
// fresh sandbox), another token another one, and the seed changes them.
func TestAccountsPerToken(t *testing.T) {
	now := func() time.Time { return fixedNow }
	a := New(Options{Now: now}).Account("token-a")
	again := New(Options{Now: now}).Account("token-a")
	b := New(Options{Now: now}).Account("token-b")
	seeded := New(Options{Now: now, Seed: 7}).Account("token-a")
	if !reflect.DeepEqual(a.Invoices, again.Invoices) || !reflect.DeepEqual(a.Volumes, again.Volumes) || !reflect.DeepEqual(a.BillingHistory, again.BillingHistory) {
		t.Error("the same token gave two different accounts")
	}
	for name, other := range map[string]*Account{"another token": b, "another seed": seeded} {
		if other.Invoices[0].UUID == a.Invoices[0].UUID || other.Volumes[0].ID == a.Volumes[0].ID || other.Invoices[0].Amount == a.Invoices[0].Amount {
			t.Errorf("%s shares data with token-a: invoice %s %s, volume %s", name, other.Invoices[0].UUID, other.Invoices[0].Amount, other.Volumes[0].ID)
		}
	}
	if a.Invoice(b.Invoices[0].UUID) != nil || a.Volume(b.Volumes[0].ID) != nil {
		t.Error("token-a can look up token-b's invoice or volume")
	}
}

// TestPreviewFollowsTheClock: the preview is always the clock's month.
func TestPreviewFollowsTheClock(t *testing.T) {
	for _, now := range []time.Time{
		time.Date(2025, time.January, 1, 0, 30, 0, 0, time.UTC),
		time.Date(2025, time.February, 28, 23, 59, 0, 0, time.UTC),
		time.Date(2024, time.December, 31, 12, 0, 0, 0, time.UTC),
	} {
		a := New(Options{Now: func() time.Time { return now }}).Account(testToken)
		if a.Preview.Period != now.Format("2006-01") || a.Invoices[0].Period != now.AddDate(0, 0, -now.Day()).Format("2006-01") {
			t.Errorf("at %s: preview %s, newest invoice %s", now, a.Preview.Period, a.Invoices[0].Period)
		}
		if len(a.Preview.Items) < 30 {
			t.Errorf("at %s: preview has %d items, want at least 30", now, len(a.Preview.Items))
		}
	}
}

// TestAccountCacheIsBounded keeps at most MaxAccounts accounts.
func TestAccountCacheIsBounded(t *testing.T) {
	s := New(Options{Now: func() time.Time { return fixedNow }, MaxAccounts: 2})
	first := s.Account("one")
	s.Account("two")
	s.Account("three")
	if s.accounts.Len() != 2 {
		t.Errorf("%d accounts cached, want 2", s.accounts.Len())
	}
	if again := s.Account("one"); again == first || !reflect.DeepEqual(again.Volumes, first.Volumes) {
		t.Error("an evicted account should be regenerated, identical")
	}
}

func TestMoney(t *testing.T) {
	for _, c := range []struct {
		in           cents
		str, dollars string
	}{{0, "0.00", "$0.00"}, {5, "0.05", "$0.05"}, {311, "3.11", "$3.11"}, {-500, "-5.00", "-$5.00"}, {-7, "-0.07", "-$0.07"}, {123456, "1234.56", "$1234.56"}} {
		if c.in.String() != c.str || c.in.dollars() != c.dollars {
			t.Errorf("%d cents: %q %q, want %q %q", int64(c.in), c.in.String(), c.in.dollars(), c.str, c.dollars)
		}
		if back, err := parseCents(c.str); err != nil || back != c.in {
			t.Errorf("parseCents(%q) = %d, %v", c.str, back, err)
		}
	}
}
