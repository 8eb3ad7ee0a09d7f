package escpos

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// render writes events in a stable text form for golden files.
func render(evs []Event, st Stats) string {
	var b strings.Builder
	for _, e := range evs {
		switch e.Kind {
		case EventLine:
			mark := "|"
			if e.Detail != "" {
				mark = "|!" // mojibake
			}
			fmt.Fprintf(&b, "%s %s\n", mark, e.Text)
		default:
			fmt.Fprintf(&b, "@%s %s %q\n", e.Kind, e.Detail, e.Text)
		}
	}
	fmt.Fprintf(&b, "# commands=%d unknown=%d lines=%d skipped=%d bad_code_pages=%d bad_charsets=%d overlaps=%d mojibake=%d bad_lines=%d\n",
		st.Commands, st.Unknown, st.Lines, st.Skipped, st.BadCodePages, st.BadCharsets, st.Overlaps, st.Mojibake, st.BadLines)
	return b.String()
}

func decodeAll(t testing.TB, cfg Config, data []byte, chunk int) ([]Event, Stats) {
	t.Helper()
	d, err := NewDecoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	if chunk <= 0 {
		chunk = len(data) + 1
	}
	for i := 0; i < len(data); i += chunk {
		d.Write(data[i:min(i+chunk, len(data))])
		evs = append(evs, d.Events()...)
	}
	d.Flush()
	evs = append(evs, d.Events()...)
	return evs, d.Stats()
}

func TestGolden(t *testing.T) {
	cases := []struct {
		file string
		cfg  Config
	}{
		{"escpos-php/barcode.bin", Config{}},
		{"escpos-php/character-encodings.bin", Config{}},
		{"escpos-php/demo.bin", Config{}},
		{"escpos-php/margins-and-spacing.bin", Config{}},
		{"escpos-php/qr-code.bin", Config{}},
		{"escpos-php/receipt-with-logo.bin", Config{}},
		{"escpos-php/text-size.bin", Config{}},
		{"generated/rpe-sale-card.bin", Config{LineEnd: LineEndLFCR}},
		{"generated/rpe-return.bin", Config{LineEnd: LineEndLFCR}},
		{"generated/rpe-void.bin", Config{LineEnd: LineEndLFCR}},
		{"generated/rpe-nosale.bin", Config{LineEnd: LineEndLFCR}},
		{"generated/rpe-zreport.bin", Config{LineEnd: LineEndLFCR}},
		{"generated/rpe-sale-cash-star-line.bin", Config{Dialect: DialectStarLine, LineEnd: LineEndLFCR}},
		{"handmade/positioned-de.bin", Config{}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			evs, st := decodeAll(t, tc.cfg, data, 0)
			if st.Unknown != 0 {
				t.Errorf("%s: %d unknown commands", tc.file, st.Unknown)
			}
			got := render(evs, st)
			golden := filepath.Join("testdata", strings.TrimSuffix(tc.file, ".bin")+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("decoded %s differs from %s:\n%s", tc.file, golden, got)
			}
			// Every chunking decodes identically.
			for _, chunk := range []int{1, 2, 3, 7, 64} {
				evs2, st2 := decodeAll(t, tc.cfg, data, chunk)
				if got2 := render(evs2, st2); got2 != got {
					t.Errorf("chunk %d: output differs", chunk)
				}
			}
		})
	}
}

