package draft

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

// variant is one combination of the guesses the sample may not settle.
type variant struct {
	taxIncluded bool
	dateLayout  string
}

// outcome is how a draft did on its own sample.
type outcome struct {
	parsed, flagged, quarantined int
	reasons                      []string
}

func (o outcome) score() int { return o.parsed*4 - o.flagged - o.quarantined*2 }

// best writes every variant, keeps the one that does best on the sample, and says how it did.
func (d *drafter) best(sample []byte) ([]byte, error) {
	layouts := d.dates.layouts
	if len(layouts) == 2 && d.num.dec == "," && !strings.HasPrefix(layouts[0], "02") {
		layouts = []string{layouts[1], layouts[0]} // decimal comma: a day-first country, likely
	}
	var (
		bestY   []byte
		bestO   outcome
		bestV   variant
		lastErr error
		tried   []string
	)
	for _, tax := range []bool{false, true} {
		for _, dl := range layouts {
			v := variant{taxIncluded: tax, dateLayout: dl}
			y := d.yaml(v, nil, outcome{})
			p, err := profile.Load(bytes.NewReader(y))
			if err != nil {
				lastErr = err
				continue
			}
			o := run(p, sample)
			tried = append(tried, fmt.Sprintf("tax_included %v, date %s: %d parsed, %d flagged, %d quarantined", tax, dl, o.parsed, o.flagged, o.quarantined))
			if bestY == nil || o.score() > bestO.score() {
				bestY, bestO, bestV = y, o, v
			}
		}
	}
	if bestY == nil {
		return nil, fmt.Errorf("draft: the generated profile does not load (a bug in draft): %w", lastErr)
	}
	out := d.yaml(bestV, tried, bestO)
	if _, err := profile.Load(bytes.NewReader(out)); err != nil {
		return nil, fmt.Errorf("draft: the generated profile does not load (a bug in draft): %w", err)
	}
	return out, nil
}

// run parses the sample with a draft.
func run(p *profile.Profile, sample []byte) outcome {
	ps := p.NewParser("T1")
	t0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	res := append(ps.Feed(sample, t0), ps.Close()...)
	var o outcome
	for _, r := range res {
		switch {
		case r.Err != nil:
			o.quarantined++
			o.reasons = append(o.reasons, "quarantined: "+r.Err.Error())
		case r.Record.ValidateBusiness() != nil:
			o.quarantined++
			o.reasons = append(o.reasons, "invalid: "+r.Record.ValidateBusiness().Error())
		case len(r.Flags) > 0:
			o.flagged++
			o.reasons = append(o.reasons, "flagged: "+strings.Join(r.Flags, "; "))
		default:
			o.parsed++
		}
	}
	return o
}

