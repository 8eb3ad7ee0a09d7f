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
		{"commas", "CARD,4111,1111,1111,1111,OK", "CARD,4111,11**,****,1111,OK", "CARD,****,****,****,1111,OK", "", []string{"1111"}},
		{"colons", "PAN:4111:1111:1111:1111", "PAN:4111:11**:****:1111", "PAN:****:****:****:1111", "", []string{"1111"}},
		{"pipes", "|4111|1111|1111|1111|", "|4111|11**|****|1111|", "|****|****|****|1111|", "", []string{"1111"}},
		{"asterisks", "4111*1111*1111*1111", "4111*11********1111", "*******************1111"[4:], "", []string{"1111"}},
		{"amex commas", "3782,822463,10005", "3782,82****,*0005", "****,******,*0005", "", []string{"0005"}},
		{"long space run", "4111        1111        1111        1111", "4111        11**        ****        1111", "****        ****        ****        1111", "", []string{"1111"}},
		{"mixed long run", "4111 \t - 1111 . . 1111 __ 1111", "4111 \t - 11** . . **** __ 1111", "**** \t - **** . . **** __ 1111", "", []string{"1111"}},
		{"track 2 lowercase d", "4111111111111111d25121010000", "", "", "track", nil},
		{"track 2 grouped pan", "4111 1111 1111 1111=2512101", "", "", "track", nil},
		{"track 1 no sentinels", "B4111111111111111^DOE/JOHN^2512101", "", "", "track", nil},
		{"track 1 grouped pan", "%B4111 1111 1111 1111^DOE/JOHN^2512101?", "", "", "track", nil},
		{"track 1 no B", "4111111111111111^DOE/JOHN^2512101", "", "", "track", nil},
		{"emv 5A compact", "9F02060000000010005A0841111111111111115F24032912315F2A020978", "9F02060000000010005A08411111******11115F24032912315F2A020978", "9F02060000000010005A08************11115F24032912315F2A020978", "", []string{"1111"}},
		{"emv 5A spaced", "5A 08 41 11 11 11 11 11 11 11", "5A 08 41 11 11 ** ** ** 11 11", "5A 08 ** ** ** ** ** ** 11 11", "", []string{"1111"}},
		{"emv 5A colons", "5A:08:55:00:00:55:55:55:55:59", "5A:08:55:00:00:**:**:**:55:59", "5A:08:**:**:**:**:**:**:55:59", "", []string{"5559"}},
		{"emv 5A odd spacing", "5A0837828224631000 5F", "5A08378282*****000 5F", "5A08***********000 5F", "", []string{"0005"}},
		{"emv 5A amex pad F", "5A08378282246310005F", "5A08378282*****0005F", "5A08***********0005F", "", []string{"0005"}},
		{"emv 57 track 2 equivalent", "57 13 41 11 11 11 11 11 11 11 D2 51 22 01 00 00 00 00 00 00 0F", "", "", "track", nil},
		{"emv 57 compact", "57134111111111111111D2512201000000000000000F", "", "", "track", nil},
		{"emv 9F6B", "9F6B 13 55 00 00 55 55 55 55 59 D2 51 22 01 00 00 00 00 00 00 0F", "", "", "track", nil},
		{"emv 56 track 1", "56 15 42 34" + strings.Repeat(" 31", 15) + " 5E 44 4F 45", "", "", "track", nil},
		{"utf-16le", "C\x00A\x00R\x00D\x00 \x004\x001\x001\x001\x00 \x001\x001\x001\x001\x00 \x001\x001\x001\x001\x00 \x001\x001\x001\x001\x00", "C\x00A\x00R\x00D\x00 \x004\x001\x001\x001\x00 \x001\x001\x00*\x00*\x00 \x00*\x00*\x00*\x00*\x00 \x001\x001\x001\x001\x00", "C\x00A\x00R\x00D\x00 \x00*\x00*\x00*\x00*\x00 \x00*\x00*\x00*\x00*\x00 \x00*\x00*\x00*\x00*\x00 \x001\x001\x001\x001\x00", "", []string{"1111"}},
		{"utf-16be glued", "\x00P\x00A\x00N\x004\x001\x001\x001\x001\x001\x001\x001\x001\x001\x001\x001\x001\x001\x001\x001", "\x00P\x00A\x00N\x004\x001\x001\x001\x001\x001\x00*\x00*\x00*\x00*\x00*\x00*\x001\x001\x001\x001", "\x00P\x00A\x00N\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x001\x001\x001\x001", "", []string{"1111"}},
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
			if l := leaks(strings.ReplaceAll(string(out), "\x00", "")); len(l) > 0 {
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
