package model

// Conversions from DigitalOcean's wire types (package upstream) to the API's
// models. Every upstream field may be missing: a missing string becomes null,
// a number sent as a string ("744", "1") is parsed and becomes null when it is
// not a number, a timestamp in any of DigitalOcean's shapes becomes a DateTime
// and null when unparseable, and an unknown billing type becomes UNKNOWN.

import (
	"strconv"

	"github.com/oceangraph/oceangraph/upstream"
)

// Optional is nil for a missing (empty) upstream string, for the nullable fields the resolvers fill.
func Optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// floatFrom parses a number DigitalOcean sends as a string; nil when it is not one.
func floatFrom(s string) *float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil
	}
	return &f
}

// intFrom parses a count DigitalOcean sends as a string; nil when it is not one.
func intFrom(s string) *int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil
	}
	return &n
}

// billingHistoryTypes maps DigitalOcean's type names to the enum.
var billingHistoryTypes = map[string]BillingHistoryType{
	"ACHFailure":       BillingHistoryTypeAchFailure,
	"Adjustment":       BillingHistoryTypeAdjustment,
	"AttemptFailed":    BillingHistoryTypeAttemptFailed,
	"Chargeback":       BillingHistoryTypeChargeback,
	"Credit":           BillingHistoryTypeCredit,
	"CreditExpiration": BillingHistoryTypeCreditExpiration,
	"Invoice":          BillingHistoryTypeInvoice,
	"Payment":          BillingHistoryTypePayment,
	"Refund":           BillingHistoryTypeRefund,
	"Reversal":         BillingHistoryTypeReversal,
}

// BillingHistoryEntryFrom converts one billing event. Its invoice, when it
// names one, is a lazy Invoice: no upstream call until its fields need one.
func BillingHistoryEntryFrom(e upstream.BillingHistoryEntry) *BillingHistoryEntry {
	t, ok := billingHistoryTypes[e.Type]
	if !ok {
		t = BillingHistoryTypeUnknown
	}
	entry := &BillingHistoryEntry{
		Type:        t,
		Description: Optional(e.Description),
		Amount:      MoneyFrom(e.Amount),
		Date:        DateTimeFrom(e.Date),
		InvoiceID:   Optional(e.InvoiceID),
		InvoiceUUID: Optional(e.InvoiceUUID),
	}
	if e.InvoiceUUID != "" {
		entry.Invoice = &Invoice{UUID: e.InvoiceUUID, Ref: e.InvoiceUUID, KnownInvoiceID: e.InvoiceID}
	}
	return entry
}

// InvoiceFromList converts an element of the invoice list.
func InvoiceFromList(inv upstream.Invoice) *Invoice {
	return &Invoice{UUID: inv.InvoiceUUID, Ref: inv.InvoiceUUID, Listed: &inv}
}

// PreviewFromList converts the list's invoice_preview. Its UUID is the one
// DigitalOcean gives it (the word "preview" when it gives none); upstream paths
// use "preview", which always addresses the month-to-date invoice.
func PreviewFromList(inv upstream.Invoice) *Invoice {
	uuid := inv.InvoiceUUID
	if uuid == "" {
		uuid = upstream.PreviewUUID
	}
	return &Invoice{UUID: uuid, Ref: upstream.PreviewUUID, IsPreview: true, Listed: &inv}
}

// InvoiceItemFrom converts one invoice line.
func InvoiceItemFrom(it upstream.InvoiceItem) *InvoiceItem {
	return &InvoiceItem{
		Product:          Optional(it.Product),
		Description:      Optional(it.Description),
		GroupDescription: Optional(it.GroupDescription),
		Amount:           MoneyFrom(it.Amount),
		Duration:         floatFrom(it.Duration),
		DurationUnit:     Optional(it.DurationUnit),
		StartTime:        DateTimeFrom(it.StartTime),
		EndTime:          DateTimeFrom(it.EndTime),
		ProjectName:      Optional(it.ProjectName),
		Category:         Optional(it.Category),
		ResourceID:       Optional(it.ResourceID),
		ResourceUUID:     Optional(it.ResourceUUID),
	}
}

// InvoiceSummaryFrom converts an invoice summary.
func InvoiceSummaryFrom(s *upstream.InvoiceSummary) *InvoiceSummary {
	out := &InvoiceSummary{
		InvoiceUUID:           Optional(s.InvoiceUUID),
		InvoiceID:             Optional(s.InvoiceID),
		BillingPeriod:         Optional(s.BillingPeriod),
		Amount:                MoneyFrom(s.Amount),
		UserName:              Optional(s.UserName),
		UserCompany:           Optional(s.UserCompany),
		UserEmail:             Optional(s.UserEmail),
		Overages:              chargeFrom(s.Overages),
		Taxes:                 chargeFrom(s.Taxes),
		CreditsAndAdjustments: chargeFrom(s.CreditsAndAdjustments),
	}
	if a := s.UserBillingAddress; a != nil {
		out.UserBillingAddress = &BillingAddress{
			AddressLine1:    Optional(a.AddressLine1),
			AddressLine2:    Optional(a.AddressLine2),
			City:            Optional(a.City),
			Region:          Optional(a.Region),
			PostalCode:      Optional(a.PostalCode),
			CountryIso2Code: Optional(a.CountryISO2Code),
			CreatedAt:       DateTimeFrom(a.CreatedAt),
			UpdatedAt:       DateTimeFrom(a.UpdatedAt),
		}
	}
	if pc := s.ProductCharges; pc != nil {
		out.ProductCharges = &ProductCharges{Name: Optional(pc.Name), Amount: MoneyFrom(pc.Amount), Items: []*ProductCharge{}}
		for _, it := range pc.Items {
			out.ProductCharges.Items = append(out.ProductCharges.Items, &ProductCharge{
				Name: Optional(it.Name), Amount: MoneyFrom(it.Amount), Count: intFrom(it.Count),
			})
		}
	}
	return out
}

func chargeFrom(c *upstream.SimpleCharge) *Charge {
	if c == nil {
		return nil
	}
	return &Charge{Name: Optional(c.Name), Amount: MoneyFrom(c.Amount)}
}

// BalanceFrom converts the account balance.
func BalanceFrom(b *upstream.Balance) *Balance {
	return &Balance{
		MonthToDateBalance: MoneyFrom(b.MonthToDateBalance),
		AccountBalance:     MoneyFrom(b.AccountBalance),
		MonthToDateUsage:   MoneyFrom(b.MonthToDateUsage),
		GeneratedAt:        DateTimeFrom(b.GeneratedAt),
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