func TestEvents(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		in   string
		want string
	}{
		{"lf", Config{}, "A\nB\n", "| A\n| B\n"},
		{"crlf", Config{LineEnd: LineEndCRLF}, "A\r\nB\r\n", "| A\n| B\n"},
		{"lfcr blank", Config{LineEnd: LineEndLFCR}, "A\n\r\n\rB\n\r", "| A\n| \n| B\n"},
		{"cr", Config{LineEnd: LineEndCR}, "A\rB\r\n", "| A\n| B\n"},
		{"any pairs", Config{LineEnd: LineEndAny}, "A\r\nB\n\rC\rD\n", "| A\n| B\n| C\n| D\n"},
		{"init cut drawer", Config{}, "\x1b@X\n\x1dVA\x03\x1bp\x00\x19\xfa", "@init  \"\"\n| X\n@cut full \"\"\n@drawer 2 \"\"\n"},
		{"partial cut no arg", Config{}, "Y\x1dV\x01", "| Y\n@cut partial \"\"\n"},
		{"barcode form A", Config{}, "\x1dk\x02012345678905\x00T\n", "@barcode EAN13 \"012345678905\"\n| T\n"},
		{"barcode form B", Config{}, "\x1dkI\x08{B000123T\n", "@barcode CODE128 \"{B000123\"\n| T\n"},
		{"qr", Config{}, "\x1d(k\x04\x001A2\x00\x1d(k\x08\x001P0hello\x1d(k\x03\x001Q0", "@code2d qr \"hello\"\n"},
		{"raster skipped", Config{}, "\x1dv0\x00\x02\x00\x02\x00\n\nAAOK\n", "| OK\n"},
		{"esc star skipped", Config{}, "\x1b*\x21\x02\x00\n\n\n\nAAOK\n", "| OK\n"},
		{"gs ( L skipped", Config{}, "\x1d(L\x04\x000p\n\nOK\n", "| OK\n"},
		{"gs 8 L skipped", Config{}, "\x1d8L\x03\x00\x00\x000p\nOK\n", "| OK\n"},
		{"user chars skipped", Config{}, "\x1b&\x03\x41\x42\x01\n\n\n\x02\n\n\n\n\n\nOK\n", "| OK\n"},
		{"tabs", Config{}, "\x1bD\x08\x10\x00OK\n", "| OK\n"},
		{"code page 858", Config{}, "\x1bt\x13\xd5\n\x1b@\xd5\n", "| €\n@init  \"\"\n| ╒\n"},
		{"code page 1252", Config{}, "\x1bt\x10\x80\xe9\n", "| €é\n"},
		{"code page 850", Config{CodePage: "CP850"}, "\x82\x9b\n", "| éø\n"},
		{"form feed", Config{}, "A\x0cB\n", "| A\n@form_feed  \"\"\n| B\n"},
		{"feed ends line", Config{}, "ABC\x1bd\x07DEF\x1be\x03GHI\n", "| ABC\n| DEF\n| GHI\n"},
		{"star cut drawer", Config{Dialect: DialectStarLine}, "\x1b@\x18\x1bEBOLD\x1bF\n\x1bd\x00\x1b\x07\x14\x14\x07", "@init  \"\"\n| BOLD\n@cut full \"\"\n@drawer 1 \"\"\n"},
		{"star code page", Config{Dialect: DialectStarLine}, "\x1b\x1dt\x01\xc4\xc4\n\x1b\x1dt\x20\x80\n", "| ──\n| €\n"},
		{"star barcode", Config{Dialect: DialectStarLine}, "\x1bb6\x01\x02\x5012345\x1eX\n", "@barcode CODE128 \"12345\"\n| X\n"},
		{"plain ignores esc", Config{Dialect: DialectPlain, CodePage: "UTF-8"}, "a\x1bb\xc3\xa9\n", "|! abé\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{0, 1} {
				evs, st := decodeAll(t, tt.cfg, []byte(tt.in), chunk)
				got := render(evs, st)
				got = got[:strings.LastIndex(got[:len(got)-1], "\n")+1]
				if got != tt.want {
					t.Errorf("chunk %d: decode(%q) =\n%s\nwant\n%s", chunk, tt.in, got, tt.want)
				}
			}
		})
	}
}

func TestUnknownCounted(t *testing.T) {
	_, st := decodeAll(t, Config{}, []byte("\x1b\xff\x00AB\n"), 0)
	if st.Unknown != 1 {
		t.Fatalf("unknown = %d, want 1", st.Unknown)
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Dialect: "zpl"}, {LineEnd: "lflf"}, {CodePage: "CP999"}} {
		if _, err := NewDecoder(cfg); err == nil {
			t.Errorf("NewDecoder(%+v) = nil error", cfg)
		}
	}
}

