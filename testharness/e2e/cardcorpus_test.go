package e2e

// The card-data corpus (issue 8 §3): every way of writing a card number that a person reads as
// one, fed through every kind of capture source of the real agent to the real hub and the
// flat-file ERP; afterwards no byte written anywhere holds one of the numbers. Every number is
// made here (Luhn) and unique to its form and source, so a leak names both.

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// luhnPAN returns a Luhn-valid card number of length digits: prefix, then n spread over the
// middle digits, then the check digit.
func luhnPAN(prefix string, length, n int) string {
	body := prefix + fmt.Sprintf("%0*d", length-1-len(prefix), (n*7919+104729)%pow10(length-1-len(prefix)))
	sum := 0
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if (len(body)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return body + strconv.Itoa((10-sum%10)%10)
}

func pow10(n int) int {
	v := 1
	for range n {
		v *= 10
	}
	return v
}

// cardForm is one way of writing a card number.
type cardForm struct {
	name   string
	length int    // digits of the number (13, 15, 16, 19)
	layer  string // what catches it (for the report)
	// text returns the printed text holding pan; "\n" in it is a printed line break.
	text func(pan string) string
	// escpos: only in a printer stream (raw printer commands); jsonl: only in canonical JSON
	// lines (raw JSON spelling); "" everywhere.
	only string
	// needles are other spellings of the number to look for (hex-encoded ASCII, binary).
	needles func(pan string) [][]byte
}

func groups(p string, sizes ...int) []string {
	var out []string
	for _, n := range sizes {
		out = append(out, p[:n])
		p = p[n:]
	}
	if p != "" {
		out = append(out, p)
	}
	return out
}

func join4(sep string) func(string) string {
	return func(p string) string { return strings.Join(groups(p, 4, 4, 4), sep) }
}

// mapDigits writes p's digits as those of the Unicode digit block starting at zero.
func mapDigits(p string, zero rune, sep string) string {
	var b strings.Builder
	for i, c := range p {
		if i > 0 && i%4 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(zero + c - '0')
	}
	return b.String()
}

func hexBytes(s, sep string) string {
	var out []string
	for i := 0; i+1 < len(s); i += 2 {
		out = append(out, s[i:i+2])
	}
	return strings.Join(out, sep)
}

// bcd is p as EMV BCD hex digits, padded with F to whole bytes, then tail.
func bcd(p, tail string) string {
	v := p + tail
	if len(v)%2 == 1 {
		v += "F"
	}
	return v
}

func tlvHex(tag, value string) string {
	return tag + fmt.Sprintf("%02X", len(value)/2) + value
}

func codeCBytes(digits string) string {
	var b strings.Builder
	for i := 0; i+1 < len(digits); i += 2 {
		b.WriteByte((digits[i]-'0')*10 + digits[i+1] - '0')
	}
	return b.String()
}

func qrData(data string) string {
	n := len(data) + 3
	return "\x1d(k" + string([]byte{byte(n), byte(n >> 8)}) + "1P0" + data + "\x1d(k\x03\x001Q0"
}

var cardForms = []cardForm{
	{name: "plain", length: 16, layer: "pan: digit run", text: func(p string) string { return p }},
	{name: "spaces", length: 16, layer: "pan: single-space groups", text: join4(" ")},
	{name: "dashes", length: 16, layer: "pan: single-dash groups", text: join4("-")},
	{name: "dots", length: 16, layer: "pan: wide separator, card-grouped", text: join4(".")},
	{name: "slashes", length: 16, layer: "pan: wide separator, card-grouped", text: join4("/")},
	{name: "underscores", length: 16, layer: "pan: wide separator, card-grouped", text: join4("_")},
	{name: "tabs", length: 16, layer: "pan: wide separator, card-grouped", text: join4("\t")},
	{name: "double spaces", length: 16, layer: "pan: separator run", text: join4("  ")},
	{name: "long space run", length: 16, layer: "pan: separator run (up to 8)", text: join4("       ")},
	{name: "mixed separators", length: 16, layer: "pan: separator mix", text: func(p string) string {
		g := groups(p, 4, 4, 4)
		return g[0] + " ." + g[1] + "_ " + g[2] + "\t-" + g[3]
	}},
	{name: "commas", length: 16, layer: "pan: field separator, exact card layout", text: join4(",")},
	{name: "colons", length: 16, layer: "pan: field separator, exact card layout", text: join4(":")},
	{name: "pipes", length: 16, layer: "pan: field separator, exact card layout", text: join4("|")},
	{name: "asterisks", length: 16, layer: "pan: single asterisk", text: join4("*")},
	{name: "glued before letters", length: 16, layer: "pan: letters do not end a run", text: func(p string) string { return "CARD" + p }},
	{name: "glued after letters", length: 16, layer: "pan: letters do not end a run", text: func(p string) string { return p + "EXP1229" }},
	{name: "glued both sides", length: 16, layer: "pan: letters do not end a run", text: func(p string) string { return "ACCT" + p + "X" }},
	{name: "fullwidth digits", length: 16, layer: "pan: Unicode digit view", text: func(p string) string { return mapDigits(p, '０', "") }},
	{name: "fullwidth ideographic spaces", length: 16, layer: "pan: Unicode digit view", text: func(p string) string { return mapDigits(p, '０', "\u3000") }},
	{name: "arabic-indic digits", length: 16, layer: "pan: Unicode digit view", text: func(p string) string { return mapDigits(p, '٠', " ") }},
	{name: "no-break spaces", length: 16, layer: "pan: Unicode space view", text: join4("\u00a0")},
	{name: "en dashes", length: 16, layer: "pan: Unicode dash view", text: join4("\u2013")},
	{name: "amex 4-6-5", length: 15, layer: "pan: single-space groups", text: func(p string) string { return strings.Join(groups(p, 4, 6), " ") }},
	{name: "amex dots", length: 15, layer: "pan: wide separator, card-grouped", text: func(p string) string { return strings.Join(groups(p, 4, 6), ".") }},
	{name: "19 digits", length: 19, layer: "pan: single-space groups", text: func(p string) string { return strings.Join(groups(p, 4, 4, 4, 4), " ") }},
	{name: "13 digits", length: 13, layer: "pan: digit run", text: func(p string) string { return "REF " + p }},
	{name: "track 2 sentinels", length: 16, layer: "pan: track 2 drops the line", text: func(p string) string { return ";" + p + "=29121010000000000000?" }},
	{name: "track 2 bare", length: 16, layer: "pan: track 2 drops the line", text: func(p string) string { return p + "=2912101" }},
	{name: "track 2 D", length: 16, layer: "pan: track 2 'D' drops the line", text: func(p string) string { return ";" + p + "D29121010000000000000?" }},
	{name: "track 2 d", length: 16, layer: "pan: track 2 'd' drops the line", text: func(p string) string { return p + "d2912101000" }},
	{name: "track 2 grouped", length: 16, layer: "pan: track 2 drops the line", text: func(p string) string { return join4(" ")(p) + "=2912101" }},
	{name: "track 1 sentinels", length: 16, layer: "pan: track 1 drops the line", text: func(p string) string { return "%B" + p + "^DOE/JOHN^29121011234567890000?" }},
	{name: "track 1 bare", length: 16, layer: "pan: track 1 drops the line", text: func(p string) string { return "B" + p + "^DOE/JOHN^2912101" }},
	{name: "emv 5A compact", length: 16, layer: "pan: EMV tag 5A", text: func(p string) string {
		return "9F0206000000001000" + tlvHex("5A", bcd(p, "")) + "5F2403291231"
	}},
	{name: "emv 5A spaced", length: 15, layer: "pan: EMV tag 5A", text: func(p string) string { return hexBytes(tlvHex("5A", bcd(p, "")), " ") }},
	{name: "emv 5A colons", length: 16, layer: "pan: EMV tag 5A", text: func(p string) string { return "TAG " + hexBytes(tlvHex("5A", bcd(p, "")), ":") }},
	{name: "emv 57 track 2 equivalent", length: 16, layer: "pan: EMV tag 57 drops the line", text: func(p string) string {
		return hexBytes(tlvHex("57", bcd(p, "D29122010000000000000")), " ")
	}},
	{name: "emv 9F6B", length: 16, layer: "pan: EMV tag 9F6B drops the line", text: func(p string) string { return tlvHex("9F6B", bcd(p, "D2912201000000")) }},
	{name: "emv 56 track 1", length: 16, layer: "pan: EMV tag 56 drops the line", text: func(p string) string {
		return hexBytes(tlvHex("56", hex.EncodeToString([]byte("B"+p+"^DOE/JOHN^2912201"))), " ")
	}, needles: func(p string) [][]byte { return [][]byte{[]byte(hex.EncodeToString([]byte(p)))} }},
	{name: "two lines", length: 16, layer: "capture: line masker joins lines (jsonl, csv: pan \\n escape)", text: func(p string) string {
		return "ACCT " + join4(" ")(p)[:9] + "\n" + join4(" ")(p)[10:] + " OK"
	}},
	{name: "two lines glued", length: 16, layer: "capture: line masker joins lines (jsonl, csv: pan \\n escape)", text: func(p string) string { return "PAN" + p[:10] + "\n" + p[10:] }},
	// Printer streams only: raw ESC/POS commands.
	{name: "split by bold command", length: 16, only: "escpos", layer: "capture: printed view (commands skipped)", text: func(p string) string {
		return "CARD " + p[:7] + "\x1bE\x01" + p[7:] + "\x1bE\x00"
	}},
	{name: "split over lines by commands", length: 16, only: "escpos", layer: "capture: line masker joins lines", text: func(p string) string {
		return "\x1bE\x01" + join4(" ")(p)[:14] + "\x1bE\x00\n\x1b!\x00" + join4(" ")(p)[15:]
	}},
	{name: "barcode code128 B", length: 16, only: "escpos", layer: "capture: barcode payload", text: func(p string) string {
		return "\x1dkI" + string(rune(len(p)+2)) + "{B" + p
	}},
	{name: "barcode length glued", length: 16, only: "escpos", layer: "capture: barcode payload", text: func(p string) string {
		d := p + strings.Repeat("X", 52-len(p))
		return "\x1dkI" + string(rune(len(d))) + d
	}},
	{name: "barcode code128 C", length: 16, only: "escpos", layer: "capture: barcode payload (code set C)", text: func(p string) string {
		d := "{C" + codeCBytes(p)
		return "\x1dkI" + string(rune(len(d))) + d
	}, needles: func(p string) [][]byte { return [][]byte{[]byte(codeCBytes(p))} }},
	{name: "barcode form A", length: 16, only: "escpos", layer: "capture: barcode payload", text: func(p string) string { return "\x1dk\x04" + p + "\x00" }},
	{name: "qr payload", length: 16, only: "escpos", layer: "capture: QR payload", text: func(p string) string { return qrData(p) }},
	{name: "qr payload with line breaks", length: 16, only: "escpos", layer: "capture: QR payload", text: func(p string) string {
		return qrData("NAME DOE\nPAN " + join4(" ")(p) + "\r\nEXP 12/29")
	}},
	// Canonical JSON lines only: raw JSON spellings.
	{name: "json unicode escapes", length: 16, only: "jsonl", layer: "profile: \\u escapes written out", text: func(p string) string {
		var b strings.Builder
		for _, c := range p[:6] {
			fmt.Fprintf(&b, `\u%04x`, c)
		}
		return b.String() + p[6:]
	}},
	{name: "json tab escapes", length: 16, only: "jsonl", layer: "pan: escaped separators", text: join4(`\t`)},
	{name: "json line break escapes", length: 16, only: "jsonl", layer: "pan: escaped separators", text: join4(`\r\n`)},
	{name: "json slash escapes", length: 16, only: "jsonl", layer: "pan: escaped separators", text: join4(`\/`)},
	{name: "json nbsp escapes", length: 16, only: "jsonl", layer: "profile: \\u escapes written out + pan Unicode space view", text: join4(`\u00a0`)},
}

// corpusSource is one capture source of the corpus run.
type corpusSource struct {
	id, kind string // terminal id; jsonl, csv, csv-utf16le, csv-utf16be, dir-jsonl, serial, tcp
}

var corpusSources = []corpusSource{
	{"TF", "jsonl"}, {"TJ", "dir-jsonl"}, {"TC", "csv"}, {"TL", "csv-utf16le"}, {"TB", "csv-utf16be"},
	{"TS", "serial"}, {"TT", "tcp"},
}

// corpusCase is one form fed through one source, with its own number.
type corpusCase struct {
	form cardForm
	src  corpusSource
	pan  string
}

func (c corpusCase) applies() bool {
	switch c.form.only {
	case "escpos":
		return c.src.kind == "serial" || c.src.kind == "tcp"
	case "jsonl":
		return c.src.kind == "jsonl" || c.src.kind == "dir-jsonl"
	}
	return true
}

func corpusCases() []corpusCase {
	prefix := map[int]string{13: "4", 15: "37", 16: "4", 19: "4"}
	var out []corpusCase
	n := 0
	for _, src := range corpusSources {
		for _, f := range cardForms {
			n++
			c := corpusCase{form: f, src: src, pan: luhnPAN(prefix[f.length], f.length, n)}
			if c.applies() {
				out = append(out, c)
			}
		}
	}
	return out
}

// corpusJSONL is canonical JSON lines with one record per case (the form in a line description,
// a nested member the record does not know and the receipt), then a clean sentinel record.
func corpusJSONL(terminal string, cases []corpusCase) []byte {
	var b bytes.Buffer
	for i, c := range cases {
		text := c.form.text(c.pan)
		enc, _ := json.Marshal(text)
		if c.form.only == "jsonl" {
			enc = []byte(`"` + text + `"`) // a raw JSON spelling
		}
		fmt.Fprintf(&b, `{"kind":"sale","terminal":%q,"receipt":"%d","business_date":%q,"lines":[{"description":%s,"quantity":"1","unit_price":100,"amount":100}],"total":100,"tenders":[{"type":"cash","amount":100}],"pos_extra":{"note":[%s]}}`+"\n",
			terminal, 1000+i, simDate, enc, enc)
	}
	fmt.Fprintf(&b, `{"kind":"sale","terminal":%q,"receipt":"999999","business_date":%q,"lines":[{"description":"END","quantity":"1","unit_price":100,"amount":100}],"total":100,"tenders":[{"type":"cash","amount":100}]}`+"\n", terminal, simDate)
	return b.Bytes()
}

// corpusCSV is a csv-export file with one row per case, the form in the description, then a
// clean sentinel row.
func corpusCSV(terminal string, cases []corpusCase) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(strings.Split("receipt,kind,date,time,terminal,sku,description,quantity,unit_price,amount,voided,discount,tax,total,tenders,change,original_receipt", ","))
	row := func(receipt, desc string) {
		w.Write([]string{receipt, "sale", simDate, "10:00:00", terminal, "", desc, "1", "1.00", "1.00", "", "", "", "1.00", "cash:1.00", "", ""})
	}
	for i, c := range cases {
		row(strconv.Itoa(1000+i), c.form.text(c.pan))
	}
	row("999999", "END")
	w.Flush()
	return b.Bytes()
}

