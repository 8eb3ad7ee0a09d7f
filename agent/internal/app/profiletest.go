package app

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
	"github.com/lanebridge/lanebridge/agent/internal/profile/draft"
	"github.com/lanebridge/lanebridge/protocol"
)

type testOptions struct {
	explain bool // print each line with the rule that took it
	json    bool // one JSON object per transaction, then a summary object
}

// Transaction outcomes of profile test.
const (
	statusParsed      = "parsed"
	statusFlagged     = "flagged"
	statusQuarantined = "quarantined"
)

// testResult is one transaction as profile test --json prints it.
type testResult struct {
	Status    string           `json:"status"`
	Record    *protocol.Record `json:"record,omitempty"`
	Reasons   []string         `json:"reasons"`
	Unmatched []string         `json:"unmatched"`
	// MinorDigits says how many of the record's amount digits are decimals.
	MinorDigits int `json:"minor_digits"`
}

// daySummary is what profile test prints after the transactions: to compare with the
// register's own Z report.
type daySummary struct {
	Transactions int                    `json:"transactions"`
	Parsed       int                    `json:"parsed"`
	Flagged      int                    `json:"flagged"`
	Quarantined  int                    `json:"quarantined"`
	Kinds        map[string]*kindTotal  `json:"kinds"`
	Tenders      map[string]int64       `json:"tenders"` // sales and returns, by tender type (net of change)
	Z            []protocol.ZReport     `json:"z_reports,omitempty"`
	Decoder      map[string]int64       `json:"decoder"`
	Stats        map[string]int64       `json:"stats"`
	MinorDigits  int                    `json:"minor_digits"`
	byKind       map[protocol.Kind]bool // kinds seen
}

type kindTotal struct {
	Count   int   `json:"count"`
	Flagged int   `json:"flagged"`
	Total   int64 `json:"total"`
}

// classify turns a parser result into profile test's outcome.
func classify(r profile.Result) testResult {
	tr := testResult{Status: statusParsed, Record: r.Record, Reasons: []string{}, Unmatched: []string{}}
	for _, lt := range r.Trace {
		if lt.Rule == "" {
			tr.Unmatched = append(tr.Unmatched, lt.Text)
		}
	}
	switch {
	case r.Err != nil:
		tr.Status, tr.Record, tr.Reasons = statusQuarantined, nil, []string{r.Err.Error()}
	case r.Record.ValidateBusiness() != nil:
		tr.Status, tr.Record, tr.Reasons = statusQuarantined, nil, []string{"invalid record: " + r.Record.ValidateBusiness().Error()}
	case len(r.Flags) > 0:
		tr.Status, tr.Reasons = statusFlagged, append(tr.Reasons, r.Flags...)
	}
	return tr
}

// profileTest parses data as one capture (fed in one go, then closed) and prints the outcome.
func profileTest(p *profile.Profile, term string, data []byte, opt testOptions, w io.Writer) error {
	ps := p.NewParser(term)
	if t, ok := ps.(profile.Tracer); ok {
		t.SetTrace(true)
	}
	res := append(ps.Feed(data, time.Now()), ps.Close()...)
	minor := p.MinorDigits()
	sum := daySummary{Kinds: map[string]*kindTotal{}, Tenders: map[string]int64{}, MinorDigits: minor, byKind: map[protocol.Kind]bool{}}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i, r := range res {
		tr := classify(r)
		tr.MinorDigits = minor
		sum.add(tr)
		if opt.json {
			if err := enc.Encode(tr); err != nil {
				return fmt.Errorf("write result: %w", err)
			}
			continue
		}
		switch tr.Status {
		case statusQuarantined:
			fmt.Fprintf(w, "#%d QUARANTINED: %s\n", i+1, strings.Join(tr.Reasons, "; "))
			if !opt.explain {
				fmt.Fprintf(w, "%s\n\n", indent(r.Raw))
				continue
			}
		default:
			rec := r.Record
			fmt.Fprintf(w, "#%d %-8s receipt %-8s %s %s total %s tenders %s", i+1, rec.Kind, rec.Receipt, rec.BusinessDate, rec.Time, money(rec.Total, minor), tenders(rec, minor))
			if tr.Status == statusFlagged {
				fmt.Fprintf(w, "  INVARIANT FAILED: %s", strings.Join(r.Flags, ", "))
			}
			fmt.Fprintln(w)
		}
		if opt.explain {
			explainLines(w, r)
		}
	}
	st := ps.Stats()
	sum.Decoder = map[string]int64{
		"unknown_commands": st.Decoder.Unknown, "collapsed_columns": st.Decoder.Overlaps,
		"mojibake_chars": st.Decoder.Mojibake, "mojibake_lines": st.Decoder.BadLines,
		"unsupported_charsets": st.Decoder.BadCharsets, "unknown_code_pages": st.Decoder.BadCodePages,
		"events_out_of_order": st.OutOfOrder,
	}
	sum.Stats = map[string]int64{"lines": st.Lines, "pans_masked": st.PANsMasked, "card_lines_removed": st.LinesDropped}
	if opt.json {
		if err := enc.Encode(map[string]any{"summary": sum}); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
		return nil
	}
	fmt.Fprintf(w, "\n%d transaction(s): %d parsed (%d flagged), %d quarantined; %d lines, %d PANs masked, %d card-data lines removed, %d unknown commands\n",
		sum.Transactions, sum.Parsed+sum.Flagged, sum.Flagged, sum.Quarantined, st.Lines, st.PANsMasked, st.LinesDropped, st.UnknownCommands)
	sum.print(w)
	return nil
}

