package model

import "github.com/oceangraph/oceangraph/upstream"

// InvoiceItem is one line of an invoice: a view over DigitalOcean's, each
// field converted (null when missing or malformed) only when a query selects it.
type InvoiceItem struct{ it *upstream.InvoiceItem }

// InvoiceItemOf is a view over one invoice line (no copy).
func InvoiceItemOf(it *upstream.InvoiceItem) InvoiceItem { return InvoiceItem{it: it} }

// Product is the product's name.
func (x *InvoiceItem) Product() *string { return present(&x.it.Product) }

// Description describes the line.
func (x *InvoiceItem) Description() *string { return present(&x.it.Description) }

// GroupDescription describes the line's group.
func (x *InvoiceItem) GroupDescription() *string { return present(&x.it.GroupDescription) }

// Amount is null when missing or not a decimal.
func (x *InvoiceItem) Amount() *Money { return moneyAt(&x.it.Amount) }

// Duration is null when missing or not a number.
func (x *InvoiceItem) Duration() *float64 { return floatFrom(x.it.Duration) }

// DurationUnit is the unit of Duration, e.g. Hours.
func (x *InvoiceItem) DurationUnit() *string { return present(&x.it.DurationUnit) }

// StartTime is null when missing or unparseable.
func (x *InvoiceItem) StartTime() *DateTime { return DateTimeFrom(x.it.StartTime) }

// EndTime is null when missing or unparseable.
func (x *InvoiceItem) EndTime() *DateTime { return DateTimeFrom(x.it.EndTime) }

// ProjectName is the project the resource belongs to.
func (x *InvoiceItem) ProjectName() *string { return present(&x.it.ProjectName) }

// Category is the line's category.
func (x *InvoiceItem) Category() *string { return present(&x.it.Category) }

// ResourceID is the billed resource's id.
func (x *InvoiceItem) ResourceID() *string { return present(&x.it.ResourceID) }

// ResourceUUID is the billed resource's UUID.
func (x *InvoiceItem) ResourceUUID() *string { return present(&x.it.ResourceUUID) }
