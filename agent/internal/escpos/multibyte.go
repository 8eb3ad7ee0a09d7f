package escpos

import (
	"fmt"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// Multi-byte text ("Kanji mode" in Epson's terms): printers sold in China, Taiwan, Japan and
// Korea decode two-byte (GB18030: also four-byte) characters while Kanji mode is on. FS & turns
// it on, FS . off; ESC @ restores the configured initial state. Which encoding the printer uses
// is a property of the model, so the profile says it (decoding.multibyte).

// MultiByteNames lists the accepted Config.MultiByte values.
var MultiByteNames = []string{"gb18030", "gbk", "big5", "shift_jis", "euc-kr"}

type mbCodec struct {
	name string
	enc  encoding.Encoding
	// need returns the length of the character that starts with lead byte b (1 = single byte)
	// and, for GB18030, looks at the second byte.
	need func(buf []byte) int
}

func lookupMultiByte(name string) (*mbCodec, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.ReplaceAll(n, "_", "-")
	two81 := func(buf []byte) int {
		if buf[0] >= 0x81 && buf[0] <= 0xFE {
			return 2
		}
		return 1
	}
	switch n {
	case "", "none":
		return nil, nil
	case "gb18030":
		return &mbCodec{"gb18030", simplifiedchinese.GB18030, func(buf []byte) int {
			if buf[0] < 0x81 || buf[0] == 0xFF {
				return 1
			}
			if len(buf) < 2 {
				return 2
			}
			if buf[1] >= 0x30 && buf[1] <= 0x39 {
				return 4
			}
			return 2
		}}, nil
	case "gbk", "gb2312", "cp936":
		return &mbCodec{"gbk", simplifiedchinese.GBK, two81}, nil
	case "big5", "cp950":
		return &mbCodec{"big5", traditionalchinese.Big5, two81}, nil
	case "shift-jis", "sjis", "cp932":
		return &mbCodec{"shift_jis", japanese.ShiftJIS, func(buf []byte) int {
			b := buf[0]
			if (b >= 0x81 && b <= 0x9F) || (b >= 0xE0 && b <= 0xFC) {
				return 2
			}
			return 1
		}}, nil
	case "euc-kr", "cp949", "ks-c-5601":
		return &mbCodec{"euc-kr", korean.EUCKR, two81}, nil
	}
	return nil, fmt.Errorf("unknown multi-byte encoding %q (want one of %s, or none)", name, strings.Join(MultiByteNames, ", "))
}

// mbByte adds one byte of multi-byte text; it decodes a character once complete.
func (d *Decoder) mbByte(c byte) {
	d.mbBuf = append(d.mbBuf, c)
	need := d.mb.need(d.mbBuf)
	if len(d.mbBuf) < need {
		return
	}
	d.mbFlush()
}

// mbFlush decodes the pending bytes (a complete character, or a truncated one that becomes
// U+FFFD and is counted as mojibake).
func (d *Decoder) mbFlush() {
	if len(d.mbBuf) == 0 {
		return
	}
	buf := d.mbBuf
	d.mbBuf = d.mbBuf[:0]
	if len(buf) == 1 && buf[0] < 0x80 {
		d.textChar(rune(buf[0]), 1)
		return
	}
	if len(buf) < d.mb.need(buf) {
		d.textChar('\uFFFD', 1)
		return
	}
	out, err := d.mbDec.Bytes(buf)
	if err != nil || len(out) == 0 {
		d.textChar('\uFFFD', 1)
		return
	}
	cells := 2
	if len(buf) == 1 {
		cells = 1 // Shift_JIS half-width katakana, single-byte extras
	}
	s := string(out)
	first := true
	for _, r := range s {
		if first {
			d.textChar(r, cells)
			first = false
		} else {
			d.textChar(r, 0)
		}
	}
}
