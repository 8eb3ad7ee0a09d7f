package profile_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

// TestTrace checks the rule trace of the shipped Epson profile on its sale golden: every line of
// Raw has an entry, the item line names the item rule, and with tracing off nothing is traced.
func TestTrace(t *testing.T) {
	p := shipped(t)["epson-tm-escpos"]
	input, err := os.ReadFile("testdata/epson-tm-escpos/sale-card/input.bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, on := range []bool{true, false} {
		ps := p.NewParser("")
		ps.(profile.Tracer).SetTrace(on)
		res := append(ps.Feed(input, time.Now()), ps.Close()...)
		if len(res) != 1 || res[0].Record == nil {
			t.Fatalf("tracing %v: results %+v", on, res)
		}
		tr := res[0].Trace
		if !on {
			if tr != nil {
				t.Fatalf("tracing off: trace %v", tr)
			}
			continue
		}
		if n := len(strings.Split(res[0].Raw, "\n")); len(tr) != n {
			t.Fatalf("trace has %d entries, Raw %d lines", len(tr), n)
		}
		rules := map[string]string{}
		for _, lt := range tr {
			rules[strings.TrimSpace(lt.Text)] = lt.Rule
		}
		for text, want := range map[string]string{
			"TOTAL                                 6.73": "(total)",
			"[cut full]": "device event",
			"SALE":       "(ignore)",
		} {
			if got := rules[text]; !strings.Contains(got, want) {
				t.Errorf("line %q: rule %q, want one containing %q (trace %+v)", text, got, want, tr)
			}
		}
	}
}

// TestOutOfOrder: a cut with no transaction open and an init inside one are counted.
func TestOutOfOrder(t *testing.T) {
	p := shipped(t)["epson-tm-escpos"]
	ps := p.NewParser("T1")
	in := []byte("\x1dV\x00" + "\x1b@hello\n" + "\x1b@TRANS 1\n\x1dV\x00")
	ps.Feed(in, time.Now())
	ps.Close()
	if got := ps.Stats().OutOfOrder; got != 2 {
		t.Fatalf("OutOfOrder = %d, want 2 (a stray cut, a restart)", got)
	}
	if ps.Stats().Decoder.Commands == 0 {
		t.Fatalf("decoder stats not reported: %+v", ps.Stats().Decoder)
	}
}
