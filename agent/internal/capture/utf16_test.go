package capture

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
)

func encodeUTF16(s string, be, bom bool) []byte {
	var out []byte
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xfeff}, units...)
	}
	for _, u := range units {
		if be {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

// TestTextReaderUTF16Offsets: read in pieces of any size, the text let out so far always
// decodes from exactly the file bytes before the offset a restart would resume at.
func TestTextReaderUTF16Offsets(t *testing.T) {
	text := "receipt,description\n1,ＣＡＲＤ ４１１１ 😀 é\n2,MILK\n"
	for _, enc := range []struct{ be, bom bool }{{false, true}, {true, false}, {false, false}, {true, true}} {
		raw := encodeUTF16(text, enc.be, enc.bom)
		path := filepath.Join(t.TempDir(), "x.csv")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		for step := 1; step <= 9; step++ {
			f, err := openText(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !f.enc.utf16 || f.enc.be != enc.be {
				t.Fatalf("%+v: detected %+v", enc, f.enc)
			}
			pos := int64(f.enc.bom)
			var got []byte
			buf := make([]byte, step)
			for {
				piece, n, err := f.read(buf)
				pos += int64(n)
				got = append(got, piece...)
				// Say the last 3 bytes of text are held back, as a line masker would.
				k := max(0, len(got)-3)
				for k > 0 && !utf8Start(got[k]) {
					k--
				}
				end := pos - f.held(got[k:])
				want := string(got[:k])
				if dec := decodeUTF16(raw[f.enc.bom:end], enc.be); dec != want {
					t.Fatalf("%+v step %d: bytes before offset %d decode to %q, let out %q", enc, step, end, dec, want)
				}
				if err != nil {
					break
				}
			}
			f.Close()
			if string(got) != text {
				t.Fatalf("%+v step %d: read %q", enc, step, got)
			}
		}
	}
}

func utf8Start(c byte) bool { return c&0xc0 != 0x80 }

func decodeUTF16(b []byte, be bool) string {
	var units []uint16
	for i := 0; i+1 < len(b); i += 2 {
		if be {
			units = append(units, uint16(b[i])<<8|uint16(b[i+1]))
		} else {
			units = append(units, uint16(b[i+1])<<8|uint16(b[i]))
		}
	}
	return string(utf16.Decode(units))
}

// TestDirReadsUTF16: a UTF-16 export (LE with BOM, BE without) yields the records of its UTF-8
// twin, and a fullwidth card number in it — two bytes per digit, none an ASCII digit — is
// masked in the journal and in done/.
func TestDirReadsUTF16(t *testing.T) {
	p := shippedProfile(t, "csv-export")
	input := string(testdata(t, "csv-export/day/input.csv"))
	card := "ＣＡＲＤ ４１１１ １１１１ １１１１ １１１１"
	input = strings.Replace(input, "MILK 1L", card, 1)
	wantRecs, _ := reference(p, "T1", []byte(input))
	for _, be := range []bool{false, true} {
		dir := t.TempDir()
		e := openEnv(t, t.TempDir())
		if err := os.WriteFile(filepath.Join(dir, "x.csv"), encodeUTF16(input, be, !be), 0o644); err != nil {
			t.Fatal(err)
		}
		runDirUntilTaken(t, &Dir{Path: dir, Masker: pan.New(pan.Options{}), Pipeline: newTestPipeline(e, e.sp, p), Log: slog.New(slog.DiscardHandler), Poll: 20 * time.Millisecond, Settle: -1}, filepath.Join(dir, "x.csv"))
		var keys []string
		for _, r := range e.records(t) {
			keys = append(keys, recKey(r))
		}
		if strings.Join(keys, "\n") != strings.Join(wantRecs, "\n") {
			t.Errorf("big endian %v: captured:\n%s\nwant:\n%s", be, strings.Join(keys, "\n"), strings.Join(wantRecs, "\n"))
		}
		done, err := os.ReadFile(filepath.Join(dir, "done", "x.csv"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(done, []byte("１１１１ １１１１ １１１１")) || !bytes.Contains(done, []byte("ＣＡＲＤ ４１１１ １１")) {
			t.Errorf("big endian %v: done/ file not masked as UTF-8: %q", be, done)
		}
		e.close()
	}
}
