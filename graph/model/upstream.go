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

// BillingHistoryEntryOf converts one billing event. Its invoice, when it
// names one, is a lazy Invoice: no upstream call until its fields need one.
func BillingHistoryEntryOf(e *upstream.BillingHistoryEntry) BillingHistoryEntry {
	t, ok := billingHistoryTypes[e.Type]
	if !ok {
		t = BillingHistoryTypeUnknown
	}
	entry := BillingHistoryEntry{
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

// InvoiceOf is a view over an element of the invoice list (no copy).
func InvoiceOf(inv *upstream.Invoice) Invoice {
	return Invoice{UUID: inv.InvoiceUUID, Ref: inv.InvoiceUUID, Listed: inv}
}

// PreviewFromList converts the list's invoice_preview. Its UUID is the one
// DigitalOcean gives it (the word "preview" when it gives none); upstream paths
// use "preview", which always addresses the month-to-date invoice.
func PreviewFromList(inv *upstream.Invoice) *Invoice {
	uuid := inv.InvoiceUUID
	if uuid == "" {
		uuid = upstream.PreviewUUID
	}
	return &Invoice{UUID: uuid, Ref: upstream.PreviewUUID, IsPreview: true, Listed: inv}
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
