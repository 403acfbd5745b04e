package sandbox

import (
	"fmt"
	"strconv"
	"strings"
)

// cents is an amount of US dollars in integer cents: the sandbox sums money
// only in this form, so every total is exact.
type cents int64

// String renders the amount as DigitalOcean's decimal string ("12.34", "-0.05").
func (c cents) String() string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// dollars renders the amount as the CSV column does ("$3.11", "-$5.00").
func (c cents) dollars() string {
	if c < 0 {
		return "-$" + (-c).String()
	}
	return "$" + c.String()
}

// parseCents reads a decimal string the sandbox wrote ("12.34", "-0.05").
func parseCents(s string) (cents, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 2 {
		return 0, fmt.Errorf("amount %q: want digits.dd", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	c := cents(w*100 + f)
	if neg {
		c = -c
	}
	return c, nil
}
