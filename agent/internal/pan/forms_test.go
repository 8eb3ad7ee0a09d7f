package pan

import (
	"strings"
	"testing"
)

// TestMaskForms covers the ways of writing a card number that a person reads as one (issue 8
// §3): every case is masked with both profiles, must keep exactly what the profile allows and
// leave no 13–19-digit Luhn-valid run behind.
func TestMaskForms(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		want6      string // first 6 + last 4 kept
		want4      string // last 4 kept
		dropped    string
		cardsLast4 []string
	}{
		{"dots", "VISA 4111.1111.1111.1111 6.73", "VISA 4111.11**.****.1111 6.73", "VISA ****.****.****.1111 6.73", "", []string{"1111"}},
		{"slashes", "4111/1111/1111/1111", "4111/11**/****/1111", "****/****/****/1111", "", []string{"1111"}},
		{"underscores", "PAN_5500_0055_5555_5559", "PAN_5500_00**_****_5559", "PAN_****_****_****_5559", "", []string{"5559"}},
		{"tabs", "MC\t5500\t0055\t5555\t5559", "MC\t5500\t00**\t****\t5559", "MC\t****\t****\t****\t5559", "", []string{"5559"}},
		{"double spaces", "4111  1111  1111  1111", "4111  11**  ****  1111", "****  ****  ****  1111", "", []string{"1111"}},
		{"triple spaces", "CARD 4111   1111   1111   1111 OK", "CARD 4111   11**   ****   1111 OK", "CARD ****   ****   ****   1111 OK", "", []string{"1111"}},
		{"amex dots", "AMEX 3782.822463.10005", "AMEX 3782.82****.*0005", "AMEX ****.******.*0005", "", []string{"0005"}},
		{"mixed separators", "6011.1111-1111/1117", "6011.11**-****/1117", "****.****-****/1117", "", []string{"1117"}},
		{"mixed runs", "4111 .1111_ 1111\t-1111", "4111 .11**_ ****\t-1111", "**** .****_ ****\t-1111", "", []string{"1111"}},
		{"glued before letters", "CARD4111111111111111", "CARD411111******1111", "CARD************1111", "", []string{"1111"}},
		{"glued after letters", "4111111111111111EXP1225", "411111******1111EXP1225", "************1111EXP1225", "", []string{"1111"}},
		{"glued both sides", "ACCT5500005555555559X", "ACCT550000******5559X", "ACCT************5559X", "", []string{"5559"}},
		{"track 2 D bare", "4111111111111111D25121010000000000", "", "", "track", nil},
		{"track 2 D sentinels", ";4111111111111111D25121010000000000?", "", "", "track", nil},
		{"track 2 D start sentinel", ";378282246310005D2512101000", "", "", "track", nil},
		{"track 2 D end sentinel", "6011111111111117D2512101000?", "", "", "track", nil},
		{"track 2 D in text", "RAW 5500005555555559D2512 OK", "", "", "track", nil},
	}
	for _, tt := range tests {
		for _, opts := range []Options{{}, {LastFourOnly: true}} {
			want := tt.want6
			if opts.LastFourOnly {
				want = tt.want4
			}
			out, res := New(opts).Mask([]byte(tt.in))
			if string(out) != want {
				t.Errorf("%s (%+v): Mask(%q) = %q, want %q", tt.name, opts, tt.in, out, want)
			}
			if res.DroppedReason != tt.dropped {
				t.Errorf("%s: dropped %q, want %q", tt.name, res.DroppedReason, tt.dropped)
			}
			if l := leaks(string(out)); len(l) > 0 {
				t.Errorf("%s: %q still holds %q", tt.name, out, l)
			}
			var last4 []string
			for _, c := range res.Cards {
				last4 = append(last4, c.Last4)
			}
			if strings.Join(last4, ",") != strings.Join(tt.cardsLast4, ",") {
				t.Errorf("%s: cards %v, want %v", tt.name, last4, tt.cardsLast4)
			}
		}
	}
}

// TestMaskKeepsNonCardD: a 'D' between digits is only track 2 after a Luhn-valid PAN.
func TestMaskKeepsNonCardD(t *testing.T) {
	for _, in := range []string{
		"PART 4111111111111112D2512",   // not Luhn-valid
		"HEX 0111111111111111D2512",    // leading zero
		"LOT 411111111111D2512",        // 12 digits
		"SKU 4111111111111111D12 2.49", // fewer than 4 digits after D: masked as a PAN, not dropped
	} {
		out, res := Mask([]byte(in))
		if res.Dropped() {
			t.Errorf("Mask(%q) dropped the line", in)
		}
		if l := leaks(string(out)); len(l) > 0 {
			t.Errorf("%q still holds %q", out, l)
		}
	}
}
