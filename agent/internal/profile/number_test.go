package profile

import (
	"strings"
	"testing"
)

func TestAmount(t *testing.T) {
	us, _ := newNumFormat(Numbers{CurrencySymbols: []string{"$"}, Negative: []string{"minus", "trailing_minus", "parens"}}, "")
	eu, _ := newNumFormat(Numbers{Decimal: ",", Thousands: ".", CurrencySymbols: []string{"€", "EUR"}}, "")
	implied, _ := newNumFormat(Numbers{ImpliedDecimals: true}, "")
	three := 3
	kwd, _ := newNumFormat(Numbers{MinorDigits: &three}, "")
	tests := []struct {
		f    numFormat
		in   string
		want int64
		err  bool
	}{
		{us, "1.25", 125, false},
		{us, "$1,108.54", 110854, false},
		{us, "-$1.00", -100, false},
		{us, "$-1.00", -100, false},
		{us, "1.00-", -100, false},
		{us, "(2.50)", -250, false},
		{us, "000000125478.96", 12547896, false},
		{us, "5", 500, false},
		{us, ".96", 96, false},
		{us, "1.5", 150, false},
		{us, "1.250", 125, false},
		{us, "1.255", 0, true},
		{us, "abc", 0, true},
		{us, "", 0, true},
		{us, "$", 0, true},
		{us, "99999999999999999999", 0, true},
		{eu, "1.234,56 €", 123456, false},
		{eu, "-0,12", -12, false},
		{implied, "125", 125, false},
		{implied, "5", 5, false},
		{implied, "1.25", 125, false},
		{kwd, "1.234", 1234, false},
	}
	for _, tt := range tests {
		got, err := tt.f.amount(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("amount(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestQuantity(t *testing.T) {
	f, _ := newNumFormat(Numbers{}, "")
	tests := []struct {
		in, want string
		err      bool
	}{
		{"2", "2", false}, {"0.456", "0.456", false}, {"2.000", "2", false}, {"-1", "-1", false},
		{"007", "7", false}, {"1,000", "1000", false}, {"x", "", true}, {"1.1234567", "", true},
	}
	for _, tt := range tests {
		got, err := f.quantity(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("quantity(%q) = %q, %v; want %q, err=%v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestQuantityTimes(t *testing.T) {
	tests := []struct {
		q    string
		unit int64
		want int64
	}{
		{"2", 125, 250}, {"0.456", 299, 136}, {"-1", 199, -199}, {"1.5", 1, 2}, {"0.5", -3, -2},
	}
	for _, tt := range tests {
		if got, ok := quantityTimes(tt.q, tt.unit); !ok || got != tt.want {
			t.Errorf("quantityTimes(%q, %d) = %d, %v; want %d", tt.q, tt.unit, got, ok, tt.want)
		}
	}
	if got := unitFrom(375, "3"); got != 125 {
		t.Errorf("unitFrom(375, 3) = %d", got)
	}
	if got := unitFrom(136, "0.456"); got != 298 {
		t.Errorf("unitFrom(136, 0.456) = %d", got)
	}
}

func TestAmountLocale(t *testing.T) {
	de, _ := newNumFormat(Numbers{Decimal: ",", Thousands: ".", CurrencySymbols: []string{"€"}, ExactDecimals: true}, "EUR")
	fr, _ := newNumFormat(Numbers{Decimal: ",", Thousands: " "}, "EUR")
	in, _ := newNumFormat(Numbers{Grouping: "indian"}, "INR")
	jpy, _ := newNumFormat(Numbers{CurrencySymbols: []string{"¥", "円"}}, "JPY")
	krw, _ := newNumFormat(Numbers{CurrencySymbols: []string{"₩", "원"}}, "KRW")
	kwd, _ := newNumFormat(Numbers{}, "KWD")
	tests := []struct {
		name string
		f    numFormat
		in   string
		want int64
		err  bool
	}{
		{"de grouped", de, "1.000,00", 100000, false},
		{"de symbol", de, "-12.345.678,90 €", -1234567890, false},
		{"de US-style decimal point", de, "1.50", 0, true},
		{"de short group", de, "1.00,00", 0, true},
		{"de long group", de, "1.0000,00", 0, true},
		{"de wrapped tail lost", de, "1.000,0", 0, true},
		{"de no decimals", de, "1.000", 100000, false},
		{"fr space", fr, "1 234,50", 123450, false},
		{"fr no-break space", fr, "1\u00a0234,50", 123450, false},
		{"fr narrow no-break space", fr, "-1\u202f234\u202f567,00", -123456700, false},
		{"fr bad group", fr, "12 34,50", 0, true},
		{"indian", in, "12,34,567.00", 123456700, false},
		{"indian crore", in, "1,00,00,000.00", 1000000000, false},
		{"jpy", jpy, "¥1,200", 1200, false},
		{"jpy yen sign after", jpy, "1,200円", 1200, false},
		{"jpy zero decimals printed", jpy, "1,200.00", 1200, false},
		{"jpy real decimals", jpy, "1,200.50", 0, true},
		{"krw", krw, "₩15,000", 15000, false},
		{"kwd three decimals", kwd, "1.250", 1250, false},
	}
	for _, tt := range tests {
		got, err := tt.f.amount(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%s: amount(%q) = %d, %v; want %d, error %v", tt.name, tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestMinorDigitsFromCurrency(t *testing.T) {
	two, zero := 2, 0
	tests := []struct {
		n        Numbers
		currency string
		minor    int
		err      string
	}{
		{Numbers{}, "JPY", 0, ""},
		{Numbers{}, "krw", 0, ""},
		{Numbers{}, "EUR", 2, ""},
		{Numbers{}, "BHD", 3, ""},
		{Numbers{}, "", 2, ""},
		{Numbers{MinorDigits: &zero}, "JPY", 0, ""},
		{Numbers{MinorDigits: &two}, "JPY", 0, "minor_digits: 2, but fields.currency JPY has 0"},
		{Numbers{MinorDigits: &zero}, "", 0, ""},
		{Numbers{Grouping: "chinese"}, "CNY", 0, `grouping: "chinese" is not thousands, indian or any`},
	}
	for _, tt := range tests {
		f, err := newNumFormat(tt.n, tt.currency)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("newNumFormat(%+v, %q) error = %v, want %q", tt.n, tt.currency, err, tt.err)
			}
		case err != nil:
			t.Errorf("newNumFormat(%+v, %q): %v", tt.n, tt.currency, err)
		case f.minor != tt.minor:
			t.Errorf("newNumFormat(%+v, %q).minor = %d, want %d", tt.n, tt.currency, f.minor, tt.minor)
		}
	}
}

// FuzzAmount: the locale paths never panic, and an amount read with grouping checks is the
// same number with its separators removed.
func FuzzAmount(f *testing.F) {
	for _, s := range []string{"1.000,00", "-12.345.678,90 €", "1 234,50", "1\u00a0234,50", "12,34,567.00", "¥1,200", "1.50", "1.000,0", "(2,50)", "1,00,00,000.00", ",00", "1.000"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(3))
	}
	fmts := []numFormat{}
	for _, c := range []struct {
		n   Numbers
		cur string
	}{
		{Numbers{Decimal: ",", Thousands: ".", CurrencySymbols: []string{"€"}, ExactDecimals: true}, "EUR"},
		{Numbers{Decimal: ",", Thousands: " ", Negative: []string{"minus", "parens"}}, "EUR"},
		{Numbers{Grouping: "indian"}, "INR"},
		{Numbers{CurrencySymbols: []string{"¥"}}, "JPY"},
		{Numbers{Grouping: "any", Negative: []string{"trailing_minus"}}, "KWD"},
	} {
		nf, err := newNumFormat(c.n, c.cur)
		if err != nil {
			f.Fatal(err)
		}
		fmts = append(fmts, nf)
	}
	f.Fuzz(func(t *testing.T, s string, which uint8) {
		nf := fmts[int(which)%len(fmts)]
		v, err := nf.amount(s)
		if err != nil {
			return
		}
		if nf.grouping != "any" && !nf.spaceThou && nf.thou != "" {
			plain := strings.ReplaceAll(s, nf.thou, "")
			if w, err := nf.amount(plain); err != nil || w != v {
				t.Fatalf("amount(%q) = %d but without separators amount(%q) = %d, %v", s, v, plain, w, err)
			}
		}
	})
}
