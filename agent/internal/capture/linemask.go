package capture

import (
	"bytes"
	"sync/atomic"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

// maxMaskLine is the length of a partial line (no LF or CR yet) from which it is cut where no
// card data can span the cut; raster images carry long runs without LF.
const maxMaskLine = 8 << 10

// maxHold bounds the bytes held back when no such cut exists (the parsers' longest line): the
// line is then cut panSpan bytes before its end, on an escape boundary.
const maxHold = 1 << 20

// panSpan is more than the longest PAN with separators (19 digits + 18 spaces or dashes).
const panSpan = 40

// trackSpan is more than the longest track 1 data (79 characters): no cut falls this close after
// a '^' or '=', so that no track data is split from the account number it follows.
const trackSpan = 80

// maxCarry bounds the text after a CVV/PIN label carried from one piece of a cut line to the next.
const maxCarry = 1 << 10

// LineMasker masks card data in a byte stream line by line before anything stores it: a PAN
// can be split across reads, so bytes are held until a line terminator (LF or CR), an idle
// flush or maxMaskLine. Masking keeps lengths (digits become '*'; only Prepare may shorten a
// line); a line holding track data or a CVV/PIN value is removed whole and only its terminator
// is kept.
//
// A partial line is only ever cut (maxMaskLine, FlushIdle) just after a byte that cannot be part
// of a card number, a JSON escape, a label's word, track data or a printer command splitting
// a number (see safeCut); and when a piece that was let out holds a CVV/PIN label, the next
// pieces of its line are masked as if they followed the label, so a code after the cut still
// removes them.
//
// A card number printed over two lines is masked on both (maskAcross): a line that ends with a
// digit is held until the next line is complete, or an idle flush. Barcode and QR payloads
// are masked on their own, whole, before lines are split (maskPayloads).
//
// Not safe for concurrent use; the Masker it uses is.
type LineMasker struct {
	M     *pan.Masker
	Count *atomic.Uint64 // optional: incremented per line masked or removed (metrics)
	// Prepare, if set, rewrites each line before it is masked (profile.Profile.PrepareLine:
	// canonical JSON escapes written out so that no digit is hidden from the masker). If nil,
	// a line holding JSON \u escapes is masked both as it is and with them written out
	// (profile.UnescapeJSON), and the written-out view is kept when that one needed masking.
	Prepare func([]byte) []byte
	// Removed, if set, replaces a removed line (profile.Profile.RemovedLine); by default only
	// its terminator is kept.
	Removed []byte
	buf     []byte
	carry   []byte // prepared text from the last label of the current line's pieces let out
	prev    []byte // printed tail of the last line let out, unmasked, when it ends with a digit
	scanned int    // l.buf is scanned for barcode and QR payloads up to here (maskPayloads)
}

// newLineMasker returns the masker of a byte-stream source parsed with p.
func newLineMasker(m *pan.Masker, count *atomic.Uint64, p *profile.Profile) *LineMasker {
	return &LineMasker{M: m, Count: count, Prepare: p.PrepareLine, Removed: p.RemovedLine()}
}

// Write takes p (not retained) and returns the masked complete lines, terminators included.
func (l *LineMasker) Write(p []byte) []byte {
	l.buf = append(l.buf, p...)
	end := bytes.LastIndexAny(l.buf, "\n\r") + 1
	if end > 0 && len(l.buf)-end < maxMaskLine {
		// A number can go on on the next printed line: hold a last line that ends with a
		// digit until the next one is complete (or an idle flush).
		le := len(bytes.TrimRight(l.buf[:end], "\n\r"))
		ls := bytes.LastIndexAny(l.buf[:le], "\n\r") + 1
		if le > ls && endsWithDigit(l.buf[ls:le]) {
			end = ls
		}
	}
	if end == 0 && len(l.buf) > maxMaskLine {
		end = safeCut(l.buf, panSpan)
		if end == 0 && len(l.buf) > maxHold {
			end = escapeBoundary(l.buf, len(l.buf)-panSpan)
		}
	}
	return l.emit(l.beforePayload(end, len(l.buf) > maxHold))
}

// beforePayload masks the barcode and QR payloads held and returns end, or, when an incomplete
// payload starts before end, the start of its line: a payload is let out only whole.
func (l *LineMasker) beforePayload(end int, final bool) int {
	if hold := l.maskPayloads(final); hold < end {
		return bytes.LastIndexAny(l.buf[:hold], "\n\r") + 1
	}
	return end
}

// Pending reports whether a partial line is held back.
func (l *LineMasker) Pending() bool { return len(l.buf) > 0 }

// Flush masks and returns the held-back partial line (at end of input).
func (l *LineMasker) Flush() []byte { return l.emit(l.beforePayload(len(l.buf), true)) }

// FlushIdle masks and returns, after an idle gap, every complete line held back (a number on
// its last line is then masked without the next one) and as much of a partial line as can be
// let out: up to the last point no card data can span (see safeCut). The rest stays held until
// more bytes or Flush.
func (l *LineMasker) FlushIdle() []byte {
	// Complete lines go out whole (one held for a number continuing on the next one too);
	// of a partial line, what no card data can span.
	end := max(bytes.LastIndexAny(l.buf, "\n\r")+1, safeCut(l.buf, 0))
	return l.emit(l.beforePayload(end, false))
}

// emit masks and returns l.buf[:end] and keeps the rest.
func (l *LineMasker) emit(end int) []byte {
	if end == 0 {
		return nil
	}
	out := l.mask(l.buf[:end], l.buf[end:])
	l.buf = append(l.buf[:0], l.buf[end:]...)
	l.scanned = max(0, l.scanned-end)
	return out
}

// mask masks every line of b (which ends at a line boundary or is a piece of a partial line);
// rest is the input held back after b.
func (l *LineMasker) mask(b, rest []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\n\r")
		line, term := b, []byte(nil)
		if i >= 0 {
			line, term = b[:i], b[i:i+1]
			b = b[i+1:]
		} else {
			b = nil
		}
		if len(line) > 0 {
			m, changed := l.maskPiece(line, term == nil)
			if term != nil && len(m) > 0 {
				next := bytes.TrimLeft(b, "\n\r")
				if len(next) == 0 {
					next = bytes.TrimLeft(rest, "\n\r")
				}
				m, changed = l.maskAcross(line, m, changed, next)
			} else {
				l.prev = l.prev[:0]
			}
			if changed && l.Count != nil {
				l.Count.Add(1)
			}
			if changed && len(m) == 0 {
				m = l.Removed
			}
			out = append(out, m...)
		}
		if term != nil {
			l.carry = l.carry[:0]
		}
		out = append(out, term...)
	}
	return out
}

