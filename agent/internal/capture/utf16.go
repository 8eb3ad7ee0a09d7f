package capture

import (
	"os"
	"unicode/utf8"
)

// Some back-office programs export UTF-16 text (Windows "Unicode"). A dir:// source reads such a
// file as UTF-8, so that the masker sees its characters (a fullwidth digit is two bytes in
// UTF-16, neither of them an ASCII digit) and the parser its rows.

// textEncoding is how an export file is encoded.
type textEncoding struct {
	utf16 bool
	be    bool // big endian
	bom   int  // bytes of byte order mark at the start
}

// detectEncoding reads the start of f: a UTF-16 byte order mark, or (no mark) NUL bytes in
// every other position of mostly ASCII text, say UTF-16; anything else is read as it is.
func detectEncoding(f *os.File) textEncoding {
	head := make([]byte, 4096)
	n, _ := f.ReadAt(head, 0)
	head = head[:n&^1]
	switch {
	case len(head) >= 2 && head[0] == 0xff && head[1] == 0xfe:
		return textEncoding{utf16: true, bom: 2}
	case len(head) >= 2 && head[0] == 0xfe && head[1] == 0xff:
		return textEncoding{utf16: true, be: true, bom: 2}
	case len(head) < 4:
		return textEncoding{}
	}
	var nul [2]int
	for i, c := range head {
		if c == 0 {
			nul[i%2]++
		}
	}
	half := len(head) / 2
	switch {
	case nul[1] >= half*3/10 && nul[0] <= nul[1]/10:
		return textEncoding{utf16: true}
	case nul[0] >= half*3/10 && nul[1] <= nul[0]/10:
		return textEncoding{utf16: true, be: true}
	}
	return textEncoding{}
}

// utf16Decoder turns UTF-16 bytes, fed in pieces, into UTF-8. A lone surrogate becomes U+FFFD.
type utf16Decoder struct {
	be    bool
	carry []byte // an odd byte, or a high surrogate waiting for its pair
}

func (d *utf16Decoder) unit(b []byte) rune {
	if d.be {
		return rune(b[0])<<8 | rune(b[1])
	}
	return rune(b[1])<<8 | rune(b[0])
}

// decode returns the UTF-8 text of b after what was carried from before.
func (d *utf16Decoder) decode(p []byte) []byte {
	b := append(d.carry, p...)
	out := make([]byte, 0, len(b))
	i := 0
	for i+1 < len(b) {
		u := d.unit(b[i:])
		if u >= 0xd800 && u < 0xdc00 {
			if i+3 >= len(b) {
				break // wait for the low surrogate
			}
			if l := d.unit(b[i+2:]); l >= 0xdc00 && l < 0xe000 {
				out = utf8.AppendRune(out, 0x10000+(u-0xd800)<<10+(l-0xdc00))
				i += 4
				continue
			}
			u = utf8.RuneError
		} else if u >= 0xdc00 && u < 0xe000 {
			u = utf8.RuneError
		}
		out = utf8.AppendRune(out, u)
		i += 2
	}
	d.carry = append(d.carry[:0:0], b[i:]...)
	return out
}

// utf16Size is the number of UTF-16 bytes that decoded to text.
func utf16Size(text []byte) int64 {
	n := int64(0)
	for _, r := range string(text) {
		n += 2
		if r >= 0x10000 {
			n += 2
		}
	}
	return n
}

// textReader reads a file as UTF-8 (see detectEncoding), from offset off in the file's bytes.
type textReader struct {
	f   *os.File
	enc textEncoding
	dec utf16Decoder
}

// openText opens full for reading from file offset off.
func openText(full string, off int64) (*textReader, error) {
	f, err := os.Open(full)
	if err != nil {
		return nil, err
	}
	t := &textReader{f: f, enc: detectEncoding(f)}
	t.dec.be = t.enc.be
	if t.enc.utf16 {
		off = max(off, int64(t.enc.bom))
	}
	if _, err := f.Seek(off, 0); err != nil {
		f.Close()
		return nil, err
	}
	return t, nil
}

// read reads the next piece: the text it decodes to, and how many file bytes it took.
func (t *textReader) read(buf []byte) (text []byte, n int, err error) {
	n, err = t.f.Read(buf)
	if !t.enc.utf16 {
		return buf[:n], n, err
	}
	return t.dec.decode(buf[:n]), n, err
}

// held is how many file bytes the text held back (not yet let out) took, plus what the
// decoder carries.
func (t *textReader) held(text []byte) int64 {
	if !t.enc.utf16 {
		return int64(len(text))
	}
	return utf16Size(text) + int64(len(t.dec.carry))
}

func (t *textReader) Close() error { return t.f.Close() }
