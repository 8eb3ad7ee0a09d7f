package profile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

// layoutProfile is a 30-column layout: a 20-character description cell, a space, a
// 9-character amount cell; prices include tax and use a decimal comma.
const layoutProfile = `
name: layout
decoding: {dialect: plain, line_end: lf, code_page: UTF-8}
framing:
  start: [{text: '^BON (?P<receipt>\d+)'}]
  end: [{text: '^ENDE$'}]
extras:
  title: {match: 'KOPIE|NACHDRUCK|STORNO', where: either}
  note: {match: '(?:KASSIERER|FILIALLEITER) \d+', where: after}
classification:
  rules:
    - {match: '^STORNO$', kind: void, extras: [title]}
fields:
  date_format: "02.01.2006"
  currency: EUR
  unmatched: flag
  tenders: {BAR: cash}
  rules:
    - match: '^BON (?P<receipt>\d+) (?P<date>\d\d\.\d\d\.\d{4}) (?P<terminal>K\d+)$'
      type: header
      extras: [title, note]
    - match: '^STORNO$'
      type: ignore
      extras: [title]
    - match: '^SUMME\s+(?P<amount>[\d.]+,\d\d)$'
      type: total
    - match: '^BAR\s+(?P<amount>[\d.]+,\d\d)$'
      type: tender
      set: {tender: BAR}
    - match: '^(?P<description>\D{21,})$'    # a description too long for its cell, alone
      type: item
      wrap:
        match: '^(?P<description>\S.{0,19}?) +(?P<amount>[\d.,]{1,9})$'
    - match: '^(?P<description>\S.{0,19}?) +(?P<amount>[\d.,]{1,9})$'
      type: item
      cells: {description: 20, amount: 9}
      wrap:
        match: '^(?P<description>\S.{0,19}?)? *(?P<amount>[\d.,]{1,9})?$'
numbers: {decimal: ",", thousands: ".", exact_decimals: true}
invariants: {tax_included: true}
`

func parseText(t *testing.T, p *profile.Profile, text string) []profile.Result {
	t.Helper()
	ps := p.NewParser("")
	now := time.Date(2024, 3, 14, 12, 0, 0, 0, time.UTC)
	return append(ps.Feed([]byte(text), now), ps.Close()...)
}

