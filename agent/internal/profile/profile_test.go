package profile_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

const base = `
name: test
decoding:
  dialect: plain
  line_end: lf
  idle_flush: 1s
framing:
  start:
    - text: '^START (?P<receipt>\d+)'
  end:
    - text: '^END$'
  timeout: 30s
fields:
  date_format: "2006-01-02"
  tenders: {CASH: cash}
  rules:
    - match: '^START (?P<receipt>\d+) (?P<date>\S+)'
      type: header
    - match: '^TOTAL (?P<amount>\S+)$'
      type: total
    - match: '^CASH (?P<amount>\S+)$'
      type: tender
      set: {tender: CASH}
    - match: '^(?P<description>[A-Z]+) (?P<amount>\S+)$'
      type: item
`

func mustLoad(t testing.TB, y string) *profile.Profile {
	t.Helper()
	p, err := profile.Load(strings.NewReader(y))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top key", base + "invariant:\n  tolerance: 1\n", []string{`unknown key "invariant"`, `did you mean "invariants"`}},
		{"unknown nested key", strings.Replace(base, "idle_flush", "idle_flsh", 1), []string{`unknown key "idle_flsh"`, "Decoding", `did you mean "idle_flush"`}},
		{"bad regex", strings.Replace(base, `'^END$'`, `'^END($'`, 1), []string{"framing.end[0].text"}},
		{"bad group", strings.Replace(base, "(?P<description>", "(?P<desc>", 1), []string{`unknown group name "desc"`}},
		{"bad type", strings.Replace(base, "type: total", "type: totl", 1), []string{`"totl" is not one of`}},
		{"bad tender", strings.Replace(base, "{CASH: cash}", "{CASH: money}", 1), []string{`"money" is not one of`}},
		{"bad duration", strings.Replace(base, "30s", "thirty", 1), []string{"not a duration"}},
		{"bad dialect", strings.Replace(base, "dialect: plain", "dialect: zpl", 1), []string{"unknown dialect"}},
		{"no start", strings.Replace(base, "  start:\n    - text: '^START (?P<receipt>\\d+)'\n", "", 1), []string{"framing.start"}},
		{"no name", strings.Replace(base, "name: test", "", 1), []string{"name: missing"}},
		{"bad multibyte", strings.Replace(base, "line_end: lf", "line_end: lf\n  multibyte: utf16", 1), []string{"decoding.multibyte", `"utf16"`, "gb18030, gbk, big5, shift_jis, euc-kr"}},
		{"bad kanji mode", strings.Replace(base, "line_end: lf", "line_end: lf\n  multibyte: big5\n  kanji_mode: yes", 1), []string{"decoding.kanji_mode", `"yes"`, "on or off"}},
		{"kanji mode alone", strings.Replace(base, "line_end: lf", "line_end: lf\n  kanji_mode: on", 1), []string{"decoding.kanji_mode", "add multibyte"}},
		{"bad kind", base + "classification:\n  rules:\n    - match: x\n      kind: refund\n", []string{`"refund" is not a kind`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := profile.Load(strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatalf("Load succeeded, want error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %q does not contain %q", err, w)
				}
			}
		})
	}
	_, err := profile.Load(strings.NewReader(base + "bogus: 1\n"))
	if !errors.Is(err, profile.ErrUnknownKey) {
		t.Errorf("unknown key error %v does not wrap ErrUnknownKey", err)
	}
}

type step struct {
	feed  string
	at    time.Duration
	flush bool
	close bool
}

func runSteps(p *profile.Profile, steps []step) []profile.Result {
	ps := p.NewParser("T1")
	t0 := time.Date(2024, 3, 14, 10, 0, 0, 0, time.UTC)
	var out []profile.Result
	for _, s := range steps {
		switch {
		case s.close:
			out = append(out, ps.Close()...)
		case s.flush:
			out = append(out, ps.Flush(t0.Add(s.at))...)
		default:
			out = append(out, ps.Feed([]byte(s.feed), t0.Add(s.at))...)
		}
	}
	return out
}

