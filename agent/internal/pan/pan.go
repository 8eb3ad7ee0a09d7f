// Package pan masks payment card data in text lines before anything stores them.
//
// A line is scanned for primary account numbers (PANs): runs of 13 to 19 digits that may be
// split into groups by up to 8 separator bytes (space, tab, dash, dot, slash, underscore, comma,
// colon, pipe, in any mix, or one asterisk: "4111.1111.1111.1111", "4111  1111  1111  1111",
// "6011.1111-1111/1117", "4111,1111,1111,1111"), start with a non-zero digit and pass the Luhn
// check. Groups joined by anything but a single space or dash must be grouped as on a card (4+
// digits each, 3+ in the last); across a comma, colon, pipe or asterisk exactly as on a card
// (4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3), so CSV columns and times are not joined. Letters around
// the digits do not matter ("CARD4111111111111111", "4111111111111111EXP"). A PAN is masked in
// place to its first 6 and last 4 digits (or, with LastFourOnly, to its last 4), so column
// layouts survive. Lines holding track 1 or track 2 data (with '=' or, as some readers write
// it, 'D' or 'd' after the PAN, which may be printed in groups; sentinels optional), and lines
// labelled CVV/CVC/CID/PIN that carry a code, are dropped whole (PCI DSS 3.3.1): Mask returns
// an empty line for them. A CVV/PIN label may also be a JSON key ({"cvv":"123"}).
//
// EMV tag dumps (hex, compact or byte by byte, see emv.go): the PAN of tag 5A is masked although
// glued to its tag and length; track 2 equivalent data (tags 57, 9F6B) and track 1 (tag 56)
// drop the line.
//
// Unicode decimal digits (fullwidth "４１１１", Arabic-Indic, …) count as digits, Unicode
// spaces and dashes as separators; a masked non-ASCII digit becomes as many '*' as it has
// bytes, so lines keep their length. NUL bytes are skipped, so UTF-16 text read as bytes
// ("4\x001\x00…") is masked too (digit bytes only; its NULs stay).
//
// Caveats: a PAN is only recognised on group boundaries — digits glued to it without a separator
// ("1234111111111111111") form one run that is checked as a whole (EMV tag 5A excepted). A
// digit run that is not Luhn-valid (barcodes, receipt numbers) is never masked.
//
// Trade-off (false masking): a 13–19-digit run that passes Luhn is masked whatever it is, so
// about 1 in 10 GTIN/EAN-13 item codes ("5562301238360  1  38,11") loses its middle digits; a
// card number missed is worse than a barcode masked. Wider separators could also join a barcode
// with its quantity column ("9655845413754<TAB>4"), a store path ("869/63/7363929/5851") or CSV
// columns ("203285,7650,2612,816") into a Luhn-valid run; the card-grouping rules above keep
// those, so the wider separators mask no more sample lines than single spaces and dashes did.
// Dates, receipt and transaction numbers and amounts ("1.234.567,89") are too short, start with
// 0 or fail Luhn. TestMaskSamplesFalseMasking counts it over every shipped sample (decoded and
// raw) plus testdata/noncard.txt: 6 of 2262 lines, all EAN-13.
// A track 2 'D' separator drops the line only after a Luhn-valid 13–19-digit PAN.
package pan

import (
	"bytes"
	"sync/atomic"
)

// Card is what may be kept of a card number seen in a line.
type Card struct {
	Brand string // visa, mastercard, amex, discover, diners, jcb, unionpay, maestro or unknown
	Last4 string
}

// Result says what Mask did to one line.
type Result struct {
	Masked         int    // PANs masked in the line
	TrackDropped   bool   // the line held track 1/2 data and was dropped
	LabelDropped   bool   // the line was a CVV/CVC/CID/PIN line and was dropped
	Cards          []Card // brand and last 4 of each PAN masked, in order
	DroppedReason  string // "track" or "cvv", empty when the line was kept
	OriginalLength int    // length of the input line
}

