package protocol

import "testing"

func TestMinorDigits(t *testing.T) {
	tests := []struct {
		in    string
		want  int
		known bool
	}{
		{"EUR", 2, true}, {"usd", 2, true}, {"JPY", 0, true}, {"KRW", 0, true}, {" jpy ", 0, true},
		{"KWD", 3, true}, {"CLF", 4, true}, {"", 2, false}, {"EURO", 2, false}, {"€", 2, false},
	}
	for _, tt := range tests {
		got, known := MinorDigits(tt.in)
		if got != tt.want || known != tt.known {
			t.Errorf("MinorDigits(%q) = %d, %v; want %d, %v", tt.in, got, known, tt.want, tt.known)
		}
	}
}