func summary(rs []profile.Result) string {
	var b strings.Builder
	for _, r := range rs {
		switch {
		case r.Err != nil:
			b.WriteString("ERR(" + r.Err.Error() + ")")
		default:
			b.WriteString(string(r.Record.Kind) + ":" + r.Record.Receipt)
			if len(r.Flags) > 0 {
				b.WriteString("!" + strings.Join(r.Flags, "|"))
			}
		}
		b.WriteString(";")
	}
	return b.String()
}

func TestFraming(t *testing.T) {
	sale := "START 1 2024-03-14\nMILK 1.99\nTOTAL 1.99\nCASH 1.99\nEND\n"
	tests := []struct {
		name  string
		yaml  string
		steps []step
		want  string
	}{
		{"end marker closes", base, []step{{feed: sale}}, "sale:1;"},
		{"nothing until end", base, []step{{feed: "START 1 2024-03-14\nMILK 1.99\nTOTAL 1.99\n"}, {flush: true, at: time.Second}}, ""},
		{"timeout force-closes", base, []step{{feed: "START 1 2024-03-14\nMILK 1.99\nTOTAL 1.99\n"}, {flush: true, at: 31 * time.Second}}, "sale:1;"},
		{"idle flush ends a partial line", base, []step{{feed: "START 1 2024-03-14\nMILK 1.99\nTOTAL 1.99"}, {flush: true, at: 2 * time.Second}, {flush: true, at: 40 * time.Second}}, "sale:1;"},
		{"close ends everything", base, []step{{feed: "START 1 2024-03-14\nMILK 1.99\nTOTAL 1.99"}, {close: true}}, "sale:1;"},
		{"restart closes", base, []step{{feed: "START 1 2024-03-14\nMILK 1.99\nTOTAL 1.99\n" + sale}}, "sale:1;sale:1;"},
		{"restart quarantines", base + "  on_restart: quarantine\n", []step{{feed: "START 1 2024-03-14\nMILK 1.99\n" + sale}},
			"ERR(transaction not parseable: a new transaction started before this one ended);sale:1;"},
		{"restart ignored", base + "  on_restart: ignore\n", []step{{feed: "START 1 2024-03-14\nMILK 1.99\n" + sale}},
			"sale:1!invariant lines: Σlines − discounts + tax = 3.98 ≠ total 1.99;"},
		{"orphan text reported", base, []step{{feed: "garbage\n" + sale}}, "ERR(text outside a transaction);sale:1;"},
		{"orphan after quiet gap", base, []step{{feed: "garbage\n"}, {flush: true, at: 31 * time.Second}}, "ERR(text outside a transaction);"},
		{"no total quarantined", base, []step{{feed: "START 1 2024-03-14\nMILK 1.99\nEND\n"}}, "ERR(transaction not parseable: no total line in a sale);"},
		{"bad date quarantined", base, []step{{feed: "START 1 14/03/2024\nMILK 1.99\nTOTAL 1.99\nEND\n"}}, `ERR(transaction not parseable: date "14/03/2024" does not match date_format "2006-01-02");`},
		{"invariants flag", base, []step{{feed: "START 1 2024-03-14\nMILK 1.99\nTOTAL 2.99\nCASH 1.00\nEND\n"}},
			"sale:1!invariant lines: Σlines − discounts + tax = 1.99 ≠ total 2.99|invariant tenders: Σtenders 1.00 − change 0.00 ≠ total 2.99;"},
		{"extra lines after end", strings.Replace(base, "  timeout: 30s", "  timeout: 30s\n  extra_lines: 1", 1), []step{{feed: "START 1 2024-03-14\nMILK 1.99\nEND\nTOTAL 1.99\n"}}, "sale:1;"},
		{"unmatched flagged", base + "  unmatched: flag\n", []step{{feed: "START 1 2024-03-14\nMILK 1.99\nhello there\nTOTAL 1.99\nEND\n"}}, `sale:1!unmatched line 3: "hello there";`},
		{"dedupe", base + "cleaning:\n  dedupe: true\n", []step{{feed: "START 1 2024-03-14\nMILK 1.99\nMILK 1.99\nTOTAL 1.99\nEND\n"}}, "sale:1;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// unmatched/on_restart are appended after "fields"/"framing" blocks; put them in place.
			y := tt.yaml
			y = moveKey(y, "  on_restart:", "  timeout: 30s")
			y = moveKey(y, "  unmatched:", "  date_format:")
			got := summary(runSteps(mustLoad(t, y), tt.steps))
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// moveKey moves a trailing "  key: value" line to just after the line starting with anchor.
func moveKey(y, key, anchor string) string {
	i := strings.LastIndex(y, "\n"+key)
	if i < 0 || !strings.HasSuffix(strings.TrimRight(y, "\n"), strings.TrimRight(y[i+1:], "\n")) {
		return y
	}
	line := strings.TrimRight(y[i+1:], "\n")
	y = y[:i+1]
	j := strings.Index(y, "\n"+anchor)
	k := strings.Index(y[j+1:], "\n") + j + 1
	return y[:k+1] + line + "\n" + y[k+1:]
}

func TestConfiguredTerminalWins(t *testing.T) {
	p := mustLoad(t, base)
	rs := p.NewParser("LANE-7").Feed([]byte("START 9 2024-03-14\nMILK 1.99\nTOTAL 1.99\nEND\n"), time.Now())
	if len(rs) != 1 || rs[0].Record == nil || rs[0].Record.Terminal != "LANE-7" {
		t.Fatalf("results %+v", rs)
	}
}

func TestStats(t *testing.T) {
	p := mustLoad(t, base)
	ps := p.NewParser("T1")
	ps.Feed([]byte("START 1 2024-03-14\nCARD 4111 1111 1111 1111\n;4111111111111111=2512101?\nMILK 1.99\nTOTAL 1.99\nEND\nnoise\n"), time.Now())
	ps.Close()
	st := ps.Stats()
	if st.PANsMasked != 1 || st.LinesDropped != 1 || st.Records != 1 || st.Quarantined != 1 || st.Lines != 7 {
		t.Errorf("stats = %+v", st)
	}
}

// strict is base with the damage-revealing rules: every line must match, items are 12
// columns wide, a sale always prints an item and a tender, a receipt number is required.
var strict = strings.NewReplacer(
	"    - text: '^START (?P<receipt>\\d+)'", "    - text: '^START '",
	"  rules:\n", "  unmatched: flag\n  rules:\n    - match: '^RECEIPT (?P<receipt>\\d+)$'\n      type: header\n",
	"'^START (?P<receipt>\\d+) (?P<date>\\S+)'", "'^START (?:(?P<receipt>\\d+) )?(?P<date>\\d{4}-\\d\\d-\\d\\d)$'",
	"(?P<description>[A-Z]+) ", "(?P<description>[A-Z]+) +",
	"      type: tender\n", "      type: tender\n      require: [sale]\n",
	"      type: item\n", "      type: item\n      require: [sale]\n      width: 12\n",
).Replace(base) + "invariants:\n  receipt_required: true\n"

func TestDamageRules(t *testing.T) {
	p := mustLoad(t, strict)
	tests := []struct{ name, in, want string }{
		{"clean", "START 1 2024-03-14\nMILK    1.00\nTOTAL 1.00\nCASH 1.00\nEND\n", "sale:1;"},
		{"unmatched line", "START 1 2024-03-14\nMILK    1.00\nM?LK 1.00\nTOTAL 1.00\nCASH 1.00\nEND\n",
			`sale:1!unmatched line 3: "M?LK 1.00";`},
		{"wrong width", "START 1 2024-03-14\nMILK  1.00\nTOTAL 1.00\nCASH 1.00\nEND\n",
			`sale:1!unmatched line 2: "MILK  1.00"|no item line in a sale (the layout always prints one);`},
		{"no tender", "START 1 2024-03-14\nMILK    1.00\nTOTAL 1.00\nEND\n",
			"sale:1!no tender line in a sale (the layout always prints one);"},
		{"no receipt", "START 2024-03-14\nMILK    1.00\nTOTAL 1.00\nCASH 1.00\nEND\n",
			"ERR(transaction not parseable: no receipt number);"},
		{"two receipts", "START 1 2024-03-14\nRECEIPT 2\nMILK    1.00\nTOTAL 1.00\nCASH 1.00\nEND\n",
			"sale:2!receipt number 2 printed after 1 in one transaction;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summary(runSteps(p, []step{{feed: tt.in}, {close: true}})); got != tt.want {
				t.Errorf("Parse(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
