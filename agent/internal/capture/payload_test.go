package capture

import (
	"bytes"
	"strings"
	"testing"
)

// codeC returns digits (even count) as CODE128 code set C bytes, two digits per byte.
func codeC(digits string) string {
	var b strings.Builder
	for i := 0; i+1 < len(digits); i += 2 {
		b.WriteByte((digits[i]-'0')*10 + digits[i+1] - '0')
	}
	return b.String()
}

func qr(data string) string {
	n := len(data) + 3
	return "\x1d(k" + string([]byte{byte(n), byte(n >> 8)}) + "1P0" + data
}

// TestLineMaskerBarcodePayloads: card data in barcode and QR payloads is masked in the raw
// stream whatever bytes the command puts around it, with any read boundaries; payload lengths
// are kept, so the stream still decodes.
func TestLineMaskerBarcodePayloads(t *testing.T) {
	p := "4111" + "1111" + "1111" + "1111"
	for _, tc := range []struct{ name, in string }{
		{"code128 code B", "\x1dkI\x12{B" + p + "\n"},
		{"code128 length is a digit", "\x1dkI4" + p + strings.Repeat("X", 52-len(p)) + "\n"},
		{"code128 code C", "\x1dkI\x0a{C" + codeC(p) + "\n"},
		{"form A NUL-terminated", "\x1dk\x04" + p + "\x00TOTAL\n"},
		{"qr glued to header", qr(p) + "\x1d(k\x03\x001Q0\n"},
		{"qr with line breaks", qr("NAME DOE\nPAN "+p+"\r\nEXP 12/29") + "\n"},
		{"qr track data", qr("%B"+p+"^DOE/JOHN^2912101000?") + "\n"},
		{"qr long", qr(strings.Repeat("A", 300)+p) + "\n"},
		{"star barcode digit params", "\x1bb4124" + p + "\x1e\n"},
		{"star qr length is a digit", "\x1b\x1dyD1\x00" + string([]byte{'0', 0}) + p + strings.Repeat("X", '0'-len(p)) + "\x1b\x1dyP\n"},
	} {
		for step := 1; step <= len(tc.in); step += 1 + len(tc.in)/40 {
			out := maskInSteps(tc.in, step)
			if len(out) != len(tc.in) {
				t.Fatalf("%s step %d: length %d, want %d", tc.name, step, len(out), len(tc.in))
			}
			var digits []byte
			for i, c := range out {
				if isDigit(c) {
					digits = append(digits, c)
				} else if c <= 99 && i > 0 && bytes.Contains([]byte(tc.name), []byte("code C")) {
					digits = append(digits, '0'+c/10, '0'+c%10)
				}
			}
			if bytes.Contains(digits, []byte(p)) || bytes.Contains(out, []byte("DOE/JOHN")) {
				t.Fatalf("%s step %d: %q leaks card data: %q", tc.name, step, tc.in, out)
			}
		}
	}
}
