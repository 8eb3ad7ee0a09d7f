package capture

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
)

// TestLineMaskerPANSplitByCommands: a card number broken up by printer formatting commands is
// still masked in the raw bytes, in ESC/POS and Star Line styles.
func TestLineMaskerPANSplitByCommands(t *testing.T) {
	digits := []string{"4111111111111111", "5500000000000004", "378282246310005", "6011111111111117"}
	splits := []struct {
		name string
		cmd  string
	}{
		{"escpos bold on ASCII arg", "\x1bE1"},
		{"escpos bold on binary arg", "\x1bE\x01"},
		{"escpos underline", "\x1b-\x01"},
		{"gs size", "\x1d!\x11"},
		{"star bold no arg", "\x1bE"},
		{"two commands", "\x1bE\x01\x1b-\x01"},
	}
	for _, d := range digits {
		for _, sp := range splits {
			for cut := 1; cut < len(d); cut += 5 {
				raw := "CARD " + d[:cut] + sp.cmd + d[cut:] + " APPROVED\n"
				l := &LineMasker{M: pan.New(pan.Options{})}
				out := l.Write([]byte(raw))
				// Strip the command bytes the way a printer would and look for the number.
				printed := string(out)
				for _, c := range []string{"\x1bE1", "\x1bE\x01", "\x1b-\x01", "\x1d!\x11", "\x1bE"} {
					printed = strings.ReplaceAll(printed, c, "")
				}
				if strings.Contains(printed, d) || strings.Contains(string(out), d) {
					t.Errorf("%s, cut %d: %q leaks the card number: %q", sp.name, cut, raw, out)
				}
				if !bytes.Contains(out, []byte("APPROVED")) || len(out) != len(raw) {
					t.Errorf("%s, cut %d: line damaged: %q -> %q", sp.name, cut, raw, out)
				}
			}
		}
	}
	// A digit run that is not a card number is left alone even with commands around it.
	l := &LineMasker{M: pan.New(pan.Options{})}
	in := "RECEIPT 0001\x1bE\x0123456789\n"
	if out := append(l.Write([]byte(in)), l.Flush()...); string(out) != in {
		t.Errorf("non-PAN digits changed: %q -> %q", in, out)
	}
}

// TestLineMaskerPANSplitOverLines: a card number printed over two lines ("…4111 1111" LF
// "1111 1111…"), with CR LF, blank lines, printer commands and any read boundaries, is masked
// on both lines; a barcode line followed by a quantity line is not.
func TestLineMaskerPANSplitOverLines(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"lf", "ACCT 4111 1111\n1111 1111 OK\n"},
		{"crlf blank line", "ACCT 4111 1111\r\n\r\n  1111 1111\r\nTOTAL 5.00\r\n"},
		{"epson lfcr commands", "CARD \x1bE\x014111 1111 1111\x1bE\x00\n\r\x1b!\x001111   APPROVED\n\r"},
		{"glued", "PAN4111111111\n111111\n"},
		{"three lines", "4111\n1111 1111\n1111\n"},
	} {
		for step := 1; step <= len(tc.in); step++ {
			out := maskInSteps(tc.in, step)
			if len(out) != len(tc.in) {
				t.Fatalf("%s step %d: length %d, want %d: %q", tc.name, step, len(out), len(tc.in), out)
			}
			var digits []byte
			for _, c := range out {
				if isDigit(c) {
					digits = append(digits, c)
				}
			}
			if bytes.Contains(digits, []byte("4111111111111111")) {
				t.Fatalf("%s step %d: %q leaks the card number: %q", tc.name, step, tc.in, out)
			}
		}
	}
	for _, in := range []string{"4006381333931\n4 x 1.00\n", "TOTAL 1234\n5678 ITEMS\n", "12.50\n4111 1111 1111 111\n"} {
		l := &LineMasker{M: pan.New(pan.Options{})}
		if out := append(l.Write([]byte(in)), l.Flush()...); string(out) != in {
			t.Errorf("%q masked: %q", in, out)
		}
	}
}

// maskInSteps masks in through a fresh LineMasker, written step bytes at a time, then flushed.
func maskInSteps(in string, step int) []byte {
	l := &LineMasker{M: pan.New(pan.Options{})}
	var out []byte
	for b := []byte(in); len(b) > 0; {
		n := min(step, len(b))
		out = append(out, l.Write(b[:n])...)
		b = b[n:]
	}
	return append(out, l.Flush()...)
}

// TestLineMaskerSamplesFalseMasking: over every shipped sample stream and text (raw ESC/POS
// and Star captures, decoded goldens, profile inputs, the pan package's non-card lines), the
// stream layer (lines joined across breaks, printed views, barcode and QR payloads) masks no
// line that the line masker alone keeps: the false masking measured in the pan package (EAN-13
// codes that pass Luhn) is all there is.
func TestLineMaskerSamplesFalseMasking(t *testing.T) {
	lines, changed := 0, 0
	for _, root := range []string{"../escpos/testdata", "../profile/testdata", "../pan/testdata"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.Contains(path, "fuzz") {
				return err
			}
			in, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out := maskInSteps(string(in), 61)
			il, ol := bytes.Split(in, []byte{'\n'}), bytes.Split(out, []byte{'\n'})
			if len(il) != len(ol) {
				t.Fatalf("%s: %d lines became %d", path, len(il), len(ol))
			}
			lines += len(il)
			for i := range il {
				if bytes.Equal(il[i], ol[i]) {
					continue
				}
				changed++
				if _, res := pan.Mask(il[i]); !res.Changed() && !bytes.ContainsAny(il[i], "\r\x1b\x1d") {
					t.Errorf("%s:%d: masked by the stream layer only: %q -> %q", path, i+1, il[i], ol[i])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d sample lines, %d changed", lines, changed)
	if lines < 1000 || changed > 6 {
		t.Errorf("%d sample lines, %d changed: want the samples there and at most the 6 EAN-13 lines of the pan package", lines, changed)
	}
}

// TestLineMaskerIdleLetsHeldLineOut: a complete line held for a number that might go on is let
// out by an idle flush, whatever it holds ('=' and '^' keep a partial line from being cut).
func TestLineMaskerIdleLetsHeldLineOut(t *testing.T) {
	l := &LineMasker{M: pan.New(pan.Options{})}
	in := "GT = 125478\n\r"
	if out := l.Write([]byte(in)); len(out) != 0 {
		t.Fatalf("a line ending with a digit was let out before the next one: %q", out)
	}
	if out := l.FlushIdle(); string(out) != in || l.Pending() {
		t.Fatalf("idle flush let out %q (pending %v), want %q", out, l.Pending(), in)
	}
}