// Dropped reports whether the whole line was removed.
func (r Result) Dropped() bool { return r.TrackDropped || r.LabelDropped }

// Changed reports whether the output differs from the input.
func (r Result) Changed() bool { return r.Masked > 0 || r.Dropped() }

// Options configure a Masker.
type Options struct {
	// LastFourOnly masks every digit but the last 4 (the default keeps the first 6 too).
	LastFourOnly bool
}

// Stats are a Masker's running counters.
type Stats struct {
	Lines        int64 // lines scanned
	PANsMasked   int64
	TrackDropped int64
	LabelDropped int64
}

// Masker masks lines and counts what it did. It is safe for concurrent use.
type Masker struct {
	opts                                Options
	lines, masked, trackDrop, labelDrop atomic.Int64
}

// New returns a Masker with the given options.
func New(opts Options) *Masker { return &Masker{opts: opts} }

// Stats returns a snapshot of the counters.
func (m *Masker) Stats() Stats {
	return Stats{Lines: m.lines.Load(), PANsMasked: m.masked.Load(), TrackDropped: m.trackDrop.Load(), LabelDropped: m.labelDrop.Load()}
}

var defaultMasker = New(Options{})

// Mask masks line with the default options (first 6 + last 4 kept). See Masker.Mask.
func Mask(line []byte) (out []byte, res Result) { return defaultMasker.Mask(line) }

// DefaultStats returns the counters of the masker behind the package-level Mask.
func DefaultStats() Stats { return defaultMasker.Stats() }

// Mask returns line with card data masked. When nothing needs masking, out is line itself (no
// copy); otherwise out is a new slice and line is not modified. A dropped line yields an empty,
// non-nil out.
func (m *Masker) Mask(line []byte) (out []byte, res Result) {
	m.lines.Add(1)
	if view, spans := asciiView(line); view != nil {
		vm, res := m.mask(view)
		res.OriginalLength = len(line)
		if res.Dropped() || !res.Changed() {
			if !res.Dropped() {
				vm = line
			}
			return vm, res
		}
		return unview(line, vm, spans), res
	}
	return m.mask(line)
}

// mask masks an ASCII-digit line (see Mask).
func (m *Masker) mask(line []byte) (out []byte, res Result) {
	res.OriginalLength = len(line)
	digits := 0
	for _, c := range line {
		if c-'0' <= 9 {
			digits++
		}
	}
	var hv *hexLine // the EMV hex view of line, computed once for both EMV checks
	if digits >= 12 {
		hv = newHexLine(line)
		defer hv.release() // after the masking below, which uses its positions
	}
	if digits >= 12 && hasTrackDataHex(line, hv) {
		m.trackDrop.Add(1)
		res.TrackDropped, res.DroppedReason = true, "track"
		return []byte{}, res
	}
	if digits >= 3 && hasSensitiveLabel(line) {
		m.labelDrop.Add(1)
		res.LabelDropped, res.DroppedReason = true, "cvv"
		return []byte{}, res
	}
	if digits < 13 {
		return line, res
	}
	out = line
	// EMV tag 5A: the PAN's digits are glued to the tag and length (see emvPANsHex).
	if ps := emvPANsHex(hv); len(ps) > 0 {
		out = bytes.Clone(line)
		for _, p := range ps {
			res.Cards = append(res.Cards, m.maskDigits(out, p))
			res.Masked++
		}
	}
	// Masking can join the kept last 4 digits with later groups into a new candidate, so
	// repeat until a pass finds nothing; each pass masks at least 3 digits, so this ends.
	for {
		next, n := m.maskPass(out, &res)
		if n == 0 {
			break
		}
		res.Masked += n
		out = next
	}
	m.masked.Add(int64(res.Masked))
	return out, res
}

