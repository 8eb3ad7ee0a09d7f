package escpos

import (
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// enc encodes s with e (x/text's encoder: the bytes a POS application would send).
func enc(t *testing.T, e encoding.Encoding, s string) string {
	t.Helper()
	b, err := e.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type decodeCase struct {
	name string
	cfg  Config
	in   string
	want string // rendered events
	stat string // substring of the stats line, when set
}

func runCases(t *testing.T, tests []decodeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{0, 1, 2} {
				evs, st := decodeAll(t, tt.cfg, []byte(tt.in), chunk)
				all := render(evs, st)
				cut := strings.LastIndex(all[:len(all)-1], "\n") + 1
				got, stats := all[:cut], all[cut:]
				if got != tt.want {
					t.Errorf("chunk %d: decode(%q) =\n%s\nwant\n%s", chunk, tt.in, got, tt.want)
				}
				if tt.stat != "" && !strings.Contains(stats, tt.stat) {
					t.Errorf("chunk %d: stats %q lack %q", chunk, stats, tt.stat)
				}
			}
		})
	}
}

func TestPositioning(t *testing.T) {
	// The layout of the collapsed line: quantity at column 0, description at 3,
	// unit price at 26, amount at 33, tax code at 40 (font A, 12 dots a column).
	row := "2\x1b$\x24\x00Brötchen Weizen\x1b$\x38\x01" + "0,45\x1b$\x8c\x01" + "0,90\x1b$\xe0\x01A\n"
	row = strings.ReplaceAll(row, "ö", "\x94") // CP437
	runCases(t, []decodeCase{
		{"esc $ absolute columns", Config{}, row, "| 2  Brötchen Weizen        0,45   0,90   A\n", "overlaps=0"},
		{"esc $ inside a column rounds", Config{}, "A\x1b$\x1d\x00B\n", "| A B\n", ""},                                            // 29 dots: 1.4 cells after A
		{"esc $ leftwards overlap", Config{}, "ABCD\x1b$\x0c\x00X\n", "| ABCD X\n", "overlaps=1"},                                 // back to column 1
		{"esc \\ relative", Config{}, "A\x1b\\\x24\x00B\n", "| A   B\n", ""},                                                      // +36 dots = 3 cells
		{"esc \\ negative", Config{}, "AB\x1b\\\xf4\xffC\n", "| AB C\n", "overlaps=1"},                                            // -12 dots
		{"ht default stops", Config{}, "A\tB\tC\n", "| A       B       C\n", ""},                                                  // every 8 columns
		{"ht esc d stops", Config{}, "\x1bD\x05\x0a\x00A\tB\tC\tD\n", "| A    B    CD\n", ""},                                     // no third stop: HT ignored
		{"esc d clear", Config{}, "\x1bD\x00A\tB\n", "| AB\n", ""},                                                                // no stops: HT ignored
		{"esc d non-ascending ends", Config{}, "\x1bD\x05\x03\x00A\tB\tC\n", "| A    BC\n", ""},                                   // 3 after 5 is not read
		{"esc @ restores tabs", Config{}, "\x1bD\x00\x1b@A\tB\n", "@init  \"\"\n| A       B\n", ""},                               //
		{"font b via esc M", Config{}, "\x1bM\x01A\x1b$\x5a\x00B\n", "| A         B\n", ""},                                       // 90 dots / 9 = 10 columns
		{"font b via esc !", Config{}, "\x1b!\x01A\x1b$\x5a\x00B\n", "| A         B\n", ""},                                       //
		{"double width esc !", Config{}, "\x1b!\x20A\x1b$\x60\x00B\n", "| A   B\n", ""},                                           // 96 dots / 24
		{"double width gs !", Config{}, "\x1d!\x10A\x1b$\x60\x00B\n", "| A   B\n", ""},                                            //
		{"gs ! then esc ! wins", Config{}, "\x1d!\x10\x1b!\x00A\x1b$\x60\x00B\n", "| A       B\n", ""},                            // 96 / 12
		{"right spacing", Config{}, "\x1b \x0cA\x1b$\x60\x00B\n", "| A   B\n", ""},                                                // 12+12 dots a cell
		{"motion unit gs P", Config{}, "\x1dP\x5a\x00A\x1b$\x0c\x00B\n", "| A B\n", ""},                                           // 1/90 inch: 12 units = 24 dots = column 2
		{"tab stops at font width", Config{}, "\x1b!\x20\x1bD\x02\x00\x1b!\x00A\tB\n", "| A   B\n", ""},                           // stop 2 × 24 dots = column 4
		{"line end resets position", Config{}, "ABCDEF\n\x1b$\x18\x00X\n", "| ABCDEF\n|   X\n", ""},                               //
		{"star absolute", Config{Dialect: DialectStarLine}, "A\x1b\x1dA\x30\x00B\n", "| A   B\n", ""},                             //
		{"star tabs", Config{Dialect: DialectStarLine}, "\x1bD\x04\x00A\tB\n", "| A   B\n", ""},                                   //
		{"star expanded width", Config{Dialect: DialectStarLine}, "\x1bW\x01A\x1b\x1dA\x60\x00B\n", "| A   B\n", ""},              // 96 / 24
		{"star esc i width", Config{Dialect: DialectStarLine}, "\x1bi\x00\x01A\x1bi\x00\x00\x1b\x1dA\x30\x00B\n", "| A  B\n", ""}, // A 24 dots, then 48 at 12
		{"star so dc4", Config{Dialect: DialectStarLine}, "\x1b\x0eA\x1b\x14\x1b\x1dA\x30\x00B\n", "| A  B\n", ""},                //
		{"plain keeps tab", Config{Dialect: DialectPlain}, "A\tB\n", "| A\tB\n", ""},                                              //
	})
}