// maskPiece masks line, which continues the pieces of its line let out before (l.carry) and,
// if partial, is continued by later ones.
func (l *LineMasker) maskPiece(line []byte, partial bool) ([]byte, bool) {
	prepared := l.prepare(line)
	if len(l.carry) > 0 {
		if _, res := l.M.Mask(append(l.carry, prepared...)); res.LabelDropped {
			l.carry = l.carry[:0]
			return []byte{}, true
		}
	}
	m, changed := l.maskLine(line)
	if partial {
		l.keepCarry(prepared)
	}
	return m, changed
}

// keepCarry keeps the text from the last label of the current line's pieces on.
func (l *LineMasker) keepCarry(prepared []byte) {
	text := append(l.carry, prepared...)
	i := pan.LastLabel(text)
	if i < 0 {
		l.carry = l.carry[:0]
		return
	}
	text = text[i:]
	if len(text) > maxCarry {
		// The label word, then the latest text: a code token after the cut still counts.
		n := len(text) - maxCarry/2
		text = append(append(text[:0:0], text[:8]...), append([]byte{' '}, text[n:]...)...)
	}
	l.carry = append([]byte(nil), text...)
}

// lineSpan bounds the printed text taken from the line before and after one that a card
// number may continue from or onto.
const lineSpan = 48