// maskPass masks every PAN found in one scan and returns how many it masked.
func (m *Masker) maskPass(line []byte, res *Result) ([]byte, int) {
	n := 0
	var out []byte
	var buf [32]int
	var gbuf [8]int
	var wbuf [8]join
	i := 0
	for i < len(line) {
		if !isDigit(line[i]) {
			i++
			continue
		}
		// Collect a run: digit groups separated by short separator runs (see sepRun).
		digs := buf[:0]        // byte positions of the run's digits
		groupStart := gbuf[:0] // indexes into digs where a group starts
		groupStart = append(groupStart, 0)
		wide := append(wbuf[:0], joinNarrow) // wide[g]: how group g is joined to the one before (see join)
		j := i
		for j < len(line) {
			if isDigit(line[j]) {
				digs = append(digs, j)
				j++
				continue
			}
			if n := sepRun(line[j:]); n > 0 && len(digs) > 0 {
				groupStart = append(groupStart, len(digs))
				wide = append(wide, joinKind(line[j:j+n]))
				j += n
				continue
			}
			break
		}
		if len(digs) >= 13 {
			// Search the run once, left to right: after a PAN, continue with the next group.
			src := line
			if out != nil {
				src = out
			}
			gi := 0
			for {
				a, b, ok := findPAN(src, digs, groupStart[gi:], wide[gi:])
				if !ok {
					break
				}
				if out == nil {
					out = bytes.Clone(line)
					src = out
				}
				res.Cards = append(res.Cards, m.maskDigits(out, digs[a:b]))
				n++
				for gi < len(groupStart) && groupStart[gi] < b {
					gi++
				}
				if gi == len(groupStart) {
					break
				}
			}
		}
		i = j
	}
	if out == nil {
		return line, 0
	}
	return out, n
}

// findPAN returns the digit index range [a,b) of the first, longest PAN in the run, aligned to
// group boundaries. A candidate that joins groups across a wide separator (see cardGroups) must
// be grouped like a card number.
func findPAN(line []byte, digs []int, groupStart []int, wide []join) (int, int, bool) {
	for gi, a := range groupStart {
		if line[digs[a]] == '0' {
			continue
		}
		best := -1
		for gj := gi + 1; gj <= len(groupStart); gj++ {
			b := len(digs)
			if gj < len(groupStart) {
				b = groupStart[gj]
			}
			if b <= a {
				continue
			}
			if b-a > 19 {
				break
			}
			if b-a >= 13 && cardGroups(groupStart[gi:gj], wide[gi:gj], b) && luhnAt(line, digs[a:b]) {
				best = b
			}
		}
		if best > 0 {
			return a, best, true
		}
	}
	return 0, 0, false
}

// join is how two digit groups are joined.
type join uint8

const (
	joinNarrow join = iota // one space or dash
	joinWide               // tab, dot, slash, underscore or a run of separators
	joinField              // a comma, colon, pipe or asterisk: a field or column separator
)

// joinKind classifies the separator run sep.
func joinKind(sep []byte) join {
	k := joinNarrow
	for _, c := range sep {
		switch c {
		case ',', ':', '|', '*':
			return joinField
		case ' ', '-':
			if len(sep) > 1 {
				k = joinWide
			}
		default:
			k = joinWide
		}
	}
	return k
}

// cardLayouts are the digit groupings printed on cards: 4-4-4-4, Amex 4-6-5, Diners 4-6-4,
// 19 digits 4-4-4-4-3.
var cardLayouts = [][]int{{4, 4, 4, 4}, {4, 6, 5}, {4, 6, 4}, {4, 4, 4, 4, 3}}

