package draft_test

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
	"github.com/lanebridge/lanebridge/agent/internal/profile/draft"
	"github.com/lanebridge/lanebridge/testharness/receiptgen"
)

// TestDraftWrongMoneyIsFlagged: receipts that differ from the draft's sample in ways that
// touch money — a line it never saw carrying an amount, a total that does not add up, a missing
// tender — come out flagged or quarantined, never as clean records. The same receipts parsed
// with the draft's invariants switched off come out clean, so it is the invariants (and
// unmatched: flag) that catch them.
func TestDraftWrongMoneyIsFlagged(t *testing.T) {
	l := receiptgen.Layouts()[0] // bakery-de: 40 columns, decimal comma
	y, err := draft.Draft(l.Generate(1, 30).Stream(0, 5), draft.Options{Dialect: l.Dialect, CodePage: l.CodePage})
	if err != nil {
		t.Fatal(err)
	}
	day := l.Generate(2, 40)
	sale := -1
	for i, r := range day.Truth {
		if r.Kind == "sale" && len(r.Tenders) == 1 && r.Tenders[0].Type == "cash" {
			sale = i
			break
		}
	}
	if sale < 0 {
		t.Fatal("no cash sale in the day")
	}
	rc := day.Receipts[sale]
	sumRE := regexp.MustCompile(`SUMME EUR +\d+,\d(\d)`)
	barRE := regexp.MustCompile(`Bar +\d+,\d\d\n`)
	cases := []struct {
		name string
		edit func([]byte) []byte
	}{
		{"unseen line with an amount", func(b []byte) []byte {
			return bytes.Replace(b, []byte("SUMME EUR"), []byte("Pfand"+strings.Repeat(" ", 29)+"0,25 A\nSUMME EUR"), 1)
		}},
		{"total off by a cent", func(b []byte) []byte {
			return sumRE.ReplaceAllFunc(b, func(m []byte) []byte {
				m = bytes.Clone(m)
				m[len(m)-1] = '0' + (m[len(m)-1]-'0'+1)%10
				return m
			})
		}},
		{"tender line lost", func(b []byte) []byte { return barRE.ReplaceAll(b, nil) }},
		{"unknown tender word", func(b []byte) []byte {
			return barRE.ReplaceAllFunc(b, func(m []byte) []byte { return append([]byte("Wertmarke"), m[9:]...) })
		}},
	}
	for _, strict := range []bool{true, false} {
		src := y
		if !strict {
			src = regexp.MustCompile(`(?m)^(  (?:lines_total|tenders_total|line_math)): true`).ReplaceAll(y, []byte("$1: false"))
			src = bytes.Replace(src, []byte("unmatched: flag"), []byte("unmatched: ignore"), 1)
			src = regexp.MustCompile(`(?m)^      require: .*\n`).ReplaceAll(src, nil)
		}
		p, err := profile.Load(bytes.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		clean := 0
		for _, c := range cases {
			edited := c.edit(rc)
			if bytes.Equal(edited, rc) {
				t.Fatalf("%s: the edit changed nothing", c.name)
			}
			res := parseAll(t, p, edited)
			if len(res) != 1 {
				t.Fatalf("%s: %d results", c.name, len(res))
			}
			r := res[0]
			caught := r.Err != nil || len(r.Flags) > 0
			if strict && !caught {
				t.Errorf("%s: parsed clean with the draft's checks: %+v", c.name, r.Record)
			}
			if !caught {
				clean++
			}
			t.Logf("checks %v, %s: err %v, flags %v", strict, c.name, r.Err, r.Flags)
		}
		if !strict && clean == 0 {
			t.Errorf("without the invariants every case is still caught: the test proves nothing")
		}
		if !strict {
			t.Logf("%s", fmt.Sprintf("without the invariants %d of %d cases pass as clean records", clean, len(cases)))
		}
	}
}