// maskAcross masks in m (line, masked on its own) the digits of a card number that a person
// reads across the line break: printed on the end of the line before (l.prev) and the start of
// this one, or on the end of this one and the start of next ("4111 1111" LF "1111 1111").
// The line break joins like a tab, so the groups must be card-grouped (pan: 4+ digits each). It
// then keeps this line's printed tail in l.prev for the next line.
func (l *LineMasker) maskAcross(line, m []byte, changed bool, next []byte) ([]byte, bool) {
	if l.Prepare != nil {
		line = l.Prepare(line) // as long as m
	}
	if len(line) != len(m) {
		l.prev = l.prev[:0]
		return m, changed
	}
	view, pos := printedView(line, 1)
	prev := l.prev
	if len(prev) > 0 && !startsWithDigit(view) {
		prev = nil
	}
	nv, _ := printedView(next[:min(len(next), lineSpan)], 1)
	if i := bytes.IndexAny(nv, "\n\r"); i >= 0 {
		nv = nv[:i]
	}
	if !endsWithDigit(view) || !startsWithDigit(nv) {
		nv = nil
	}
	if len(prev) > 0 || len(nv) > 0 {
		joined := make([]byte, 0, len(prev)+len(view)+len(nv)+2)
		joined = append(append(joined, prev...), '\t')
		off := len(joined)
		joined = append(append(append(joined, view...), '\t'), nv...)
		if vm, res := l.M.Mask(joined); res.Masked > 0 {
			for k := range view {
				if vm[off+k] == '*' && view[k] != '*' && m[pos[k]] != '*' {
					if !changed {
						m = append([]byte(nil), m...) // never write into the caller's bytes
					}
					m[pos[k]], changed = '*', true
				}
			}
		}
	}
	l.prev = l.prev[:0]
	if endsWithDigit(view) {
		t := bytes.TrimRight(view, " \t")
		l.prev = append(l.prev, t[max(0, len(t)-lineSpan):]...)
	}
	return m, changed
}

// endsWithDigit reports whether the printed text of line ends with a digit (trailing spaces
// aside); startsWithDigit whether it starts with one (leading spaces aside).
func endsWithDigit(line []byte) bool {
	v, _ := printedView(line, 1)
	v = bytes.TrimRight(v, " \t")
	return len(v) > 0 && isDigit(v[len(v)-1])
}

func startsWithDigit(v []byte) bool {
	v = bytes.TrimLeft(v, " \t")
	return len(v) > 0 && isDigit(v[0])
}

// safeCut returns the last position in b at least tail bytes before its end that a cut may
// fall on, or 0: just after a byte that is not a digit, space, dash, backslash, '=' or '^', nor
// non-ASCII (a Unicode digit or space), nor a NUL after one of those (UTF-16 text); not inside a JSON escape (which could spell a digit);
// not after the letters of a word that begins a CVV/PIN label; not within trackSpan bytes after
// a '^' or '=' (track data); and not within 3 bytes after a printer command (ESC, FS, GS) that
// follows a digit or separator, which could split a printed card number.
func safeCut(b []byte, tail int) int {
	limit := len(b) - tail
	best := 0
	track := -trackSpan - 1 // position of the last '^' or '='
	cmd := -4               // position of the last command following a digit or separator
	word := 0               // start of the current run of letters and digits
	for i := 0; i < limit; {
		c := b[i]
		n := 1
		if c == '\\' {
			switch {
			case i+1 >= len(b):
				return best // an escape cut short: never cut inside
			case b[i+1] == 'u' && i+6 > len(b):
				return best
			case b[i+1] == 'u' && isHex4(b[i+2:i+6]):
				n = 6
			default:
				n = 2
			}
		}
		if i+n > limit {
			break
		}
		switch c {
		case '^', '=':
			track = i
		case 0x1b, 0x1c, 0x1d:
			if i > 0 && (isDigit(b[i-1]) || b[i-1] == ' ' || b[i-1] == '-') && !endsPaper(b[i:]) {
				cmd = i
			}
		}
		if !isAlnum(c) {
			word = i + 1
		}
		i += n
		if n == 2 && c == '\\' && b[i-1] != 'u' {
			// \" \\ \n …: a whole escape that spells no digit.
		} else if n > 1 || !cuttable(c) || (c == 0 && i > 1 && !cuttable(b[i-2])) || (isAlnum(c) && pan.LabelPrefix(b[word:i])) {
			continue
		}
		if i-track > trackSpan && i-cmd > 3 {
			best = i
		}
	}
	return best
}