// cardGroups reports whether the groups starting at starts (digit indexes; the last group ends
// at end) may form a card number. Groups joined by single spaces or dashes always may, as
// before. Once a wider separator (tab, dot, slash, underscore, a run) joins them, every group
// must hold at least 4 digits, the last at least 3 — the groupings printed on cards (4-4-4-4,
// 4-6-5, 4-6-4, 4-4-4-4-3) — so that a barcode and its quantity column ("4006381333931\t2") or
// a "869/63/7363929/5851" store path are not read as one number. Across a field separator
// (comma, colon, pipe, asterisk) the groups must be exactly one of cardLayouts, so that CSV
// columns ("203285,7650,2612,816") and times are not read as one number.
func cardGroups(starts []int, wide []join, end int) bool {
	kind := joinNarrow
	for g := 1; g < len(starts); g++ {
		kind = max(kind, wide[g])
	}
	if kind == joinNarrow {
		return true
	}
	size := func(g int) int {
		if g+1 < len(starts) {
			return starts[g+1] - starts[g]
		}
		return end - starts[g]
	}
	if kind == joinField {
	layouts:
		for _, l := range cardLayouts {
			if len(l) != len(starts) {
				continue
			}
			for g, n := range l {
				if size(g) != n {
					continue layouts
				}
			}
			return true
		}
		return false
	}
	for g := range starts {
		least := 4
		if g+1 == len(starts) {
			least = 3
		}
		if size(g) < least {
			return false
		}
	}
	return true
}