func TestWrappedCells(t *testing.T) {
	p := mustLoad(t, layoutProfile)
	tests := []struct {
		name      string
		body      string
		desc      []string // descriptions of the lines
		amounts   []int64
		total     int64
		flag      string // a flag that must be raised ("" none)
		errSubstr string
	}{
		{
			name: "description cut mid-word, continuation before the amount",
			body: "Roggenbrot mit            3,49\nSonnenblumenkernen\nSUMME 3,49\n",
			// The first piece does not fill its cell (14 characters of 20): a word boundary.
			desc: []string{"Roggenbrot mit Sonnenblumenkernen"}, amounts: []int64{349}, total: 349,
		},
		{
			name: "a full cell is cut inside a word",
			body: "Bio-Vollkornbrot mit     3,49\nSonnenblumenkernen\nSUMME 3,49\n",
			desc: []string{"Bio-Vollkornbrot mitSonnenblumenkernen"}, amounts: []int64{349}, total: 349,
		},
		{
			name: "amount wider than its column",
			body: "Kaffeemaschine        1.000.00\n                           0,00\nSUMME 1.000.000,00\n",
			desc: []string{"Kaffeemaschine"}, amounts: []int64{100000000}, total: 100000000,
		},
		{
			name: "description alone on the first line, amount on the continuation",
			body: "Kaffeemaschine Deluxe\nEdelstahl           1.000,00\nSUMME 1.000,00\n",
			desc: []string{"Kaffeemaschine Deluxe Edelstahl"}, amounts: []int64{100000}, total: 100000,
		},
		{
			name: "two items, the second not wrapped",
			body: "Brötchen Weizen      0,90\nMilch 1,5% 1l        1,19\nSUMME 2,09\n",
			desc: []string{"Brötchen Weizen", "Milch 1,5% 1l"}, amounts: []int64{90, 119}, total: 209,
		},
		{
			name: "a full cell followed by an unhandled line is flagged, not silently cut",
			body: "Bio-Vollkornbrot mit     3,49\n*** Aktion: 2 für 1 ***\nSUMME 3,49\n",
			desc: []string{"Bio-Vollkornbrot mit"}, amounts: []int64{349}, total: 349,
			flag: "fills its cell description (20 characters)",
		},
		{
			name:      "a wrapped amount whose tail was lost is not read as a smaller number",
			body:      "Kaffeemaschine        1.000,0\nSUMME 1.000,00\n",
			errSubstr: "numbers.exact_decimals",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseText(t, p, "BON 7 14.03.2024 K1\n"+tt.body+"BAR "+fmtEUR(tt.total)+"\nENDE\n")
			if len(rs) != 1 {
				t.Fatalf("got %d results, want 1: %+v", len(rs), rs)
			}
			r := rs[0]
			if tt.errSubstr != "" {
				if r.Err == nil || !strings.Contains(r.Err.Error(), tt.errSubstr) {
					t.Fatalf("err = %v, want one containing %q", r.Err, tt.errSubstr)
				}
				return
			}
			if r.Err != nil {
				t.Fatalf("quarantined: %v\n%s", r.Err, r.Raw)
			}
			rec := r.Record
			if len(rec.Lines) != len(tt.desc) {
				t.Fatalf("lines = %+v, want descriptions %q", rec.Lines, tt.desc)
			}
			for i, l := range rec.Lines {
				if l.Description != tt.desc[i] || l.Amount != tt.amounts[i] {
					t.Errorf("line %d = %q %d, want %q %d", i, l.Description, l.Amount, tt.desc[i], tt.amounts[i])
				}
			}
			if rec.Total != tt.total {
				t.Errorf("total = %d, want %d", rec.Total, tt.total)
			}
			joined := strings.Join(r.Flags, "; ")
			switch {
			case tt.flag == "" && len(r.Flags) > 0:
				t.Errorf("unexpected flags: %s", joined)
			case tt.flag != "" && !strings.Contains(joined, tt.flag):
				t.Errorf("flags %q, want one containing %q", joined, tt.flag)
			}
		})
	}
}

// fmtEUR prints minor units with a decimal comma and no grouping.
func fmtEUR(v int64) string {
	s := strings.Repeat("0", 3) + itoa(v)
	s = strings.TrimLeft(s[:len(s)-2], "0")
	if s == "" {
		s = "0"
	}
	return s + "," + (strings.Repeat("0", 3) + itoa(v))[len(strings.Repeat("0", 3)+itoa(v))-2:]
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

func TestExtras(t *testing.T) {
	p := mustLoad(t, layoutProfile)
	tests := []struct {
		name, header, extra string
		kind                string
		receipt             string
	}{
		{"as printed", "BON 7 14.03.2024 K1", "", "sale", "7"},
		{"title after", "BON 7 14.03.2024 K1 KOPIE", "", "sale", "7"},
		{"title before", "NACHDRUCK BON 7 14.03.2024 K1", "", "sale", "7"},
		{"title and note", "KOPIE BON 7 14.03.2024 K1 FILIALLEITER 3", "", "sale", "7"},
		{"note then title", "BON 7 14.03.2024 K1 KASSIERER 12 NACHDRUCK", "", "sale", "7"},
		{"kind title with a title", "BON 7 14.03.2024 K1", "NACHDRUCK STORNO\n", "void", "7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.header + "\n" + tt.extra + "Milch                1,19\nSUMME 1,19\nBAR 1,19\nENDE\n"
			if strings.HasPrefix(tt.header, "NACHDRUCK") || strings.HasPrefix(tt.header, "KOPIE") {
				// The start marker is the header: let framing see it.
				in = "BON 7 start\n" + in
			}
			rs := parseText(t, p, in)
			r := rs[len(rs)-1]
			if r.Err != nil {
				t.Fatalf("quarantined: %v\n%s", r.Err, r.Raw)
			}
			if string(r.Record.Kind) != tt.kind || r.Record.Receipt != tt.receipt || len(r.Flags) > 0 {
				t.Errorf("kind %s receipt %s flags %q; want %s %s no flags", r.Record.Kind, r.Record.Receipt, r.Flags, tt.kind, tt.receipt)
			}
		})
	}
	// Words the profile did not declare are not taken off: the line is unmatched.
	rs := parseText(t, p, "BON 7 14.03.2024 K1 TRAINING\nMilch                1,19\nSUMME 1,19\nENDE\n")
	if len(rs) != 1 || rs[0].Err == nil || !strings.Contains(rs[0].Err.Error(), "no terminal") {
		t.Errorf("undeclared extra word: %+v, want quarantine for a missing header", rs)
	}
}

