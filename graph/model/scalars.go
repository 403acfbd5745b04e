// Package model holds the Go types behind the GraphQL schema: gqlgen's generated
// models (models_gen.go), the hand-written ones whose fields resolve lazily
// (Invoice, InvoiceFile), the views over DigitalOcean's wire types whose fields
// convert only when selected (Volume, InvoiceItem, InvoiceSummary), the two
// custom scalars, and the other conversions from the wire types (upstream.go).
package model

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Money is an exact decimal amount in US dollars, kept as the string
// DigitalOcean sent so that no float ever rounds it.
type Money string

// MoneyFrom returns s as Money, or nil when s is missing or not a decimal.
func MoneyFrom(s string) *Money {
	if !isDecimal(s) {
		return nil
	}
	m := Money(s)
	return &m
}

// moneyAt is MoneyFrom for a string that outlives the answer: no copy.
func moneyAt(s *string) *Money {
	if !isDecimal(*s) {
		return nil
	}
	return (*Money)(s)
}

// isDecimal reports whether s is a decimal: ^-?[0-9]+(\.[0-9]+)?$ (without a regexp, a tenth of the time).
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, dot := strings.Cut(s, ".")
	return digits(whole) && (!dot || digits(frac))
}

// digits reports whether s is one or more ASCII digits.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// MarshalGQL writes the amount as a JSON string. A decimal (every Money
// MoneyFrom or UnmarshalGQL made) needs no escaping, so it is written as it is,
// without the quoted copy strconv.Quote allocates.
func (m Money) MarshalGQL(w io.Writer) {
	if !isDecimal(string(m)) {
		_, _ = io.WriteString(w, strconv.Quote(string(m)))
		return
	}
	_, _ = io.WriteString(w, `"`)
	_, _ = io.WriteString(w, string(m))
	_, _ = io.WriteString(w, `"`)
}

// UnmarshalGQL accepts a decimal string such as "12.34" or "-0.50".
func (m *Money) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok || !isDecimal(s) {
		return fmt.Errorf("Money must be a decimal string such as \"12.34\"")
	}
	*m = Money(s)
	return nil
}

// DateTime is an instant, serialised in UTC as RFC 3339 with a trailing Z and
// fractional seconds only when they are not zero.
type DateTime struct{ time.Time }

// upstreamTimeLayouts are the timestamp shapes DigitalOcean sends: RFC 3339
// (with or without fractions, Z or an offset such as +00:00) and the CSV's
// "2020-07-01 00:00:00 +0000".
var upstreamTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05.999999999",
}

// DateTimeFrom parses one of DigitalOcean's timestamp shapes; nil when s is
// missing or unparseable, so that a strange timestamp never fails a query.
func DateTimeFrom(s string) *DateTime {
	if s == "" {
		return nil
	}
	return parseDateTime(s, new(DateTime))
}

// parseDateTime is DateTimeFrom writing into a DateTime the caller holds.
func parseDateTime(s string, into *DateTime) *DateTime {
	if s == "" {
		return nil
	}
	for _, layout := range upstreamTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			into.Time = t.UTC()
			return into
		}
	}
	return nil
}

// String renders the instant as the API serialises it.
func (d DateTime) String() string { return d.UTC().Format(time.RFC3339Nano) }

// MarshalGQL writes the instant as a JSON string (RFC 3339 needs no
// escaping). gqlgen writes the response into a bytes.Buffer: the instant is
// formatted straight into its free space, where String and strconv.Quote
// would allocate two strings.
func (d DateTime) MarshalGQL(w io.Writer) {
	if b, ok := w.(interface {
		io.Writer
		AvailableBuffer() []byte
	}); ok {
		_, _ = b.Write(d.appendJSON(b.AvailableBuffer()))
		return
	}
	_, _ = w.Write(d.appendJSON(nil))
}

// appendJSON appends the instant as a JSON string.
func (d DateTime) appendJSON(b []byte) []byte {
	b = append(b, '"')
	b = d.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// UnmarshalGQL accepts an RFC 3339 string.
func (d *DateTime) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("DateTime must be an RFC 3339 string")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("DateTime must be an RFC 3339 string such as 2020-01-01T00:00:00Z")
	}
	d.Time = t.UTC()
	return nil
}
