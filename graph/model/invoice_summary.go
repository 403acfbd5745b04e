package model

import "github.com/oceangraph/oceangraph/upstream"

// InvoiceSummary is an invoice's summary: a view over DigitalOcean's, each
// field converted only when a query selects it (`summary { amount }` costs
// no address, charges or timestamps).
type InvoiceSummary struct{ s *upstream.InvoiceSummary }

// InvoiceSummaryFrom wraps an invoice summary.
func InvoiceSummaryFrom(s *upstream.InvoiceSummary) *InvoiceSummary { return &InvoiceSummary{s: s} }

// InvoiceUUID is the invoice's UUID.
func (x *InvoiceSummary) InvoiceUUID() *string { return present(&x.s.InvoiceUUID) }

// InvoiceID is the invoice's number.
func (x *InvoiceSummary) InvoiceID() *string { return present(&x.s.InvoiceID) }

// BillingPeriod is the invoice's month, e.g. 2020-01.
func (x *InvoiceSummary) BillingPeriod() *string { return present(&x.s.BillingPeriod) }

// Amount is null when missing or not a decimal.
func (x *InvoiceSummary) Amount() *Money { return moneyAt(&x.s.Amount) }

// UserName is the customer's name.
func (x *InvoiceSummary) UserName() *string { return present(&x.s.UserName) }

// UserCompany is the customer's company.
func (x *InvoiceSummary) UserCompany() *string { return present(&x.s.UserCompany) }

// UserEmail is the customer's email address.
func (x *InvoiceSummary) UserEmail() *string { return present(&x.s.UserEmail) }

// UserBillingAddress is null when DigitalOcean sends none.
func (x *InvoiceSummary) UserBillingAddress() *BillingAddress {
	if x.s.UserBillingAddress == nil {
		return nil
	}
	return &BillingAddress{a: x.s.UserBillingAddress}
}

// ProductCharges is null when DigitalOcean sends none.
func (x *InvoiceSummary) ProductCharges() *ProductCharges {
	if x.s.ProductCharges == nil {
		return nil
	}
	return &ProductCharges{pc: x.s.ProductCharges}
}

// Overages is null when DigitalOcean sends none.
func (x *InvoiceSummary) Overages() *Charge { return chargeFrom(x.s.Overages) }

// Taxes is null when DigitalOcean sends none.
func (x *InvoiceSummary) Taxes() *Charge { return chargeFrom(x.s.Taxes) }

// CreditsAndAdjustments is null when DigitalOcean sends none.
func (x *InvoiceSummary) CreditsAndAdjustments() *Charge {
	return chargeFrom(x.s.CreditsAndAdjustments)
}

// BillingAddress is the customer's address on an invoice summary.
type BillingAddress struct{ a *upstream.BillingAddress }

// AddressLine1 is the address's first line.
func (x *BillingAddress) AddressLine1() *string { return present(&x.a.AddressLine1) }

// AddressLine2 is the address's second line.
func (x *BillingAddress) AddressLine2() *string { return present(&x.a.AddressLine2) }

// City is the address's city.
func (x *BillingAddress) City() *string { return present(&x.a.City) }

// Region is the address's region or state.
func (x *BillingAddress) Region() *string { return present(&x.a.Region) }

// PostalCode is the address's postal code.
func (x *BillingAddress) PostalCode() *string { return present(&x.a.PostalCode) }

// CountryIso2Code is the address's country, ISO 3166-1 alpha-2.
func (x *BillingAddress) CountryIso2Code() *string { return present(&x.a.CountryISO2Code) }

// CreatedAt is null when missing or unparseable.
func (x *BillingAddress) CreatedAt() *DateTime { return DateTimeFrom(x.a.CreatedAt) }

// UpdatedAt is null when missing or unparseable.
func (x *BillingAddress) UpdatedAt() *DateTime { return DateTimeFrom(x.a.UpdatedAt) }

// ProductCharges are the invoice's charges by product.
type ProductCharges struct{ pc *upstream.ProductUsageCharges }

// Name names the charges.
func (x *ProductCharges) Name() *string { return present(&x.pc.Name) }

// Amount is null when missing or not a decimal.
func (x *ProductCharges) Amount() *Money { return moneyAt(&x.pc.Amount) }

// Items are the charges, one per product; empty (not null) when none.
func (x *ProductCharges) Items() []*ProductCharge {
	items := make([]*ProductCharge, len(x.pc.Items))
	for i := range x.pc.Items {
		items[i] = &ProductCharge{it: &x.pc.Items[i]}
	}
	return items
}

// ProductCharge is one product's aggregate charge.
type ProductCharge struct{ it *upstream.ProductChargeItem }

// Name is the product's name.
func (x *ProductCharge) Name() *string { return present(&x.it.Name) }

// Amount is null when missing or not a decimal.
func (x *ProductCharge) Amount() *Money { return moneyAt(&x.it.Amount) }

// Count is null when missing or not an integer.
func (x *ProductCharge) Count() *int { return intFrom(x.it.Count) }

// Charge is a named amount (overages, taxes, credits and adjustments).
type Charge struct{ c *upstream.SimpleCharge }

func chargeFrom(c *upstream.SimpleCharge) *Charge {
	if c == nil {
		return nil
	}
	return &Charge{c: c}
}

// Name names the charge.
func (x *Charge) Name() *string { return present(&x.c.Name) }

// Amount is null when missing or not a decimal.
func (x *Charge) Amount() *Money { return moneyAt(&x.c.Amount) }
