package capture

import (
	"bytes"
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
	if out := l.Write([]byte(in)); string(out) != in {
		t.Errorf("non-PAN digits changed: %q -> %q", in, out)
	}
}