func FuzzDecoder(f *testing.F) {
	for _, name := range []string{"escpos-php/qr-code.bin", "escpos-php/barcode.bin", "generated/rpe-sale-card.bin", "generated/rpe-sale-cash-star-line.bin", "escpos-php/margins-and-spacing.bin"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint16(7), uint8(0))
	}
	f.Add([]byte("\x1b&\x03\x41\x42\x01\n\n\n"), uint16(3), uint8(0))
	f.Add([]byte("\x1bD\x05\x0a\x00A\tB\x1b$\x30\x00C\x1b\\\xf4\xffD\x1bR\x02[\x1bt\x01\xb1\n"), uint16(5), uint8(0))
	f.Add([]byte("\x1b*rA\x1b*rQ2\x00b\x03\x00\x07\x1a\n\x1b*rB\x1b\x1dS\x01\x01\x00\x01\x00\x00\x07OK\n"), uint16(9), uint8(1))
	f.Add([]byte("\xb0\xa1\x81\x30\x81\x30\x1c.\x80\x1c&\xa4\n\xff\xff\x83"), uint16(2), uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, split uint16, mode uint8) {
		cfgs := []Config{{}, {Dialect: DialectStarLine, LineEnd: LineEndLFCR}, {Dialect: DialectPlain, LineEnd: LineEndAny}, {LineEnd: LineEndAny, MaxLine: 16, MaxData: 8},
			{MultiByte: "gb18030", MaxLine: 32}, {MultiByte: "shift_jis", KanjiOff: true}, {MultiByte: "big5", Dialect: DialectPlain}}
		cfg := cfgs[int(mode)%len(cfgs)]
		whole, st := decodeAll(t, cfg, data, 0)
		if st.Bytes != int64(len(data)) {
			t.Fatalf("bytes = %d, want %d", st.Bytes, len(data))
		}
		// Split at one point and at every byte: same events.
		d, _ := NewDecoder(cfg)
		s := int(split) % (len(data) + 1)
		d.Write(data[:s])
		d.Write(data[s:])
		d.Flush()
		a := render(whole, st)
		if b := render(d.Events(), d.Stats()); a != b {
			t.Fatalf("split at %d differs:\n%s\nvs\n%s", s, a, b)
		}
		if c := render(decodeAll(t, cfg, data, 1)); a != c {
			t.Fatalf("byte-by-byte differs")
		}
		// Bounded output: a line never exceeds MaxLine (plus one character), positioning cannot
		// blow one byte up into more than a line's worth of spaces, and the events stay in
		// proportion to the input.
		maxLine := cfg.MaxLine
		if maxLine <= 0 {
			maxLine = 4096
		}
		total := 0
		for _, e := range whole {
			if e.Kind == EventLine && len(e.Text) > maxLine+4 {
				t.Fatalf("line of %d bytes, MaxLine %d", len(e.Text), maxLine)
			}
			total += len(e.Text) + len(e.Detail)
		}
		if len(whole) > len(data)+1 {
			t.Fatalf("%d events from %d bytes", len(whole), len(data))
		}
		if limit := 300 * (len(data) + 1); total > limit {
			t.Fatalf("%d bytes of output from %d input bytes", total, len(data))
		}
	})
}

func benchData(b *testing.B) []byte {
	data, err := os.ReadFile("testdata/escpos-php/demo.bin")
	if err != nil {
		b.Fatal(err)
	}
	r, _ := os.ReadFile("testdata/generated/rpe-sale-card.bin")
	return append(bytes.Repeat(r, 100), data...)
}

// BenchmarkDecode decodes demo.bin plus 100 receipts; compare with BenchmarkCopy for the ratio.
func BenchmarkDecode(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		d, _ := NewDecoder(Config{})
		for i := 0; i < len(data); i += 4096 {
			d.Write(data[i:min(i+4096, len(data))])
			d.Events()
		}
	}
}

// BenchmarkCopy is the baseline: a plain bytes.Buffer copy of the same input in the same chunks.
func BenchmarkCopy(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		for i := 0; i < len(data); i += 4096 {
			buf.Write(data[i:min(i+4096, len(data))])
		}
	}
}