func TestCharsets(t *testing.T) {
	runCases(t, []decodeCase{
		{"esc R germany", Config{}, "\x1bR\x02[\\]{|}~@\n", "| ÄÖÜäöüß§\n", ""},
		{"esc R uk", Config{}, "\x1bR\x03#5\n", "| £5\n", ""},
		{"esc R spain I", Config{}, "\x1bR\x07#\n", "| ₧\n", ""},
		{"esc R japan", Config{}, "\x1bR\x08\\100\n", "| ¥100\n", ""},
		{"esc R korea", Config{}, "\x1bR\x0d\\1000\n", "| ₩1000\n", ""},
		{"esc R sweden", Config{}, "\x1bR\x05$@`\n", "| ¤Éé\n", ""},
		{"esc R back to usa", Config{}, "\x1bR\x02[\x1bR\x00[\n", "| Ä[\n", ""},
		{"esc R reset by init", Config{}, "\x1bR\x02\x1b@[\n", "@init  \"\"\n| [\n", ""},
		{"esc R unknown kept ascii", Config{}, "\x1bR\x63[\n", "| [\n", "bad_charsets=1"},
		{"esc t 1 katakana", Config{}, "\x1bt\x01\xb1\xb2\xb3\n", "| ｱｲｳ\n", ""},
		{"katakana graphics undefined", Config{}, "\x1bt\x01\x80\n", "|! \uFFFD\n", "mojibake=1 bad_lines=1"},
		{"esc t 21 thai", Config{}, "\x1bt\x15\xa1\n", "| ก\n", ""},
		{"esc t 53 rk1048", Config{}, "\x1bt\x35\xa3\n", "| Ә\n", ""},
		{"esc t 30 tcvn", Config{}, "\x1bt\x1e\xa8\n", "| ă\n", ""},
		{"star katakana", Config{Dialect: DialectStarLine}, "\x1b\x1dt\x02\xb1\n", "| ｱ\n", ""},
	})
}

