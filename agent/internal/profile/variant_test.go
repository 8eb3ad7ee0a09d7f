package profile_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
	firmwareprofiles "github.com/lanebridge/lanebridge/firmware-profiles"
)

// epsonVariant is an unseen variant of the Epson PC-POS layout, made from the golden receipts
// by printing extra words on header lines (COPY, REPRINT) and clerk/manager notes after a
// field. Before the profile declared them (extras), its return, no-sale and Z report were
// quarantined; testdata/epson-tm-escpos/variant-extras/expected.json holds what they parse to.
var epsonVariant = []struct {
	input    string
	old, new string
}{
	{"sale-card", "TRANS 000123\n\r", "TRANS 000123  COPY\n\r"},
	{"return", "RETURN\n\r03/14/2024 14:05  REG01  CLERK 07\n\r", "RETURN  REPRINT\n\r03/14/2024 14:05  REG01  CLERK 07  MGR 12\n\r"},
	{"return", "ORIG TRANS 000101        ", "ORIG TRANS 000101  MGR 12"},
	{"nosale", "NO SALE\n\r", "NO SALE  COPY\n\r"},
	{"nosale", "#/NS\n\r", "#/NS  SUPERVISOR 3\n\r"},
	{"zreport", "Z REPORT  Z 0057", "Z REPORT  Z 0057  REPRINT"},
	{"zreport", "22:01  REG01\n\r", "22:01  REG01  MANAGER 2\n\r"},
}

// TestEpsonVariantFixture keeps variant-extras/input.bin equal to the transformation above of
// the golden inputs (-update rewrites it).
func TestEpsonVariantFixture(t *testing.T) {
	dir := filepath.Join("testdata", "epson-tm-escpos")
	var out []byte
	for _, name := range []string{"sale-card", "return", "nosale", "zreport"} {
		b, err := os.ReadFile(filepath.Join(dir, name, "input.bin"))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range epsonVariant {
			if v.input != name {
				continue
			}
			if bytes.Count(b, []byte(v.old)) != 1 {
				t.Fatalf("%s: %q does not occur exactly once", name, v.old)
			}
			b = bytes.Replace(b, []byte(v.old), []byte(v.new), 1)
		}
		out = append(out, b...)
	}
	path := filepath.Join(dir, "variant-extras", "input.bin")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestEpsonVariantFixture -update)", err)
	}
	if !bytes.Equal(have, out) {
		t.Fatalf("%s is not the variant of the golden inputs (run go test -run TestEpsonVariantFixture -update)", path)
	}
}

// TestEpsonVariantNeedsExtras shows what the extras do: with the rules' extras lists removed
// from the shipped profile, the variant's return, no-sale and Z report are not parsed right
// (quarantined or misread), while with them every transaction is parsed unflagged.
func TestEpsonVariantNeedsExtras(t *testing.T) {
	y, err := firmwareprofiles.FS.ReadFile("epson-tm-escpos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	stripped := regexp.MustCompile(`(?m)^\s+extras: \[[^\]]*\]\n`).ReplaceAll(y, nil)
	if bytes.Equal(stripped, y) {
		t.Fatal("the shipped profile lists no extras")
	}
	input, err := os.ReadFile(filepath.Join("testdata", "epson-tm-escpos", "variant-extras", "input.bin"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := func(p *profile.Profile) []string {
		var out []string
		for _, r := range run(p, input, 0) {
			switch {
			case r.Err != nil:
				out = append(out, "quarantined")
			case len(r.Flags) > 0:
				out = append(out, string(r.Record.Kind)+" flagged")
			default:
				out = append(out, string(r.Record.Kind))
			}
		}
		return out
	}
	with := kinds(shipped(t)["epson-tm-escpos"])
	if want := []string{"sale", "return", "no_sale", "z_report"}; !slices.Equal(with, want) {
		t.Errorf("with extras: %q, want %q", with, want)
	}
	old, err := profile.Load(bytes.NewReader(stripped))
	if err != nil {
		t.Fatal(err)
	}
	without := kinds(old)
	for i, k := range []string{"return", "no_sale", "z_report"} {
		if i+1 < len(without) && without[i+1] == k {
			t.Errorf("without extras the variant's %s still parses: %q (the test does not show what extras do)", k, without)
		}
	}
}

// TestJournalVariantsParseTheSame prints the journals' golden days as a variant would — a
// title after the receipt header or the kind line, a manager's note after it — and checks that
// every transaction parses to the same record as before, unflagged where it was.
func TestJournalVariantsParseTheSame(t *testing.T) {
	tests := []struct {
		profile, input string
		line           *regexp.Regexp
		suffix         []string // appended in turn to the matching lines
	}{
		{"casio-journal", "testdata/casio-journal/day/input.txt", regexp.MustCompile(`(?m)^((?:REG|RF|Z|X)\s+C\d+ \d+|(?:CANCEL|#/NS)\s+\*+)$`), []string{"  COPY", "  MGR 3", " REPRINT MGR 12"}},
		{"sharp-journal", "testdata/sharp-journal/day/input.txt", regexp.MustCompile(`(?m)^(REFUND|\*\*\* VOID MODE \*\*\*|\s+NO SALE|CLERK\d+)$`), []string{"  REPRINT", "  MGR 4", " COPY"}},
	}
	ps := shipped(t)
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			p := ps[tt.profile]
			in, err := os.ReadFile(tt.input)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			variant := tt.line.ReplaceAllFunc(in, func(l []byte) []byte {
				n++
				return append(append([]byte{}, l...), tt.suffix[n%len(tt.suffix)]...)
			})
			if n < 3 {
				t.Fatalf("only %d lines changed", n)
			}
			want, got := run(p, in, 0), run(p, variant, 0)
			if len(want) != len(got) {
				t.Fatalf("%d results, the golden day has %d", len(got), len(want))
			}
			for i := range want {
				a, _ := json.Marshal(goldenResult{Record: want[i].Record, Flags: want[i].Flags, Error: errString(want[i].Err)})
				b, _ := json.Marshal(goldenResult{Record: got[i].Record, Flags: got[i].Flags, Error: errString(got[i].Err)})
				if !bytes.Equal(a, b) {
					t.Errorf("transaction %d differs in the variant:\n%s\n%s\n%s", i, a, b, got[i].Raw)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