func utf16(b []byte, bigEndian, bom bool) []byte {
	var out []byte
	put := func(u uint16) {
		if bigEndian {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	if bom {
		put(0xfeff)
	}
	for _, r := range string(b) {
		if r >= 0x10000 {
			r -= 0x10000
			put(uint16(0xd800 + r>>10))
			put(uint16(0xdc00 + r&0x3ff))
			continue
		}
		put(uint16(r))
	}
	return out
}

// corpusESCPOS is an Epson ESC/POS stream with one receipt per case: the form on an ACCT line
// (line breaks in it printed as LF CR) or, for printer-command forms, as printed; text outside
// any receipt for every fourth case; then a clean sentinel receipt.
func corpusESCPOS(cases []corpusCase) []byte {
	var w bytes.Buffer
	receipt := func(n int, body string) {
		epsonHead(&w, n)
		w.WriteString(epsonCol("\x1bE\x01TOTAL", "10.00\x1bE\x00"))
		w.WriteString(epsonCol("CASH", "10.00"))
		w.WriteString(body)
		w.WriteString("\x1dV\x00")
	}
	for i, c := range cases {
		text := c.form.text(c.pan)
		if c.form.only != "escpos" {
			text = "ACCT " + strings.ReplaceAll(text, "\n", "\n\r")
		}
		if i%4 == 3 {
			w.WriteString(text + "\n\r") // outside a receipt: quarantined
		}
		receipt(1000+i, text+"\n\r")
	}
	receipt(999999, "THANK YOU\n\r")
	return w.Bytes()
}

// digitsView returns the decimal digits of b in order, ASCII and Unicode (UTF-8) alike, every
// other byte left out: a number split by anything (separators, NULs of UTF-16, line breaks)
// is contiguous in it.
func digitsView(b []byte) []byte {
	out := make([]byte, 0, len(b)/4)
	for i := 0; i < len(b); {
		c := b[i]
		if c >= '0' && c <= '9' {
			out = append(out, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if unicode.IsDigit(r) {
			z := r
			for unicode.IsDigit(z - 1) {
				z--
			}
			out = append(out, byte('0'+(r-z)%10))
		}
		i += n
	}
	return out
}

// textViews returns the ways b may hold text: as it is, with JSON \u escapes written out, and
// as UTF-16 (both byte orders, both alignments).
func textViews(b []byte) [][]byte {
	views := [][]byte{b, unescapeU(b)}
	for _, be := range []bool{false, true} {
		for off := 0; off < 2 && off < len(b); off++ {
			var s strings.Builder
			for i := off; i+1 < len(b); i += 2 {
				u := rune(b[i+1])<<8 | rune(b[i])
				if be {
					u = rune(b[i])<<8 | rune(b[i+1])
				}
				s.WriteRune(u)
			}
			views = append(views, []byte(s.String()))
		}
	}
	return views
}

// unescapeU writes out the JSON \uXXXX escapes in b.
func unescapeU(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+6 <= len(b) && b[i+1] == 'u' {
			if v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16); err == nil {
				out = utf8.AppendRune(out, rune(v))
				i += 5
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}

// corpusLeaks returns the cases whose number b holds: as digits in a row, in the digit view of
// any text view of b, or in one of the form's other spellings.
func corpusLeaks(b []byte, cases []corpusCase) []corpusCase {
	views := [][]byte{b}
	for _, v := range textViews(b) {
		views = append(views, digitsView(v))
	}
	var out []corpusCase
	for _, c := range cases {
		needles := [][]byte{[]byte(c.pan)}
		if c.form.needles != nil {
			needles = append(needles, c.form.needles(c.pan)...)
		}
		hit := false
		for _, v := range views {
			for _, nd := range needles {
				hit = hit || bytes.Contains(v, nd)
			}
		}
		if hit {
			out = append(out, c)
		}
	}
	return out
}

// TestCardCorpusNeverWritten feeds every corpus form through every source type of the real agent
// (file:// canonical JSON lines; dir:// canonical JSON lines, CSV, UTF-16 LE with BOM and BE
// without; an ESC/POS printer stream over a serial line and over a TCP printer tap) to the real
// hub, which posts to a flat-file ERP. Then every byte under the test's folder — agent data dir
// (spool, raw journal), the drop folders and their done/, hub database and WAL, ERP outbound
// files, the processes' logs (their stdout and stderr) — is scanned for every number, in a row
// and in the digit view (separators, line breaks and UTF-16 NULs removed). The same scan of the
// fed input finds every number, so the scan would see a form the agent let through.
func TestCardCorpusNeverWritten(t *testing.T) { cardCorpusRun(t, "") }

// TestCardCorpusNeverWrittenPostgres is the corpus run with the hub on PostgreSQL: a dump of
// the hub's schema (data only) is scanned with everything else.
func TestCardCorpusNeverWrittenPostgres(t *testing.T) {
	pg := os.Getenv("LANEBRIDGE_TEST_PG_URL")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	cardCorpusRun(t, pg)
}

func cardCorpusRun(t *testing.T, pg string) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	posDir := t.TempDir() // the POS's own files (the file:// journal): input, not written by us
	dumpOnFailure(t, dir)
	cases := corpusCases()
	bySrc := map[string][]corpusCase{}
	for _, c := range cases {
		bySrc[c.src.id] = append(bySrc[c.src.id], c)
	}
	forms := map[string]bool{}
	for _, c := range cases {
		forms[c.form.name] = true
	}
	if len(forms) < 40 {
		t.Fatalf("corpus has %d forms, want at least 40", len(forms))
	}

	// The inputs, as the POS writes them.
	inputs := map[string][]byte{
		"TF": corpusJSONL("TF", bySrc["TF"]),
		"TJ": corpusJSONL("TJ", bySrc["TJ"]),
		"TC": corpusCSV("TC", bySrc["TC"]),
		"TL": utf16(corpusCSV("TL", bySrc["TL"]), false, true),
		"TB": utf16(corpusCSV("TB", bySrc["TB"]), true, false),
		"TS": corpusESCPOS(bySrc["TS"]),
		"TT": corpusESCPOS(bySrc["TT"]),
	}
	// Control: the scan finds every number of every case in what was fed.
	for id, in := range inputs {
		found := map[string]bool{}
		for _, c := range corpusLeaks(in, bySrc[id]) {
			found[c.pan] = true
		}
		for _, c := range bySrc[id] {
			if !found[c.pan] {
				t.Errorf("control: the scan does not see %q (source %s) in its own input: the scan is blind to it", c.form.name, id)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	out := filepath.Join(dir, "erp-outbound")
	hubCfg := fmt.Sprintf("erp:\n  kind: flatfile\n  flatfile:\n    outbound: %s\n    inbound: %s\n", out, filepath.Join(dir, "erp-inbound"))
	schema := fmt.Sprintf("lbcard_%d", time.Now().UnixNano())
	if pg != "" {
		hubCfg += fmt.Sprintf("store:\n  postgres_url: %s&search_path=%s\n", pg, schema)
		t.Cleanup(func() { dropSchema(pg, schema) })
	}
	hubYAML := writeHubConfig(t, dir, "hub.yaml", hubCfg)
	const store = "S081"
	h := startHub(t, dir, "--config", hubYAML)
	enrolled := enroll(t, dir, store, "tcp://"+h.MQTT, "--config", hubYAML)

	journal := filepath.Join(posDir, "TF.jsonl")
	drops := map[string]string{}
	for _, id := range []string{"TJ", "TC", "TL", "TB"} {
		drops[id] = filepath.Join(dir, "drop-"+id)
		if err := os.MkdirAll(drops[id], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	line := newPTYLine(t)
	tcpAddr := freeAddr(t)
	cfg, _ := captureConfig(t, dir, store, enrolled, fastProfiles(t, dir, "epson-tm-escpos"),
		captureTerm{"TF", "file://" + journal, "canonical-jsonl"},
		captureTerm{"TJ", "dir://" + drops["TJ"], "canonical-jsonl"},
		captureTerm{"TC", "dir://" + drops["TC"], "csv-export"},
		captureTerm{"TL", "dir://" + drops["TL"] + "?done=masked", "csv-export"},
		captureTerm{"TB", "dir://" + drops["TB"] + "?done=delete", "csv-export"},
		captureTerm{"TS", "serial://" + line.Agent + "?baud=9600", "epson-tm-escpos"},
		captureTerm{"TT", "tcp-listen://" + tcpAddr, "epson-tm-escpos"},
	)
	ag := startAgent(t, dir, store, cfg)
	waitPortsOpen(t, ag, line.Agent)

	// Feed every source.
	if err := os.WriteFile(journal, inputs["TF"], 0o644); err != nil {
		t.Fatal(err)
	}
	exports := map[string]string{"TJ": "export.jsonl", "TC": "export.csv", "TL": "export.csv", "TB": "export.csv"}
	for id, name := range exports {
		tmp := filepath.Join(drops[id], "."+name+".tmp")
		if err := os.WriteFile(tmp, inputs[id], 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(drops[id], name)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(line.Sim, os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for b := inputs["TS"]; len(b) > 0; { // small pieces: numbers split across reads
		n := min(len(b), 13)
		if _, err := f.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	f.Close()
	var conn net.Conn
	eventually(t, 20*time.Second, "the printer tap to listen", func() (err error) {
		conn, err = net.Dial("tcp", tcpAddr)
		return err
	})
	for b := inputs["TT"]; len(b) > 0; {
		n := min(len(b), 777)
		if _, err := conn.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	conn.Close()

	// Everything captured: each source's sentinel at the hub, the exports gone from their drop
	// folders, postings done, quarantine settled.
	eventually(t, 60*time.Second, "every source's sentinel record at the hub", func() error {
		seen := map[string]bool{}
		for _, r := range h.AllRecords(t, store) {
			if strings.HasSuffix(r.Receipt, "999999") {
				seen[r.Terminal] = true
			}
		}
		for _, id := range []string{"TF", "TJ", "TC", "TL", "TB", "TS", "TT"} {
			if !seen[id] {
				return fmt.Errorf("no sentinel of %s yet (have %v)", id, seen)
			}
		}
		for id, name := range exports {
			if _, err := os.Stat(filepath.Join(drops[id], name)); err == nil {
				return fmt.Errorf("%s not processed yet", filepath.Join(drops[id], name))
			}
		}
		return nil
	})
	recs := h.AllRecords(t, store)
	sales := 0
	masked := map[string]int{} // per terminal: records holding a masked number
	for _, r := range recs {
		if r.Kind == "sale" {
			sales++
		}
		b, _ := json.Marshal(r)
		if bytes.Contains(b, []byte("**")) {
			masked[r.Terminal]++
		}
	}
	for _, s := range corpusSources {
		if masked[s.id] < 10 {
			t.Errorf("source %s: only %d records with a masked number reached the hub: did the corpus reach it?", s.id, masked[s.id])
		}
	}
	eventually(t, 60*time.Second, "every sale posted to the flat-file ERP", func() error {
		done, err := h.countPostings(store, "done")
		if err != nil {
			return err
		}
		if done != sales {
			return fmt.Errorf("%d of %d postings done", done, sales)
		}
		return nil
	})
	var quarantined int
	stable := 0
	eventually(t, 30*time.Second, "quarantine exceptions to settle", func() error {
		excs, err := h.exceptions(store, "capture_quarantined")
		if err != nil {
			return err
		}
		if len(excs) == 0 || len(excs) != quarantined {
			quarantined, stable = len(excs), 0
			return fmt.Errorf("%d exceptions", len(excs))
		}
		if stable++; stable < 40 { // ~2 s unchanged (several heartbeats)
			return fmt.Errorf("%d exceptions, settling", len(excs))
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(drops["TB"], "done", "export.csv")); !os.IsNotExist(err) {
		t.Errorf("done=delete kept the export: %v", err)
	}
	ag.Stop(t)
	h.P.Stop(t)
	dbFile := "hub/hub.db"
	if pg != "" {
		// The hub's tables, as text, scanned with the rest.
		dbFile = "pg-dump.sql"
		dump, err := exec.Command("pg_dump", "--data-only", "--schema="+schema, pg).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		if !bytes.Contains(dump, []byte("COPY "+schema+".records")) {
			t.Fatalf("pg_dump of %s has no records table:\n%s", schema, tail(dump, 2000))
		}
		if err := os.WriteFile(filepath.Join(dir, dbFile), dump, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Scan every byte written.
	var files []string
	var total int64
	leaks := map[string][]string{}
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, fmt.Sprintf("%s (%d)", rel, len(b)))
		total += int64(len(b))
		if strings.HasPrefix(rel, "drop-") && strings.Contains(rel, "done"+string(filepath.Separator)) && info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", rel, info.Mode().Perm())
		}
		for _, c := range corpusLeaks(b, cases) {
			key := c.form.name + " via " + c.src.kind
			leaks[key] = append(leaks[key], rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range slices.Sorted(maps.Keys(leaks)) {
		t.Errorf("card number of %s written to %s", k, strings.Join(leaks[k], ", "))
	}
	sort.Strings(files)
	for _, want := range []string{dbFile, "agent-" + store + "/spool.db", "agent-" + store + "/journal.db", "drop-TC/done/export.csv", "drop-TL/done/export.csv", "drop-TJ/done/export.jsonl", "hub.log", "agent-" + store + ".log"} {
		found := false
		for _, f := range files {
			found = found || strings.HasPrefix(f, want+" ")
		}
		if !found {
			t.Errorf("%s not among the scanned files: the scan looked in the wrong place (%v)", want, files)
		}
	}
	outFiles, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(outFiles) == 0 {
		t.Errorf("no ERP outbound file to scan")
	}
	byLayer := map[string][]string{}
	for _, f := range cardForms {
		byLayer[f.layer] = append(byLayer[f.layer], f.name)
	}
	t.Logf("%d forms, %d cases over %d sources, %d records (%d sales posted; masked numbers per source %v), %d quarantined; scanned %d files, %d bytes: %s",
		len(forms), len(cases), len(corpusSources), len(recs), sales, masked, quarantined, len(files), total, strings.Join(files, " "))
	for _, l := range slices.Sorted(maps.Keys(byLayer)) {
		t.Logf("layer %s: %s", l, strings.Join(byLayer[l], ", "))
	}
	checkLogs(t, dir)
}