func TestExtrasAndWrapLoadErrors(t *testing.T) {
	tests := []struct{ name, from, to, want string }{
		{"undefined extra", "extras: [title, note]", "extras: [title, notes]", `"notes" is not defined under the top-level extras (defined: note, title)`},
		{"bad where", "where: after", "where: behind", `extras.note.where: "behind" is not before, after or either`},
		{"bad extra regex", "'KOPIE|NACHDRUCK|STORNO'", "'KOPIE('", "extras.title.match"},
		{"unknown cell", "cells: {description: 20, amount: 9}", "cells: {desc: 20}", `cells: unknown group "desc"`},
		{"zero cell", "cells: {description: 20, amount: 9}", "cells: {description: 0}", "cells.description: width 0 must be positive"},
		{"wrap without groups", `match: '^(?P<description>\S.{0,19}?)? *(?P<amount>[\d.,]{1,9})?$'`, `match: '^ +\S+$'`, "wrap.match: no named group"},
		{"wrap bad group", `match: '^(?P<description>\S.{0,19}?)? *(?P<amount>[\d.,]{1,9})?$'`, `match: '^(?P<desc>.+)$'`, `wrap.match: unknown group name "desc"`},
		{"unknown wrap key", "        match: '^(?P<description>", "        matches: '^(?P<description>", `unknown key "matches" in Wrap`},
		{"bad grouping", "exact_decimals: true", "grouping: swiss", `grouping: "swiss" is not thousands, indian or any`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(layoutProfile, tt.from, tt.to, 1)
			if y == layoutProfile {
				t.Fatalf("replacement %q not found", tt.from)
			}
			_, err := profile.Load(strings.NewReader(y))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// FuzzLayout fuzzes wrapped cells, full-cell flags, extras and decimal-comma amounts on a
// plain-text layout (the shipped-profile fuzzer reaches them only through binary streams):
// no panic, every result a record or a quarantine entry, records valid, chunking irrelevant.
func FuzzLayout(f *testing.F) {
	p := mustLoad(f, layoutProfile)
	names, ps := []string{"layout"}, map[string]*profile.Profile{"layout": p}
	for _, body := range []string{
		"Roggenbrot mit            3,49\nSonnenblumenkernen\nSUMME 3,49\n",
		"Kaffeemaschine        1.000.00\n                           0,00\nSUMME 1.000.000,00\n",
		"Kaffeemaschine Deluxe\nEdelstahl           1.000,00\nSUMME 1.000,00\n",
		"Bio-Vollkornbrot mit     3,49\n*** Aktion: 2 für 1 ***\nSUMME 3,49\n",
		"NACHDRUCK STORNO\nMilch                1,19\n",
	} {
		f.Add([]byte("BON 7 14.03.2024 K1 KOPIE\n"+body+"BAR 3,49\nENDE\n"), uint8(0), uint16(9))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8, split uint16) {
		checkParse(t, names, ps, data, which, split)
	})
}
