package capture

import "bytes"

// Barcode and QR payloads inside an ESC/POS stream are printed as symbols a scanner (or a
// person with a phone) reads back, so card data in them is masked too. Their bytes follow a
// length or run to a NUL, not to a line end: a length byte or QR header may glue a digit to the
// number ("GS ( k … 1 P 0" then "4111…"), a CODE128 code set C payload holds two digits per byte
// ("{C" 41 11 11 …), and a payload may contain LF or CR bytes. maskPayloads masks each payload
// on its own, in the buffer, before lines are split.

// maxPayload bounds a NUL-terminated (GS k form A) barcode payload.
const maxPayload = 255

// maxSymbol bounds the data of a 2D symbol (a QR code holds at most 7089 digits); a longer
// length is not read as one (raster image bytes that look like the command).
const maxSymbol = 7089 + 3

// payload is one barcode or 2D symbol's data in a buffer: b[start:end]; done is false when the
// buffer ends before the data does.
type payload struct {
	cmd, start, end int // cmd: where the command starts
	done            bool
}

// nextPayload finds the first barcode (GS k; Star ESC b) or QR/2D store-data (GS ( k … fn 'P';
// Star ESC GS y D) payload in b at or after from.
func nextPayload(b []byte, from int) (payload, bool) {
	for i := from; i+1 < len(b); i++ {
		if b[i] == 0x1b {
			if p, ok := starPayload(b, i); ok {
				return p, true
			}
			continue
		}
		if b[i] != 0x1d {
			continue
		}
		switch {
		case b[i+1] == 'k':
			if i+2 >= len(b) {
				return payload{cmd: i, start: i, end: len(b)}, true
			}
			if m := b[i+2]; m <= 6 {
				// form A: data up to NUL
				s := i + 3
				e := bytes.IndexByte(b[s:min(len(b), s+maxPayload+1)], 0)
				if e < 0 {
					return payload{cmd: i, start: s, end: min(len(b), s+maxPayload), done: len(b) > s+maxPayload}, true
				}
				return payload{cmd: i, start: s, end: s + e, done: true}, true
			}
			if i+3 >= len(b) {
				return payload{cmd: i, start: i, end: len(b)}, true
			}
			s := i + 4
			e := s + int(b[i+3])
			return payload{cmd: i, start: s, end: min(e, len(b)), done: e <= len(b)}, true
		case b[i+1] == '(':
			if i+7 >= len(b) {
				if i+2 < len(b) && b[i+2] != 'k' {
					continue
				}
				return payload{cmd: i, start: i, end: len(b)}, true
			}
			if b[i+2] != 'k' || b[i+6] != 'P' {
				continue // not 2D symbol data (settings, print)
			}
			n := int(b[i+3]) | int(b[i+4])<<8
			s, e := i+8, i+5+n
			if e < s || n > maxSymbol {
				continue
			}
			return payload{cmd: i, start: s, end: min(e, len(b)), done: e <= len(b)}, true
		}
	}
	return payload{}, false
}

// starPayload returns the Star Line barcode (ESC b n1 n2 n3 n4 d… RS) or QR (ESC GS y D 1 m nL
// nH d…) payload whose command starts at b[i] (ESC), if it is one.
func starPayload(b []byte, i int) (payload, bool) {
	switch {
	case b[i+1] == 'b':
		s := i + 6
		if s > len(b) {
			return payload{cmd: i, start: i, end: len(b)}, true
		}
		e := bytes.IndexByte(b[s:min(len(b), s+maxPayload+1)], 0x1e)
		if e < 0 {
			return payload{cmd: i, start: s, end: min(len(b), s+maxPayload), done: len(b) > s+maxPayload}, true
		}
		return payload{cmd: i, start: s, end: s + e, done: true}, true
	case b[i+1] == 0x1d:
		if i+3 >= len(b) {
			return payload{cmd: i, start: i, end: len(b)}, i+2 >= len(b) || b[i+2] == 'y'
		}
		if b[i+2] != 'y' || b[i+3] != 'D' {
			return payload{}, false
		}
		if i+8 > len(b) {
			return payload{cmd: i, start: i, end: len(b)}, true
		}
		n := int(b[i+6]) | int(b[i+7])<<8
		if n > maxSymbol {
			return payload{}, false
		}
		s, e := i+8, i+8+n
		return payload{cmd: i, start: s, end: min(e, len(b)), done: e <= len(b)}, true
	}
	return payload{}, false
}

// maskPayloads masks, in place, the card data in every complete payload of l.buf from
// l.scanned on, and returns where an incomplete payload starts (len(l.buf) if none): nothing
// from there on may be let out before it is complete, unless final.
func (l *LineMasker) maskPayloads(final bool) int {
	for {
		p, ok := nextPayload(l.buf, l.scanned)
		if !ok {
			l.scanned = max(l.scanned, len(l.buf)-1)
			return len(l.buf)
		}
		if !p.done && !final {
			return p.cmd
		}
		data := l.buf[p.start:p.end]
		if bytes.HasPrefix(data, []byte("{C")) {
			maskCodeC(l, data[2:])
		}
		m, res := l.M.Mask(data)
		switch {
		case res.Dropped():
			// Track data or a code in a symbol: nothing of it is kept.
			for k := range data {
				data[k] = '*'
			}
		case res.Changed():
			copy(data, m)
		}
		if res.Changed() && l.Count != nil {
			l.Count.Add(1)
		}
		l.scanned = p.end
	}
}

// maskCodeC masks a CODE128 code set C payload: each byte 0..99 is two digits.
func maskCodeC(l *LineMasker, data []byte) {
	digits := make([]byte, 0, 2*len(data))
	for _, c := range data {
		if c > 99 {
			break
		}
		digits = append(digits, '0'+c/10, '0'+c%10)
	}
	m, res := l.M.Mask(digits)
	if !res.Changed() {
		return
	}
	for k := 0; k < len(digits)/2; k++ {
		if res.Dropped() || m[2*k] == '*' || m[2*k+1] == '*' {
			data[k] = '*'
		}
	}
	if l.Count != nil {
		l.Count.Add(1)
	}
}
