package pan

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		opts    Options
		want    string
		masked  int
		dropped string
		cards   []Card
	}{
		{"plain visa", "VISA 4111111111111111 6.73", Options{}, "VISA 411111******1111 6.73", 1, "", []Card{{"visa", "1111"}}},
		{"spaced visa", "CARD 4111 1111 1111 1111", Options{}, "CARD 4111 11** **** 1111", 1, "", []Card{{"visa", "1111"}}},
		{"dashed mastercard", "MC 5555-5555-5555-4444 AUTH", Options{}, "MC 5555-55**-****-4444 AUTH", 1, "", []Card{{"mastercard", "4444"}}},
		{"amex 15", "AMEX 378282246310005", Options{}, "AMEX 378282*****0005", 1, "", []Card{{"amex", "0005"}}},
		{"discover", "6011111111111117", Options{}, "601111******1117", 1, "", []Card{{"discover", "1117"}}},
		{"last four only", "4111111111111111", Options{LastFourOnly: true}, "************1111", 1, "", []Card{{"visa", "1111"}}},
		{"two pans", "4111111111111111/5555555555554444", Options{}, "411111******1111/555555******4444", 2, "", []Card{{"visa", "1111"}, {"mastercard", "4444"}}},
		{"quantity prefix", "1 4111 1111 1111 1111", Options{}, "1 4111 11** **** 1111", 1, "", []Card{{"visa", "1111"}}},
		{"expiry suffix", "4111 1111 1111 1111 12 25", Options{}, "4111 11** **** 1111 12 25", 1, "", []Card{{"visa", "1111"}}},
		{"non luhn 16", "REF 4111111111111112", Options{}, "REF 4111111111111112", 0, "", nil},
		{"ean13 barcode", "BREAD WHITE 012345678905              2.49", Options{}, "BREAD WHITE 012345678905              2.49", 0, "", nil},
		{"leading zero luhn", "GT 0000000000000000", Options{}, "GT 0000000000000000", 0, "", nil},
		{"grand total", "GT   $00000000125478.96", Options{}, "GT   $00000000125478.96", 0, "", nil},
		{"already masked", "VISA ************1111                 6.73", Options{}, "VISA ************1111                 6.73", 0, "", nil},
		{"twelve digits", "411111111111", Options{}, "411111111111", 0, "", nil},
		{"20 digits glued", "41111111111111111000", Options{}, "41111111111111111000", 0, "", nil},
		{"track 2", ";4111111111111111=25121010000012345678?", Options{}, "", 0, "track", nil},
		{"track 2 bare", "4111111111111111=2512101", Options{}, "", 0, "track", nil},
		{"track 1", "%B4111111111111111^DOE/JOHN^2512101000000000?", Options{}, "", 0, "track", nil},
		{"cvv line", "CVV: 123", Options{}, "", 0, "cvv", nil},
		{"cvc2 line", "cvc2 4567", Options{}, "", 0, "cvv", nil},
		{"pin block", "PIN BLOCK 0412AC89ABCDEF12", Options{}, "", 0, "cvv", nil},
		{"pin verified kept", "PIN VERIFIED", Options{}, "PIN VERIFIED", 0, "", nil},
		{"cid money kept", "CID                 $168.64", Options{}, "CID                 $168.64", 0, "", nil},
		{"cider kept", "CIDER 330ML 2.49", Options{}, "CIDER 330ML 2.49", 0, "", nil},
		{"cvv in a json string", `{"description":"CVV2 123","quantity":"1"}`, Options{}, "", 0, "cvv", nil},
		{"cvv in a quoted csv field", `7,"CVV 4567",1.00`, Options{}, "", 0, "cvv", nil},
		{"pin word in json kept", `{"description":"PIN BADGE","quantity":"1","unit_price":100,"receipt":"000123"}`, Options{}, `{"description":"PIN BADGE","quantity":"1","unit_price":100,"receipt":"000123"}`, 0, "", nil},
		{"cid decimal comma in json kept", `{"description":"CID 168,64"}`, Options{}, `{"description":"CID 168,64"}`, 0, "", nil},
		{"cvv json key", `{"cvv":"123"}`, Options{}, "", 0, "cvv", nil},
		{"cvv json key number", `{"cvv":123,"x":1}`, Options{}, "", 0, "cvv", nil},
		{"cvv2 json key spaced", `{"cvv2": "123"}`, Options{}, "", 0, "cvv", nil},
		{"cvc nested json key", `{"card":{"cvc":"4567"}}`, Options{}, "", 0, "cvv", nil},
		{"pin json key", `{"pin":"1234"}`, Options{}, "", 0, "cvv", nil},
		{"pin json key space before colon", `{"PIN" : "1234"}`, Options{}, "", 0, "cvv", nil},
		{"pin json key not a code kept", `{"pin":"VERIFIED","amount":1234}`, Options{}, `{"pin":"VERIFIED","amount":1234}`, 0, "", nil},
		{"cid json key money kept", `{"cid":"$168.64"}`, Options{}, `{"cid":"$168.64"}`, 0, "", nil},
		{"fullwidth digits", "{\"description\":\"４１１１１１１１１１１１１１１１\"}", Options{}, "{\"description\":\"４１１１１１" + strings.Repeat("*", 18) + "１１１１\"}", 1, "", []Card{{"visa", "1111"}}},
		{"fullwidth digits ideographic spaces", "CARD ４１１１\u3000１１１１\u3000１１１１\u3000１１１１ OK", Options{}, "CARD ４１１１\u3000１１" + strings.Repeat("*", 6) + "\u3000" + strings.Repeat("*", 12) + "\u3000１１１１ OK", 1, "", []Card{{"visa", "1111"}}},
		{"fullwidth digits spaces last four only", "４１１１ １１１１ １１１１ １１１１", Options{LastFourOnly: true}, strings.Repeat("*", 12) + " " + strings.Repeat("*", 12) + " " + strings.Repeat("*", 12) + " １１１１", 1, "", []Card{{"visa", "1111"}}},
		{"arabic-indic digits", "\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661", Options{}, "\u0664\u0661\u0661\u0661\u0661\u0661" + strings.Repeat("*", 12) + "\u0661\u0661\u0661\u0661", 1, "", []Card{{"visa", "1111"}}},
		{"fullwidth cvv", "CVV ４５６", Options{}, "", 0, "cvv", nil},
		{"fullwidth non luhn kept", "ＲＥＦ ４１１１１１１１１１１１１１１２", Options{}, "ＲＥＦ ４１１１１１１１１１１１１１１２", 0, "", nil},
		{"empty", "", Options{}, "", 0, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(tt.opts)
			got, res := m.Mask([]byte(tt.in))
			if string(got) != tt.want {
				t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if res.Masked != tt.masked || res.DroppedReason != tt.dropped {
				t.Errorf("Mask(%q) masked=%d dropped=%q, want %d %q", tt.in, res.Masked, res.DroppedReason, tt.masked, tt.dropped)
			}
			if fmt.Sprint(res.Cards) != fmt.Sprint(tt.cards) {
				t.Errorf("Mask(%q) cards=%v, want %v", tt.in, res.Cards, tt.cards)
			}
			st := m.Stats()
			if st.PANsMasked != int64(tt.masked) || st.Lines != 1 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestMaskDoesNotModifyInput(t *testing.T) {
	in := []byte("VISA 4111111111111111")
	orig := bytes.Clone(in)
	out, _ := Mask(in)
	if !bytes.Equal(in, orig) {
		t.Fatalf("input modified: %q", in)
	}
	if bytes.Equal(out, in) {
		t.Fatalf("not masked: %q", out)
	}
}

func TestBrand(t *testing.T) {
	tests := map[string]string{
		"4111111111111111": "visa", "5555555555554444": "mastercard", "2223003122003222": "mastercard",
		"378282246310005": "amex", "6011111111111117": "discover", "6500000000000002": "discover",
		"3530111333300000": "jcb", "30569309025904": "diners", "6200000000000005": "unionpay",
		"6759649826438453": "maestro", "9999999999999995": "unknown",
	}
	for pan, want := range tests {
		if got := Brand(pan); got != want {
			t.Errorf("Brand(%q) = %q, want %q", pan, got, want)
		}
		if !Luhn(pan) && want != "unknown" {
			t.Errorf("Luhn(%q) = false for a test PAN", pan)
		}
	}
}

// leaks returns Luhn-valid PANs (per an independent brute-force definition) found in s.
func leaks(s string) []string {
	var found []string
	// Split into runs of digits separated by 1..3 of space, tab, dash, dot, slash, underscore.
	i := 0
	for i < len(s) {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		var groups []string
		var wide []bool // wide[g]: group g+1 follows more than one space or dash
		cur := ""
		j := i
		for j < len(s) {
			c := s[j]
			if c >= '0' && c <= '9' {
				cur += string(c)
				j++
				continue
			}
			if n := len(s[j:]) - len(strings.TrimLeft(s[j:], " \t-./_")); n > 0 && n <= 3 && j+n < len(s) && s[j+n] >= '0' && s[j+n] <= '9' && cur != "" {
				groups = append(groups, cur)
				wide = append(wide, n > 1 || (c != ' ' && c != '-'))
				cur = ""
				j += n
				continue
			}
			break
		}
		groups = append(groups, cur)
		for a := range groups {
			for b := a + 1; b <= len(groups); b++ {
				d := strings.Join(groups[a:b], "")
				if len(d) > 19 {
					break
				}
				if len(d) >= 13 && len(d) <= 19 && d[0] != '0' && Luhn(d) && grouped(groups[a:b], wide[a:b-1]) {
					found = append(found, d)
				}
			}
		}
		i = j
	}
	return found
}

// grouped reports whether groups, joined by separators that are wide or not, are grouped the way
// the masker requires: any grouping with single spaces or dashes, else 4+ digits a group and 3+
// in the last.
func grouped(groups []string, wide []bool) bool {
	if !slices.Contains(wide, true) {
		return true
	}
	for g, d := range groups {
		if len(d) < 4 && (g < len(groups)-1 || len(d) < 3) {
			return false
		}
	}
	return true
}

func FuzzMask(f *testing.F) {
	for _, s := range []string{
		"VISA 4111111111111111 6.73", "1 4111 1111 1111 1111 12 25", "4111-1111-1111-1111",
		";4111111111111111=2512?", "CVV 123", "378282246310005 5555555555554444",
		"4111 1111 1111 1111 123456789", "BREAD WHITE 012345678905 2.49",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 4096 {
			return
		}
		orig := bytes.Clone(in)
		out, res := Mask(in)
		if !bytes.Equal(in, orig) {
			t.Fatalf("input modified")
		}
		if l := leaks(string(out)); len(l) > 0 {
			t.Fatalf("Mask(%q) = %q still holds PAN(s) %q", in, out, l)
		}
		if len(out) != len(in) && !res.Dropped() {
			t.Fatalf("length changed without a drop: %q -> %q", in, out)
		}
		if res.Dropped() && len(out) != 0 {
			t.Fatalf("dropped line not empty: %q", out)
		}
		again, _ := Mask(out)
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
	})
}

var benchLine = []byte("BREAD WHITE 012345678905              2.49")
var benchPAN = []byte("VISA 4111 1111 1111 1111               6.73")

func BenchmarkMaskPlain(b *testing.B) {
	m := New(Options{})
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		m.Mask(benchLine)
	}
}

func BenchmarkMaskPAN(b *testing.B) {
	m := New(Options{})
	b.SetBytes(int64(len(benchPAN)))
	for b.Loop() {
		m.Mask(benchPAN)
	}
}