// endsPaper reports whether the command at the start of b cuts the paper or resets the printer
// (GS V, ESC i, ESC m, ESC @): no printed number continues after it.
func endsPaper(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	switch {
	case b[0] == 0x1d:
		return b[1] == 'V'
	case b[0] == 0x1b:
		return b[1] == 'i' || b[1] == 'm' || b[1] == '@'
	}
	return false
}

// cuttable reports whether a cut may follow c (see safeCut).
func cuttable(c byte) bool {
	return c < 0x80 && !isDigit(c) && c != ' ' && c != '-' && c != '\\' && c != '=' && c != '^'
}

// escapeBoundary returns the last position at or before i (i > 0) that is not inside a JSON
// escape of b, for a cut where no safe one exists.
func escapeBoundary(b []byte, i int) int {
	for j := max(0, i-5); j < i; j++ {
		if b[j] == '\\' && j+6 > i {
			return j
		}
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') }

func isHex4(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) && !(c|0x20 >= 'a' && c|0x20 <= 'f') {
			return false
		}
	}
	return len(b) == 4
}

// prepare returns line as it is scanned for labels: Prepare's view, or the line with its JSON
// escapes written out.
func (l *LineMasker) prepare(line []byte) []byte {
	if l.Prepare != nil {
		return l.Prepare(line)
	}
	return profile.UnescapeJSON(line)
}

// maskLine masks one raw line. Printer streams can split a card number with formatting
// commands ("4111 11" ESC E 1 "11 1111 1111"), so a line holding ESC, FS or GS is also scanned
// as the text it prints: once skipping each command byte with one argument byte (ESC/POS
// style commands such as ESC E n) and once skipping the command byte alone (Star Line's
// argument-less ESC E). Digits recognised in either view are masked in the raw bytes. A line
// whose printed text holds track data or a CVV/PIN value is dropped whole.
func (l *LineMasker) maskLine(line []byte) ([]byte, bool) {
	if l.Prepare != nil {
		return l.maskView(l.Prepare(line))
	}
	m, changed := l.maskView(line)
	if bytes.Contains(line, []byte(`\u`)) {
		if vm, vchanged := l.maskView(profile.UnescapeJSON(line)); vchanged {
			return vm, true
		}
	}
	return m, changed
}

// maskView masks line as maskLine describes, after Prepare.
func (l *LineMasker) maskView(line []byte) ([]byte, bool) {
	m, res := l.M.Mask(line)
	if res.Dropped() {
		return m, true
	}
	changed := res.Changed()
	if !bytes.ContainsAny(line, "\x1b\x1c\x1d") {
		return m, changed
	}
	if !changed {
		m = append([]byte(nil), line...) // never write into the caller's bytes
	}
	for _, args := range []int{1, 0} {
		view, pos := printedView(m, args)
		vm, vres := l.M.Mask(view)
		if vres.Dropped() {
			return nil, true
		}
		if vres.Masked == 0 {
			continue
		}
		for i := range view {
			if vm[i] != view[i] {
				m[pos[i]] = vm[i]
			}
		}
		changed = true
	}
	return m, changed
}

// printedView returns the bytes of line that are not ESC/FS/GS commands (each command byte
// followed by a selector byte and args argument bytes is skipped), with each kept byte's
// position in line.
func printedView(line []byte, args int) ([]byte, []int) {
	view := make([]byte, 0, len(line))
	pos := make([]int, 0, len(line))
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case 0x1b, 0x1c, 0x1d:
			i += 1 + args // selector byte and its argument(s)
			continue
		}
		view = append(view, line[i])
		pos = append(pos, i)
	}
	return view, pos
}
