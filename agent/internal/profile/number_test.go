package profile

import "testing"

func TestAmount(t *testing.T) {
	us, _ := newNumFormat(Numbers{CurrencySymbols: []string{"$"}, Negative: []string{"minus", "trailing_minus", "parens"}})
	eu, _ := newNumFormat(Numbers{Decimal: ",", Thousands: ".", CurrencySymbols: []string{"€", "EUR"}})
	implied, _ := newNumFormat(Numbers{ImpliedDecimals: true})
	three := 3
	kwd, _ := newNumFormat(Numbers{MinorDigits: &three})
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
	f, _ := newNumFormat(Numbers{})
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