func luhnAt(line []byte, pos []int) bool {
	sum := 0
	double := false
	for k := len(pos) - 1; k >= 0; k-- {
		d := int(line[pos[k]] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// Luhn reports whether the decimal digit string s passes the Luhn check. Non-digits make it false.
func Luhn(s string) bool {
	if s == "" {
		return false
	}
	sum := 0
	double := false
	for k := len(s) - 1; k >= 0; k-- {
		if !isDigit(s[k]) {
			return false
		}
		d := int(s[k] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func (m *Masker) maskDigits(out []byte, pos []int) Card {
	var digits [19]byte
	for k, p := range pos {
		digits[k] = out[p]
	}
	ds := string(digits[:len(pos)])
	card := Card{Brand: Brand(ds), Last4: ds[len(ds)-4:]}
	keepHead := 6
	if m.opts.LastFourOnly {
		keepHead = 0
	}
	for k, p := range pos {
		if k >= keepHead && k < len(pos)-4 {
			out[p] = '*'
		}
	}
	return card
}

func isDigit(c byte) bool { return c-'0' <= 9 }

// maxSep is the longest run of separator bytes that still joins two digit groups; such a long
// run (a column gap) is wide, so the groups must be card-grouped (see cardGroups).
const maxSep = 8

// isSep reports whether c may separate the digit groups of a card number.
func isSep(c byte) bool {
	switch c {
	case ' ', '-', '.', '/', '_', '\t', ',', ':', '|', '*':
		return true
	}
	return false
}

// isEscapedSep reports whether b starts with a JSON or C escape of a tab, line break or slash
// ("\t", "\n", "\r", "\/"): what a JSON string holds for "4111<TAB>1111…" is "4111\t1111…".
func isEscapedSep(b []byte) bool {
	return len(b) >= 2 && b[0] == '\\' && (b[1] == 't' || b[1] == 'n' || b[1] == 'r' || b[1] == 'f' || b[1] == 'b' || b[1] == '/')
}

// sepRun returns the length of the separator run (1..maxSep bytes of space, tab, dash, dot,
// slash, underscore, comma, colon or pipe, or a JSON escape of a tab, line break or slash, in any
// mix, or one asterisk) at the start of b when
// a digit follows it, else 0. An asterisk joins only alone: masked digits ("411111******1111")
// are not separators.
func sepRun(b []byte) int {
	n, star := 0, false
	for n < len(b) && n < maxSep {
		if isSep(b[n]) {
			star = star || b[n] == '*'
			n++
		} else if isEscapedSep(b[n:]) {
			n += 2
		} else {
			break
		}
	}
	if n == 0 || n >= len(b) || !isDigit(b[n]) || (star && n > 1) {
		return 0
	}
	return n
}

// Brand names the card scheme of a PAN from its issuer identification number.
func Brand(pan string) string {
	p := func(n int) int {
		v := 0
		for k := 0; k < n && k < len(pan); k++ {
			v = v*10 + int(pan[k]-'0')
		}
		return v
	}
	if len(pan) < 6 {
		return "unknown"
	}
	switch {
	case pan[0] == '4':
		return "visa"
	case p(2) >= 51 && p(2) <= 55, p(4) >= 2221 && p(4) <= 2720:
		return "mastercard"
	case p(2) == 34 || p(2) == 37:
		return "amex"
	case p(4) == 6011, p(3) >= 644 && p(3) <= 649, p(2) == 65, p(6) >= 622126 && p(6) <= 622925:
		return "discover"
	case p(4) >= 3528 && p(4) <= 3589:
		return "jcb"
	case p(3) >= 300 && p(3) <= 305, p(2) == 36, p(2) == 38, p(2) == 39:
		return "diners"
	case p(2) == 62:
		return "unionpay"
	case p(2) == 50, p(2) >= 56 && p(2) <= 58, p(2) == 63, p(2) == 67:
		return "maestro"
	}
	return "unknown"
}

// hasTrackDataHex reports whether line holds track 1 (%B<pan>^name^YYMM…) or track 2
// (;<pan>=YYMM…? or ;<pan>DYYMM…?, 'D' or 'd') data; sentinels are optional, so "<pan>=YYMM",
// "<pan>DYYMM" and "B<pan>^" count too, and the account number may be printed in groups
// ("B4111 1111 1111 1111^…"). EMV tag dumps of track data (tags 57, 9F6B, 56) count too;
// hv is line's hex view if already computed (nil: computed here when needed).
func hasTrackDataHex(line []byte, hv *hexLine) bool {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c != '=' && c != '^' && c != 'D' && c != 'd' {
			continue
		}
		// The digits before the separator, in groups joined by single spaces or dashes.
		k, nd := i, 0
		var digits [19]byte
		for k > 0 && nd <= 19 {
			if isDigit(line[k-1]) {
				if nd < len(digits) {
					digits[len(digits)-1-nd] = line[k-1]
				}
				nd++
				k--
				continue
			}
			if nd > 0 && k > 1 && (line[k-1] == ' ' || line[k-1] == '-') && isDigit(line[k-2]) {
				k--
				continue
			}
			break
		}
		if nd < 12 || nd > 19 {
			continue
		}
		acct := string(digits[len(digits)-nd:])
		if (c == 'D' || c == 'd') && (nd < 13 || acct[0] == '0' || !Luhn(acct)) {
			// track 2 as some readers emit it, 'D' for '=': only after a Luhn-valid PAN, so
			// that hex and part codes such as "1234567890123D4567" are kept.
			continue
		}
		if c != '^' {
			// track 2: at least 4 digits (expiry) after the separator
			d := 0
			for e := i + 1; e < len(line) && isDigit(line[e]); e++ {
				d++
			}
			if d >= 4 {
				return true
			}
			continue
		}
		// track 1: B<pan>^ or a second '^' followed by 4 digits
		if k > 0 && (line[k-1] == 'B' || line[k-1] == 'b') {
			return true
		}
		if e := bytes.IndexByte(line[i+1:], '^'); e >= 0 {
			rest := line[i+1+e+1:]
			if len(rest) >= 4 && isDigit(rest[0]) && isDigit(rest[1]) && isDigit(rest[2]) && isDigit(rest[3]) {
				return true
			}
		}
	}
	if hv == nil {
		hv = newHexLine(line)
		defer hv.release()
	}
	return emvTrackHex(hv)
}

var sensitiveLabels = [][]byte{[]byte("CVV2"), []byte("CVC2"), []byte("CVV"), []byte("CVC"), []byte("CID"), []byte("CVN"), []byte("CAV2"), []byte("PIN")}

// hasSensitiveLabel reports whether line is labelled with a card security code or PIN and carries
// a value of 3 or more digits/hex characters that is not a money amount. "PIN VERIFIED" and a
// report's "CID $168.64" (cash in drawer) are kept.
func hasSensitiveLabel(line []byte) bool {
	for i := 0; i < len(line); i++ {
		if c := line[i] | 0x20; c != 'c' && c != 'p' {
			continue // every label starts with C or P (labelAt checks it too; this skips the loop)
		}
		for _, lab := range sensitiveLabels {
			if labelAt(line, i, lab) && sensitiveValue(line[i+len(lab):]) {
				return true
			}
		}
	}
	return false
}

// labelAt reports whether line holds the label lab as a word at i.
func labelAt(line []byte, i int, lab []byte) bool {
	if c := line[i] | 0x20; c != 'c' && c != 'p' {
		return false // every label starts with C or P
	}
	if i > 0 && isAlnum(line[i-1]) {
		return false
	}
	if len(line)-i < len(lab) || !equalFoldASCII(line[i:i+len(lab)], lab) {
		return false
	}
	rest := line[i+len(lab):]
	return len(rest) == 0 || !isAlnum(rest[0]) // not part of a longer word (PINEAPPLE, CIDER)
}

// LastLabel returns the offset in line of its last CVV/CVC/CID/PIN label, or -1. A source that
// must cut a long line in pieces keeps the text from there on: a later piece is to be masked as
// if it followed that text, so that a code after the cut still drops the line (see Mask).
func LastLabel(line []byte) int {
	for i := len(line) - 1; i >= 0; i-- {
		for _, lab := range sensitiveLabels {
			if labelAt(line, i, lab) {
				return i
			}
		}
	}
	return -1
}

// LabelPrefix reports whether word (letters) is a label or the beginning of one, ignoring case:
// a cut just after it could separate a label's letters.
func LabelPrefix(word []byte) bool {
	for _, lab := range sensitiveLabels {
		if len(word) <= len(lab) && equalFoldASCII(word, lab[:len(word)]) {
			return true
		}
	}
	return false
}

// sensitiveValue reports whether rest (the text after a label) holds a code: a token of 3..12
// digits, or a 16-character hex PIN block with digits in it. Tokens that look like money ($,
// decimal point) do not count, so "PIN VERIFIED" and a report's "CID $168.64" are kept. In a
// JSON or quoted CSV line the labelled value ends at the next '"': `"CVV2 123","amount":1` holds
// a code although its token runs on into the next field. A label that is a JSON key
// (`{"cvv":"123"}`, `"pin": 1234,`) labels the value after its ':' (or '='), which ends at
// '"', ',' or '}'.
func sensitiveValue(rest []byte) bool {
	if v, ok := keyValue(rest); ok && hasCode(v) {
		return true
	}
	if i := bytes.IndexByte(rest, '"'); i >= 0 && hasCode(rest[:i]) {
		return true
	}
	return hasCode(rest)
}

// keyValue returns the value after a label that closes a quoted key: rest is `":"123"}` or
// `" = 123,…`. ok is false when rest does not start that way.
func keyValue(rest []byte) (value []byte, ok bool) {
	if len(rest) == 0 || rest[0] != '"' {
		return nil, false
	}
	v := bytes.TrimLeft(rest[1:], " \t")
	if len(v) == 0 || (v[0] != ':' && v[0] != '=') {
		return nil, false
	}
	v = bytes.TrimLeft(v[1:], " \t")
	v = bytes.TrimPrefix(v, []byte{'"'})
	if i := bytes.IndexAny(v, `",}`); i >= 0 {
		v = v[:i]
	}
	return v, true
}

// hasCode reports whether text holds a token that is a card security code or PIN block.
func hasCode(text []byte) bool {
	for _, tok := range bytes.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' || r == ':' || r == '=' || r == '#' }) {
		digits, hex := 0, 0
		other := false
		for _, c := range tok {
			switch {
			case isDigit(c):
				digits++
				hex++
			case (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'):
				hex++
			default:
				other = true
			}
		}
		if other {
			continue
		}
		if digits == len(tok) && digits >= 3 && digits <= 12 {
			return true
		}
		if hex == len(tok) && hex == 16 && digits > 0 {
			return true
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

func equalFoldASCII(a, b []byte) bool {
	for i := range a {
		x, y := a[i], b[i]
		if x >= 'a' && x <= 'z' {
			x -= 32
		}
		if y >= 'a' && y <= 'z' {
			y -= 32
		}
		if x != y {
			return false
		}
	}
	return true
}
