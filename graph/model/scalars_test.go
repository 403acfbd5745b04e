package model

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestDateTimeFromUpstreamShapes(t *testing.T) {
	cases := map[string]string{
		"2020-01-01T00:00:00Z":          `"2020-01-01T00:00:00Z"`,
		"2019-09-03T16:34:46.000+00:00": `"2019-09-03T16:34:46Z"`,
		"2018-06-01T10:44:38+02:00":     `"2018-06-01T08:44:38Z"`,
		"2020-01-01T00:00:00.250Z":      `"2020-01-01T00:00:00.25Z"`,
		"2020-07-01 00:00:00 +0000":     `"2020-07-01T00:00:00Z"`,
		"2020-02-23T06:31:50+0000":      `"2020-02-23T06:31:50Z"`,
	}
	for in, want := range cases {
		d := DateTimeFrom(in)
		if d == nil {
			t.Errorf("%q: unparsed, want %s", in, want)
			continue
		}
		var b bytes.Buffer
		d.MarshalGQL(&b)
		if b.String() != want {
			t.Errorf("%q: got %s, want %s", in, b.String(), want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2020-13-01T00:00:00Z", "1583168449"} {
		if d := DateTimeFrom(bad); d != nil {
			t.Errorf("%q: got %v, want nil", bad, d)
		}
	}
}

func TestMoney(t *testing.T) {
	for _, ok := range []string{"12.34", "-0.50", "0", "1234567890.123456789"} {
		m := MoneyFrom(ok)
		if m == nil {
			t.Errorf("%q: refused", ok)
			continue
		}
		var b bytes.Buffer
		m.MarshalGQL(&b)
		if b.String() != `"`+ok+`"` {
			t.Errorf("%q: serialised as %s, want the exact string", ok, b.String())
		}
		var in Money
		if err := in.UnmarshalGQL(ok); err != nil || string(in) != ok {
			t.Errorf("%q as input: %v", ok, err)
		}
	}
	for _, bad := range []any{"", "$3.11", "1e3", "12.", ".5", "abc", 12.34, nil} {
		if s, isString := bad.(string); isString && MoneyFrom(s) != nil {
			t.Errorf("%q: accepted from upstream", s)
		}
		var in Money
		if err := in.UnmarshalGQL(bad); err == nil {
			t.Errorf("%v: accepted as input", bad)
		}
	}
}

// TestMoneyIsDecimalPattern: MoneyFrom accepts exactly ^-?[0-9]+(\.[0-9]+)?$.
func TestMoneyIsDecimalPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	cases := []string{"", "0", "12.34", "-0.50", "-", ".", "1.", ".5", "-.5", "--1", "1.2.3", "+1", " 1", "1 ", "1e5", "١٢", "0x10", "12,30", "-12", "007.000", "1\n", "NaN"}
	for _, s := range cases {
		if got, want := MoneyFrom(s) != nil, pattern.MatchString(s); got != want {
			t.Errorf("MoneyFrom(%q) accepted = %v, want %v", s, got, want)
		}
	}
}

// A writer without free space to format into (gqlgen's is a bytes.Buffer)
// gets the same JSON; a Money that is not a decimal is still escaped.
func TestScalarsOnAnyWriter(t *testing.T) {
	var b strings.Builder
	DateTimeFrom("2020-01-01T00:00:00.250Z").MarshalGQL(&b)
	if b.String() != `"2020-01-01T00:00:00.25Z"` {
		t.Errorf("DateTime on a strings.Builder: got %s", b.String())
	}
	b.Reset()
	Money(`1"2`).MarshalGQL(&b)
	if b.String() != `"1\"2"` {
		t.Errorf("a Money that is not a decimal: got %s, want it escaped", b.String())
	}
}