// explainLines prints a transaction's lines, each with the rule that took it.
func explainLines(w io.Writer, r profile.Result) {
	if r.Trace == nil {
		// Not traced (a record-per-line format or text outside a transaction): the raw text.
		fmt.Fprintf(w, "%s\n\n", indent(r.Raw))
		return
	}
	for _, lt := range r.Trace {
		rule := lt.Rule
		if rule == "" {
			rule = "no rule"
		}
		fmt.Fprintf(w, "    %-34s │ %s\n", rule, lt.Text)
	}
	fmt.Fprintln(w)
}

func (s *daySummary) add(tr testResult) {
	s.Transactions++
	switch tr.Status {
	case statusQuarantined:
		s.Quarantined++
		return
	case statusFlagged:
		s.Flagged++
	default:
		s.Parsed++
	}
	rec := tr.Record
	k := s.Kinds[string(rec.Kind)]
	if k == nil {
		k = &kindTotal{}
		s.Kinds[string(rec.Kind)] = k
	}
	s.byKind[rec.Kind] = true
	k.Count++
	if tr.Status == statusFlagged {
		k.Flagged++
	}
	if rec.Kind.IsReport() {
		if rec.Z != nil {
			s.Z = append(s.Z, *rec.Z)
		}
		return
	}
	k.Total += rec.Total
	if rec.Kind == protocol.KindSale || rec.Kind == protocol.KindReturn {
		for _, t := range rec.Tenders {
			s.Tenders[t.Type] += t.Amount
		}
		if rec.Change != 0 {
			s.Tenders[protocol.TenderCash] -= rec.Change
		}
	}
}

// print writes the summary for people: one block to hold next to the register's Z report.
func (s *daySummary) print(w io.Writer) {
	m := func(v int64) string { return money(v, s.MinorDigits) }
	fmt.Fprintf(w, "day: %d parsed, %d flagged, %d quarantined\n", s.Parsed, s.Flagged, s.Quarantined)
	for _, k := range protocol.Kinds {
		if !s.byKind[k] {
			continue
		}
		t := s.Kinds[string(k)]
		flagged := ""
		if t.Flagged > 0 {
			flagged = fmt.Sprintf(" (%d flagged)", t.Flagged)
		}
		switch {
		case k.IsReport():
			fmt.Fprintf(w, "  %-9s %4d%s\n", k, t.Count, flagged)
		case k == protocol.KindNoSale:
			fmt.Fprintf(w, "  %-9s %4d%s\n", k, t.Count, flagged)
		default:
			fmt.Fprintf(w, "  %-9s %4d  total %12s%s\n", k, t.Count, m(t.Total), flagged)
		}
	}
	if len(s.Tenders) > 0 {
		var types []string
		for t := range s.Tenders {
			types = append(types, t)
		}
		sort.Strings(types)
		var parts []string
		for _, t := range types {
			parts = append(parts, fmt.Sprintf("%s %s", t, m(s.Tenders[t])))
		}
		fmt.Fprintf(w, "  tenders (sales and returns, net of change): %s\n", strings.Join(parts, ", "))
	}
	for _, z := range s.Z {
		fmt.Fprintf(w, "  Z %d: gross %s, net %s, refunds %d/%s, voids %d/%s, no-sales %d\n",
			z.Counter, m(z.Gross), m(z.Net), z.Refunds.Count, m(z.Refunds.Amount), z.Voids.Count, m(z.Voids.Amount), z.NoSaleCount)
	}
	d := s.Decoder
	fmt.Fprintf(w, "decoder: %d unknown commands, %d collapsed columns (print position moved left), %d mojibake characters on %d lines, %d unsupported charsets, %d unknown code pages, %d framing events out of order\n",
		d["unknown_commands"], d["collapsed_columns"], d["mojibake_chars"], d["mojibake_lines"], d["unsupported_charsets"], d["unknown_code_pages"], d["events_out_of_order"])
}

// money formats minor units with the given number of decimals.
func money(v int64, minor int) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	if minor <= 0 {
		return fmt.Sprintf("%s%d", sign, v)
	}
	p := int64(1)
	for range minor {
		p *= 10
	}
	return fmt.Sprintf("%s%d.%0*d", sign, v/p, minor, v%p)
}

func tenders(r *protocol.Record, minor int) string {
	var parts []string
	for _, t := range r.Tenders {
		parts = append(parts, fmt.Sprintf("%s %s", t.Type, money(t.Amount, minor)))
	}
	return strings.Join(parts, ", ")
}

// profileDraft writes a draft profile inferred from a sample.
func profileDraft(data []byte, dialect, codePage, src string, w io.Writer) error {
	y, err := draft.Draft(data, draft.Options{Dialect: dialect, CodePage: codePage, Source: src})
	if err != nil {
		return fmt.Errorf("profile draft: %w", err)
	}
	_, err = w.Write(y)
	return err
}