func TestMultiByte(t *testing.T) {
	gb := enc(t, simplifiedchinese.GB18030, "合计 ¥12")
	runCases(t, []decodeCase{
		{"gb18030", Config{MultiByte: "gb18030"}, gb + "\n", "| 合计 ¥12\n", "mojibake=0"},
		{"gb18030 four-byte", Config{MultiByte: "gb18030"}, enc(t, simplifiedchinese.GB18030, "€ᠠ") + "\n", "| €ᠠ\n", ""},
		{"gbk", Config{MultiByte: "gbk"}, enc(t, simplifiedchinese.GBK, "总计") + "\n", "| 总计\n", ""},
		{"big5", Config{MultiByte: "big5"}, enc(t, traditionalchinese.Big5, "合計") + "\n", "| 合計\n", ""},
		{"shift_jis", Config{MultiByte: "shift_jis"}, enc(t, japanese.ShiftJIS, "合計ｺﾞｳｹｲ") + "\n", "| 合計ｺﾞｳｹｲ\n", ""},
		{"shift_jis trail in ascii range", Config{MultiByte: "shift_jis"}, enc(t, japanese.ShiftJIS, "ソ") + "\n", "| ソ\n", ""}, // 83 5C
		{"euc-kr", Config{MultiByte: "euc-kr"}, enc(t, korean.EUCKR, "합계 1,000") + "\n", "| 합계 1,000\n", ""},
		{"fs . turns kanji off", Config{MultiByte: "gb18030"}, "\x1c.\x80\n", "| Ç\n", ""},
		{"fs & turns kanji on", Config{MultiByte: "gb18030", KanjiOff: true}, "\xb0\xa1\x1c&\xb0\xa1\n", "| ░í啊\n", ""},
		{"init restores kanji", Config{MultiByte: "gb18030"}, "\x1c.\x1b@\xb0\xa1\n", "@init  \"\"\n| 啊\n", ""},
		{"wide chars take two columns", Config{MultiByte: "gbk"}, "\xb0\xa1\x1b$\x30\x00X\n", "| 啊  X\n", ""},
		{"truncated by lf", Config{MultiByte: "shift_jis"}, "A\x81\nB\n", "|! A\uFFFD\n| B\n", "mojibake=1 bad_lines=1"},
		{"truncated by command", Config{MultiByte: "big5"}, "\xa4\x1bE\x01X\n", "|! \uFFFDX\n", "mojibake=1"},
		{"invalid pair", Config{MultiByte: "euc-kr"}, "\xff\xff\n", "|! \uFFFD\uFFFD\n", "mojibake=2"},
		{"no multibyte: bytes are cp437", Config{}, "\xb0\xa1\n", "| ░í\n", "mojibake=0"},
		// receiptline (Japanese): FS . then FS C 1, Shift JIS text without FS &.
		{"fs c 1: shift jis whatever fs . says", Config{MultiByte: "shift_jis"}, "\x1c.\x1cC1" + enc(t, japanese.ShiftJIS, "合計") + "\n", "| 合計\n", "mojibake=0"},
		{"fs c 1 before fs .", Config{MultiByte: "shift_jis", KanjiOff: true}, "\x1cC\x01\x1c." + enc(t, japanese.ShiftJIS, "合計") + "\n", "| 合計\n", ""},
		{"fs c 0: jis, kanji mode applies again", Config{MultiByte: "shift_jis"}, "\x1cC1\x1cC0\x1c.\x80\n", "| Ç\n", ""},
		{"fs c 1 without shift_jis changes nothing", Config{MultiByte: "gb18030"}, "\x1c.\x1cC1\x80\n", "| Ç\n", ""},
		{"init ends the shift jis system", Config{MultiByte: "shift_jis", KanjiOff: true}, "\x1cC1\x1b@\x80\n", "@init  \"\"\n| Ç\n", ""},
	})
}

func TestMojibake(t *testing.T) {
	runCases(t, []decodeCase{
		{"stray control bytes", Config{}, "AB\x02\x03C\n", "|! ABC\n", "mojibake=2 bad_lines=1"},
		{"nul is padding", Config{}, "A\x00B\n", "| AB\n", "mojibake=0"},
		{"invalid utf-8", Config{CodePage: "UTF-8"}, "A\xc3\n", "|! A\uFFFD\n", "mojibake=1"},
		{"clean line", Config{}, "ABC\n", "| ABC\n", "bad_lines=0"},
	})
}

func TestStarRaster(t *testing.T) {
	// Raster data full of LF, BEL (drawer 1) and SUB (drawer 2) bytes must not become lines or events.
	img := "\x07\x1a\nAB\n\x07"
	runCases(t, []decodeCase{
		{"raster mode blocks", Config{Dialect: DialectStarLine},
			"\x1b*rR\x1b*rA\x1b*rQ2\x00b\x06\x00" + img + "b\x06\x00" + img + "\x1b\x0c\x00\x1b*rB" + "OK\n",
			"| OK\n", "unknown=0"},
		{"raster mode margin settings", Config{Dialect: DialectStarLine}, "\x1b*rA\x1b*rml3\x00\x1b*rE1\x00b\x01\x00\x07\x1b*rBX\n", "| X\n", "unknown=0"},
		{"raster stray bytes", Config{Dialect: DialectStarLine}, "\x1b*rA\x07zz\n\x1b*rBY\n", "| Y\n", "skipped=4"},
		{"raster init leaves mode", Config{Dialect: DialectStarLine}, "\x1b*rA\x1b@Z\n", "@init  \"\"\n| Z\n", ""},
		{"esc gs S raster", Config{Dialect: DialectStarLine}, "\x1b\x1dS\x01\x02\x00\x03\x00\x00" + "\x07\x1a\nA\n\x07" + "OK\n", "| OK\n", "skipped=6"},
		{"nv logo", Config{Dialect: DialectStarLine}, "\x1b\x1cp\x01\x00OK\n", "| OK\n", "unknown=0"},
		{"unknown counted", Config{Dialect: DialectStarLine}, "\x1b\x99\x01OK\n\x1b\x98\x01\n", "| OK\n| \n", "unknown=2"},
	})
}

func TestBadMultiByte(t *testing.T) {
	_, err := NewDecoder(Config{MultiByte: "utf-16"})
	if err == nil || !strings.Contains(err.Error(), "gb18030") {
		t.Fatalf("err = %v, want a list of valid encodings", err)
	}
}
