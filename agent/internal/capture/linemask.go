package capture

import (
	"bytes"
	"sync/atomic"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
)

// maxMaskLine bounds the bytes held back waiting for a line terminator (raster images carry
// long runs without LF). Longer input is cut where no PAN can span the cut.
const maxMaskLine = 8 << 10

// panSpan is more than the longest PAN with separators (19 digits + 18 spaces or dashes).
const panSpan = 40

// LineMasker masks card data in a byte stream line by line before anything stores it: a PAN
// can be split across reads, so bytes are held until a line terminator (LF or CR), an idle
// flush or maxMaskLine. Masking keeps lengths (digits become '*'); a line holding track data or
// a CVV/PIN value is removed whole and only its terminator is kept.
//
// Not safe for concurrent use; the Masker it uses is.
type LineMasker struct {
	M     *pan.Masker
	Count *atomic.Uint64 // optional: incremented per line masked or removed (metrics)
	buf   []byte
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
			m, res := l.M.Mask(line)
			if res.Changed() && l.Count != nil {
				l.Count.Add(1)
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
