package capture

import (
	"bytes"
	"sync/atomic"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

// maxMaskLine bounds the bytes held back waiting for a line terminator (raster images carry
// long runs without LF). Longer input is cut where no PAN can span the cut.
const maxMaskLine = 8 << 10

// panSpan is more than the longest PAN with separators (19 digits + 18 spaces or dashes).
const panSpan = 40

// LineMasker masks card data in a byte stream line by line before anything stores it: a PAN
// can be split across reads, so bytes are held until a line terminator (LF or CR), an idle
// flush or maxMaskLine. Masking keeps lengths (digits become '*'; only Prepare may shorten a
// line); a line holding track data or a CVV/PIN value is removed whole and only its terminator
// is kept.
//
// Not safe for concurrent use; the Masker it uses is.
type LineMasker struct {
	M     *pan.Masker
	Count *atomic.Uint64 // optional: incremented per line masked or removed (metrics)
	// Prepare, if set, rewrites each line before it is masked (profile.Profile.PrepareLine:
	// canonical JSON escapes written out so that no digit is hidden from the masker).
	Prepare func([]byte) []byte
	// Removed, if set, replaces a removed line (profile.Profile.RemovedLine); by default only
	// its terminator is kept.
	Removed []byte
	buf     []byte
}

// newLineMasker returns the masker of a byte-stream source parsed with p.
func newLineMasker(m *pan.Masker, count *atomic.Uint64, p *profile.Profile) *LineMasker {
	return &LineMasker{M: m, Count: count, Prepare: p.PrepareLine, Removed: p.RemovedLine()}
}

// Write takes p (not retained) and returns the masked complete lines, terminators included.
func (l *LineMasker) Write(p []byte) []byte {
	l.buf = append(l.buf, p...)
	end := bytes.LastIndexAny(l.buf, "\n\r") + 1
	if end == 0 && len(l.buf) > maxMaskLine {
		end = safeCut(l.buf)
	}
	if end == 0 {
		return nil
	}
	out := l.mask(l.buf[:end])
	l.buf = append(l.buf[:0], l.buf[end:]...)
	return out
}

// Pending reports whether a partial line is held back.
func (l *LineMasker) Pending() bool { return len(l.buf) > 0 }

// Flush masks and returns the held-back partial line (after an idle gap or at end of input).
func (l *LineMasker) Flush() []byte {
	if len(l.buf) == 0 {
		return nil
	}
	out := l.mask(l.buf)
	l.buf = l.buf[:0]
	return out
}

// mask masks every line of b (which ends at a line boundary or is a flushed partial line).
func (l *LineMasker) mask(b []byte) []byte {
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
			m, changed := l.maskLine(line)
			if changed && l.Count != nil {
				l.Count.Add(1)
			}
			if changed && len(m) == 0 {
				m = l.Removed
			}
			out = append(out, m...)
		}
		out = append(out, term...)
	}
	return out
}

// safeCut returns a cut position in b (len(b) > maxMaskLine) that no PAN spans: just after the
// last byte, at least panSpan bytes from the end, that cannot be part of a PAN. If the last
// stretch is one long run of digits, spaces and dashes, it cuts panSpan bytes before the end of
// the buffer: such a run longer than a PAN is masked as far as the masker recognises it.
func safeCut(b []byte) int {
	for i := len(b) - panSpan; i > 0; i-- {
		c := b[i-1]
		if !(c >= '0' && c <= '9') && c != ' ' && c != '-' {
			return i
		}
	}
	return len(b) - panSpan
}

// maskLine masks one raw line. Printer streams can split a card number with formatting
// commands ("4111 11" ESC E 1 "11 1111 1111"), so a line holding ESC, FS or GS is also scanned
// as the text it prints: once skipping each command byte with one argument byte (ESC/POS
// style commands such as ESC E n) and once skipping the command byte alone (Star Line's
// argument-less ESC E). Digits recognised in either view are masked in the raw bytes. A line
// whose printed text holds track data or a CVV/PIN value is dropped whole.
func (l *LineMasker) maskLine(line []byte) ([]byte, bool) {
	if l.Prepare != nil {
		line = l.Prepare(line)
	}
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
