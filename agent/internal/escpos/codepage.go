package escpos

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// CodePage decodes single bytes to runes. Bytes below 0x80 are ASCII.
type CodePage struct {
	Name string
	high *[128]rune
}

// LookupCodePage returns the code page with the given name ("CP437", "cp858", "CP1252",
// "ISO-8859-15", …). "UTF-8" is accepted and means bytes are passed through as UTF-8.
func LookupCodePage(name string) (CodePage, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	n = strings.ReplaceAll(n, "_", "-")
	switch n {
	case "UTF-8", "UTF8":
		return CodePage{Name: "UTF-8"}, nil
	case "WPC1252", "WINDOWS-1252":
		n = "CP1252"
	case "PC437", "":
		n = "CP437"
	}
	if strings.HasPrefix(n, "PC") || strings.HasPrefix(n, "WPC") {
		n = "CP" + strings.TrimLeft(n, "WPC")
	}
	if strings.HasPrefix(n, "ISO8859-") {
		n = "ISO-" + n[3:]
	}
	t, ok := highHalf[n]
	if !ok {
		return CodePage{}, fmt.Errorf("unknown code page %q (known: %s)", name, strings.Join(CodePageNames(), ", "))
	}
	return CodePage{Name: n, high: t}, nil
}

// CodePageNames lists the code pages the decoder knows.
func CodePageNames() []string {
	names := []string{"UTF-8"}
	for n := range highHalf {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// appendByte appends the UTF-8 form of b decoded with cp.
func (cp CodePage) appendByte(dst []byte, b byte) []byte {
	if b < 0x80 || cp.high == nil {
		return append(dst, b)
	}
	return utf8.AppendRune(dst, cp.high[b-0x80])
}

// epsonTables maps ESC t n to a code page name (Epson TM-series, per escpos-printer-db).
var epsonTables = map[byte]string{
	0: "CP437", 1: "KATAKANA", 2: "CP850", 3: "CP860", 4: "CP863", 5: "CP865", 13: "CP857",
	14: "CP737", 15: "ISO-8859-7", 16: "CP1252", 17: "CP866", 18: "CP852", 19: "CP858",
	21: "CP874", 30: "TCVN-3-1", 31: "TCVN-3-2", 32: "CP720", 44: "CP1125", 53: "RK1048",
	33: "CP775", 34: "CP855", 35: "CP861", 36: "CP862", 37: "CP864", 38: "CP869",
	39: "ISO-8859-2", 40: "ISO-8859-15", 45: "CP1250", 46: "CP1251", 47: "CP1253",
	48: "CP1254", 49: "CP1255", 50: "CP1256", 51: "CP1257", 52: "CP1258",
}

// starTables maps Star's ESC GS t n to a code page name (Star TSP-series, per escpos-printer-db).
var starTables = map[byte]string{
	0: "CP437", 1: "CP437", 3: "CP437", 4: "CP858", 5: "CP852", 6: "CP860", 7: "CP861",
	8: "CP863", 9: "CP865", 10: "CP866", 11: "CP855", 12: "CP857", 13: "CP862", 14: "CP864",
	15: "CP737", 17: "CP869", 32: "CP1252", 33: "CP1250", 34: "CP1251",
	2: "KATAKANA", 21: "CP874", 76: "CP3011", 77: "CP3012",
}