// q quotes a YAML scalar: single quotes when printable, else a double-quoted escape.
func q(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == '\u2028' || r == '\u2029' {
			return strconv.Quote(s)
		}
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// comment makes s safe as the rest of a YAML comment line.
func comment(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

func (d *drafter) yaml(v variant, tried []string, o outcome) []byte {
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	src := d.opt.Source
	if src == "" {
		src = "a sample"
	}
	w("# Draft profile inferred by `lanebridge-agent profile draft` from %s (%d receipts).\n", comment(src), len(d.rs))
	w("# Every rule says what was guessed and why. Check it with `profile test --explain --profile draft.yaml SAMPLE`\n")
	w("# on receipts it was not drafted from, and compare the summary with the register's Z report.\n")
	if tried != nil {
		w("# On its own sample: %d parsed, %d flagged, %d quarantined.\n", o.parsed, o.flagged, o.quarantined)
		for i, r := range o.reasons {
			if i == 5 {
				w("#   … and %d more\n", len(o.reasons)-5)
				break
			}
			w("#   %s\n", comment(r))
		}
		if len(tried) > 1 {
			w("# Guesses the sample had to settle (the best was kept):\n")
			for _, t := range tried {
				w("#   %s\n", comment(t))
			}
		}
	}
	for _, n := range d.notes {
		w("# NOTE: %s\n", comment(n))
	}
	if d.negativeSale > 0 {
		w("# NOTE: %d receipt(s) without a known title have a negative total: a return or void title the\n#   keyword table lacks? Add a classification rule for it.\n", d.negativeSale)
	}
	w("name: %s\nversion: 1\n", q(d.opt.Name))
	w("description: %s\n", q(fmt.Sprintf("Draft from %d receipts; check before use.", len(d.rs))))
	w("identity:\n  vendor: unknown\n  model: unknown\n  port: receipt\n")
	w("transport:\n  source: tcp-listen\n  tcp_port: 9100\n")
	w("decoding:\n  dialect: %s\n  code_page: %s\n", q(d.dc.dialect), q(d.dc.codePage))
	if d.dc.multiByte != "" {
		w("  multibyte: %s   # --code-page names a multi-byte encoding\n", q(d.dc.multiByte))
	}
	w("  line_end: %s   # from the line-end bytes in the sample\n  idle_flush: 2s\n", d.dc.lineEnd)
	if d.dstats.Mojibake > 0 || d.dstats.Unknown > 0 {
		w("  # the decoder met %d unknown commands and %d characters that did not decode: check dialect and code page\n", d.dstats.Unknown, d.dstats.Mojibake)
	}

	w("cleaning:\n  trim: right\n")
	ignores := d.sorted("ignore")
	var fixed []string
	for t := range d.fixed {
		fixed = append(fixed, t)
	}
	sort.Strings(fixed)
	if len(fixed)+len(ignores) > 0 {
		w("  ignore_lines:\n")
		for _, t := range fixed {
			w("    - %s   # fixed: on %d of %d receipts, no amount\n", q(`^\s*`+quoteMeta(t)+`\s*$`), d.fixed[t], len(d.rs))
		}
		for _, r := range ignores {
			w("    - %s   # %s\n", q(r.match), comment(r.why))
		}
	}
	if conts := d.sorted("cont"); len(conts) > 0 {
		w("  continuations:\n")
		for _, r := range conts {
			w("    - match: %s   # %s\n      separator: ' '\n", q(r.match), comment(r.why))
		}
	}

	w("framing:\n  # %s\n", comment(strings.Join(d.fr.why, "; ")))
	w("  start:\n")
	if d.fr.startEvent != "" {
		w("    - event: %s\n", d.fr.startEvent)
	} else {
		w("    - text: %s\n", q(d.fr.startText))
	}
	if d.fr.endEvent != "" || d.fr.endText != "" {
		w("  end:\n")
		if d.fr.endEvent != "" {
			w("    - event: %s\n", d.fr.endEvent)
		} else {
			w("    - text: %s\n", q(d.fr.endText))
		}
	}
	w("  timeout: 60s\n  on_restart: close\n")

	w("classification:\n  default: sale\n")
	if ks := d.sorted("kind"); len(ks) > 0 {
		w("  rules:\n")
		for _, r := range ks {
			w("    - match: %s   # %s\n      kind: %s\n", q(r.match), comment(r.why), r.typ)
		}
	}

	w("fields:\n  date_format: %s   # %s\n", q(v.dateLayout), comment(d.dates.why))
	if d.dates.timeLayout != "" {
		w("  time_format: %s\n", q(d.dates.timeLayout))
	}
	switch {
	case d.currency != "" && d.currencyWhy != "":
		w("  currency: %s   # %s\n", d.currency, comment(d.currencyWhy))
	case d.currency != "":
		w("  currency: %s   # from the symbol printed with amounts (check: $ is not only USD)\n", d.currency)
	case d.currencyWhy != "":
		w("  # currency: %s: set fields.currency (ISO 4217)\n", comment(d.currencyWhy))
	default:
		w("  # currency: no symbol printed with the amounts: set fields.currency (ISO 4217)\n")
	}
	alt := d.tenderAlternation()
	var labels []string
	for l := range d.tenders {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	w("  tenders:   # the tender table's words and the labels seen, by type\n")
	for _, l := range labels {
		w("    %s: %s\n", q(l), d.tenders[l])
	}
	w("  # every line must be taken by a rule: a line the draft did not foresee flags its record\n  unmatched: flag\n")
	w("  rules:\n")
	for _, r := range d.sorted("fields") {
		m := r.match
		if m == "tender-words" {
			m = `^\s*(?P<tender>` + alt + `)[\s:=]+(?P<amount>` + d.num.full + `)` + d.num.suffix() + `$`
		}
		w("    - match: %s\n      type: %s   # %s\n", q(m), r.typ, comment(r.why))
		if len(r.require) > 0 {
			w("      require: [%s]\n", strings.Join(r.require, ", "))
		}
		if r.width > 0 {
			w("      width: %d\n", r.width)
		}
	}
	w("numbers:   # %s\n", comment(d.num.why))
	w("  decimal: %s\n  thousands: %s\n  minor_digits: %d\n", q(d.num.dec), q(d.num.thou), d.num.minor)
	if len(d.num.symbols) > 0 {
		var qs []string
		for _, s := range d.num.symbols {
			qs = append(qs, q(s))
		}
		w("  currency_symbols: [%s]\n", strings.Join(qs, ", "))
	}
	if d.num.trailing {
		w("  negative: [minus, trailing_minus]   # a trailing minus was seen\n")
	} else {
		w("  negative: [minus]\n")
	}
	if zs := d.sorted("z"); len(zs) > 0 {
		w("z_report:\n  rules:\n")
		for _, r := range zs {
			w("    - match: %s\n      field: %s   # %s\n", q(r.match), r.typ, comment(r.why))
		}
	}
	w("invariants:   # the checks that flag a draft's wrong guess about money instead of passing it\n")
	w("  lines_total: true\n  tenders_total: true\n  line_math: true\n")
	if v.taxIncluded {
		w("  tax_included: true   # the sample's totals equal Σlines − discounts: prices include tax\n")
	} else {
		w("  tax_included: false   # the sample's totals equal Σlines − discounts + tax\n")
	}
	w("  tolerance: 0\n")
	if d.voidsWithoutTotal > 0 {
		w("  total_required: [sale, return]   # %d sample void(s) print no total\n", d.voidsWithoutTotal)
	} else {
		w("  # a void must print its total too (none in the sample did not): a total computed from its lines alone checks nothing\n")
		w("  total_required: [sale, return, void]\n")
	}
	return b.Bytes()
}

func quoteMeta(s string) string {
	return spacesRE.ReplaceAllString(regexp.QuoteMeta(strings.TrimSpace(s)), `\s+`)
}

// sorted returns a section's rules in the order the parser must try them.
func (d *drafter) sorted(section string) []*rule {
	var out []*rule
	for _, r := range d.rules {
		if r.section == section {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].prio != out[j].prio {
			return out[i].prio < out[j].prio
		}
		if section == "kind" {
			return kindOrder(out[i].typ) < kindOrder(out[j].typ)
		}
		if len(out[i].match) != len(out[j].match) {
			return len(out[i].match) > len(out[j].match) // the more specific first
		}
		return out[i].match < out[j].match
	})
	return out
}

func kindOrder(k string) int {
	for i, kw := range kindWords {
		if string(kw.kind) == k {
			return i
		}
	}
	return len(kindWords)
}
