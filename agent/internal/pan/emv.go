package pan

import "sync"

// EMV tag dumps print chip data as hex, compact ("5A084111111111111111") or byte by byte
// ("5A 08 41 11 11 11 11 11 11 11", "5A:08:41:…"). The PAN (tag 5A) is BCD, so its digits are
// the hex digits themselves, glued to the tag and length before them: emvView finds them where
// the digit-group scan cannot. Track 2 equivalent data (tags 57 and 9F6B: PAN, 'D', expiry,
// service code, discretionary data) and track 1 data (tag 56) drop the line like track data.

// hexView returns the hex digits of line with the single spaces, colons and dashes between
// them removed, and each one's offset in line; any other byte ends a segment and stands as '.'.
func hexView(line []byte, view []byte, pos []int) ([]byte, []int) {
	view, pos = view[:0], pos[:0]
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case isHex(c):
			view, pos = append(view, c), append(pos, i)
		case (c == ' ' || c == ':' || c == '-') && i > 0 && i+1 < len(line) && isHex(line[i-1]) && isHex(line[i+1]):
		default:
			if len(view) > 0 && view[len(view)-1] != '.' {
				view, pos = append(view, '.'), append(pos, i)
			}
		}
	}
	return view, pos
}

func isHex(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

func hexVal(c byte) int {
	if isDigit(c) {
		return int(c - '0')
	}
	return int(c|0x20-'a') + 10
}

// tlv returns the value (hex digits) of a TLV item with tag at view[i:] (tag hex, one length
// byte), or nil. A dump cut short (the value ends before its length) yields what is there.
func tlv(view []byte, i int, tag string) []byte {
	if i+len(tag)+2 > len(view) || !equalFoldASCII(view[i:i+len(tag)], []byte(tag)) {
		return nil
	}
	j := i + len(tag)
	if !isHex(view[j]) || !isHex(view[j+1]) {
		return nil
	}
	n := 2 * (hexVal(view[j])<<4 | hexVal(view[j+1]))
	j += 2
	v := view[j:min(j+n, len(view))]
	for k, c := range v {
		if c == '.' {
			return v[:k]
		}
	}
	return v
}

// bcdPAN returns the length of the Luhn-valid 13–19-digit PAN at the start of v, a BCD value
// that ends there or continues with a pad 'F' or a track 2 'D' (sep), or 0.
func bcdPAN(v []byte, sep byte) int {
	n := 0
	for n < len(v) && isDigit(v[n]) {
		n++
	}
	if n < 13 || n > 19 || v[0] == '0' || !Luhn(string(v[:n])) {
		return 0
	}
	if n < len(v) && v[n]|0x20 != sep|0x20 && v[n]|0x20 != 'f' {
		return 0
	}
	return n
}

// hexLine is a line's hex view (see hexView), computed once for emvTrack and emvPANs.
type hexLine struct {
	view []byte
	pos  []int
}

// hexLines recycles the views' buffers: every line with 12 digits or more needs one.
var hexLines = sync.Pool{New: func() any { return new(hexLine) }}

func newHexLine(line []byte) *hexLine {
	h := hexLines.Get().(*hexLine)
	if cap(h.view) < len(line) {
		h.view, h.pos = make([]byte, 0, len(line)), make([]int, 0, len(line))
	}
	h.view, h.pos = hexView(line, h.view, h.pos)
	return h
}

// release returns h's buffers for reuse; nothing may hold its view or positions after.
func (h *hexLine) release() {
	if h == nil || cap(h.view) > 64<<10 {
		return // keep no long line's buffers
	}
	hexLines.Put(h)
}

// emvPANsHex returns the offsets in line of the digits of each PAN in a tag 5A item.
func emvPANsHex(hv *hexLine) [][]int {
	view, pos := hv.view, hv.pos
	var out [][]int
	for i := 0; i+4 < len(view); i++ {
		if view[i] != '5' {
			continue // not the tag (tlv checks it too)
		}
		if v := tlv(view, i, "5A"); v != nil {
			if n := bcdPAN(v, 'f'); n > 0 {
				start := i + 4
				out = append(out, pos[start:start+n])
				i = start + n - 1
			}
		}
	}
	return out
}

// emvTrackHex reports whether line holds an EMV track 2 equivalent (tag 57 or 9F6B: a PAN then
// 'D') or track 1 item (tag 56, ASCII hex "B<digits>…").
func emvTrackHex(hv *hexLine) bool {
	view := hv.view
	for i := 0; i+4 < len(view); i++ {
		if view[i] != '5' && view[i] != '9' {
			continue // every tag checked here starts with 5 or 9 (tlv checks it too)
		}
		for _, tag := range []string{"57", "9F6B"} {
			if v := tlv(view, i, tag); v != nil {
				if n := bcdPAN(v, 'd'); n > 0 && n < len(v) && v[n]|0x20 == 'd' {
					return true
				}
			}
		}
		if v := tlv(view, i, "56"); len(v) >= 2*14 && equalFoldASCII(v[:2], []byte("42")) {
			digits := 0
			for k := 2; k+1 < len(v) && v[k] == '3' && isDigit(v[k+1]); k += 2 {
				digits++
			}
			if digits >= 12 {
				return true
			}
		}
	}
	return false
}
