// Package chaos is the history-checked fault suite: every scenario records what the simulated
// terminals emitted (at the source, with each record's business key), what the hub applied
// (read back through its records API) and what reached the ERP (the flat-file connector's
// posting files, read as the ERP would), and one checker proves the delivery promise (README,
// "The delivery promise") over that history: every captured record applied, none twice, each
// store's seq contiguous per epoch, every sale and return posted exactly once by business key,
// and each terminal's per-day figures equal to its Z report to the cent. Records a terminal
// emitted but did not keep (emitted while nothing could read them) are counted apart, never
// mixed in.
package chaos

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// Key is a record's business key: store, terminal, business date, receipt and kind.
type Key struct {
	Store, Terminal, Date, Receipt string
	Kind                           protocol.Kind
}

func (k Key) String() string {
	return strings.Join([]string{k.Store, k.Terminal, k.Date, k.Receipt, string(k.Kind)}, "|")
}

// KeyOf is r's business key in store.
func KeyOf(store string, r protocol.Record) Key {
	return Key{store, r.Terminal, r.BusinessDate, r.Receipt, r.Kind}
}

// History is the record of one scenario: what the sources emitted and whether they kept it.
// Safe for concurrent use.
type History struct {
	mu      sync.Mutex
	emitted map[Key]protocol.Record
	kept    map[Key]bool
	order   []Key
}

// NewHistory returns an empty history.
func NewHistory() *History {
	return &History{emitted: map[Key]protocol.Record{}, kept: map[Key]bool{}}
}

// Emit records that a terminal of store emitted r. kept says whether the terminal keeps it
// until it is read (a journal file does; a printer port with nobody listening does not).
func (h *History) Emit(store string, r protocol.Record, kept bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := KeyOf(store, r)
	if _, dup := h.emitted[k]; dup {
		return fmt.Errorf("source emitted business key %s twice: the scenario's terminal is broken", k)
	}
	h.emitted[k] = r
	h.kept[k] = kept
	h.order = append(h.order, k)
	return nil
}

// Captured is the number of kept emitted records.
func (h *History) Captured() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, k := range h.kept {
		if k {
			n++
		}
	}
	return n
}

// Stores lists the stores that emitted anything.
func (h *History) Stores() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := map[string]bool{}
	for k := range h.emitted {
		set[k.Store] = true
	}
	var out []string
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Posting is one transaction in an ERP posting file.
type Posting struct {
	Key   string // store|terminal|business_date|receipt|kind
	File  string
	Total int64
}

// Report is the checker's verdict.
type Report struct {
	Captured       int // emitted and kept
	Applied        int // captured records applied at the hub (each counted once)
	Lost           int // captured and never applied, or a sale/return never posted
	Duplicated     int // business keys or (epoch, seq) applied more than once, plus keys posted more than once
	Posted         int // distinct sale and return keys posted
	NotKept        int // emitted but not kept by the terminal: outside the promise, reported apart
	NotKeptApplied int // of those, applied anyway
	Problems       []string
}

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) < 40 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	} else if len(r.Problems) == 40 {
		r.Problems = append(r.Problems, "… (more problems left out)")
	}
}

// OK reports whether the history satisfies the promise.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) String() string {
	s := fmt.Sprintf("captured %d, applied %d, lost %d, duplicated %d, posted %d, not kept %d (applied %d)",
		r.Captured, r.Applied, r.Lost, r.Duplicated, r.Posted, r.NotKept, r.NotKeptApplied)
	if len(r.Problems) > 0 {
		s += "\n  " + strings.Join(r.Problems, "\n  ")
	}
	return s
}

// business is the part of a record the terminal produced: identity, capture time and source
// cleared, so an emitted record and its applied copy compare equal.
func business(r protocol.Record) string {
	r.Store, r.Epoch, r.Seq, r.Hash, r.Source, r.Wire, r.CapturedAt = "", "", 0, "", nil, nil, time.Time{}
	return string(r.Canonical())
}

// Check proves the promise over the history, the records the hub applied (by store, as the
// records API returns them) and the ERP postings (nil when the scenario posts nothing; then
// posting is not checked).
func (h *History) Check(applied map[string][]protocol.Record, postings []Posting) *Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	rep := &Report{}
	for _, k := range h.kept {
		if k {
			rep.Captured++
		} else {
			rep.NotKept++
		}
	}
	times := map[Key]int{}
	for store, recs := range applied {
		seqs := map[string][]uint64{}
		for _, r := range recs {
			k := KeyOf(store, r)
			times[k]++
			seqs[r.Epoch] = append(seqs[r.Epoch], r.Seq)
			em, ok := h.emitted[k]
			switch {
			case !ok:
				rep.problem("applied %s (epoch %s seq %d) was never emitted by a terminal", k, r.Epoch, r.Seq)
				continue
			case business(em) != business(r):
				rep.problem("applied %s differs from what the terminal emitted:\n    emitted %s\n    applied %s", k, business(em), business(r))
			}
			if err := r.Validate(); err != nil {
				rep.problem("applied %s: %v", k, err)
			}
		}
		for epoch, s := range seqs {
			sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
			next := uint64(1)
			for i, q := range s {
				switch {
				case i > 0 && q == s[i-1]:
					rep.Duplicated++
					rep.problem("store %s epoch %s: seq %d applied twice", store, epoch, q)
					continue
				case q != next:
					rep.problem("store %s epoch %s: seq not contiguous: %d where %d was due", store, epoch, q, next)
				}
				next = q + 1
			}
		}
	}
	for _, k := range h.order {
		n := times[k]
		if n > 1 {
			rep.Duplicated += n - 1
			rep.problem("%s applied %d times", k, n)
		}
		switch {
		case !h.kept[k]:
			if n > 0 {
				rep.NotKeptApplied++
			}
		case n == 0:
			rep.Lost++
			if rep.Lost <= 10 {
				rep.problem("captured %s never applied", k)
			}
		default:
			rep.Applied++
		}
	}
	h.checkZ(rep, applied)
	if postings != nil {
		h.checkPostings(rep, postings)
	}
	return rep
}

// Day is one terminal's business day.
type Day struct{ Store, Terminal, Date string }

// Figures are a day's totals as a Z report states them (protocol.ZReport's fields).
func Figures(recs []protocol.Record) protocol.ZReport {
	var z protocol.ZReport
	for _, r := range recs {
		tax := int64(0)
		for _, t := range r.Taxes {
			tax += t.Amount
		}
		switch r.Kind {
		case protocol.KindSale:
			z.Gross += r.Total
			z.Net += r.Total - tax
			z.GrandTotal += r.Total
		case protocol.KindReturn:
			z.Refunds.Count++
			z.Refunds.Amount -= r.Total
			z.Net += r.Total - tax
			z.GrandTotal += r.Total
		case protocol.KindVoid:
			z.Voids.Count++
		case protocol.KindNoSale:
			z.NoSaleCount++
		}
	}
	return z
}

// checkZ compares each day's applied transactions with the Z report its terminal emitted.
func (h *History) checkZ(rep *Report, applied map[string][]protocol.Record) {
	byDay := map[Day][]protocol.Record{}
	for store, recs := range applied {
		for _, r := range recs {
			if !r.Kind.IsReport() {
				d := Day{store, r.Terminal, r.BusinessDate}
				byDay[d] = append(byDay[d], r)
			}
		}
	}
	for _, k := range h.order {
		if k.Kind != protocol.KindZReport || !h.kept[k] {
			continue
		}
		z := h.emitted[k].Z
		d := Day{k.Store, k.Terminal, k.Date}
		got := Figures(byDay[d])
		want := protocol.ZReport{Gross: z.Gross, Net: z.Net, Refunds: z.Refunds, Voids: z.Voids, NoSaleCount: z.NoSaleCount, GrandTotal: z.GrandTotal}
		if got.Gross != want.Gross || got.Net != want.Net || got.Refunds != want.Refunds || got.Voids != want.Voids || got.NoSaleCount != want.NoSaleCount || got.GrandTotal != want.GrandTotal {
			rep.problem("day %s/%s/%s: hub figures %+v, Z report %+v", d.Store, d.Terminal, d.Date, got, want)
		}
	}
}

// checkPostings proves every captured sale and return posted exactly once, and nothing else.
func (h *History) checkPostings(rep *Report, postings []Posting) {
	files := map[string]map[string]bool{}
	total := map[string]int64{}
	for _, p := range postings {
		if files[p.Key] == nil {
			files[p.Key] = map[string]bool{}
		}
		files[p.Key][p.File] = true
		total[p.Key] = p.Total
	}
	want := map[string]protocol.Record{}
	for _, k := range h.order {
		if h.kept[k] && (k.Kind == protocol.KindSale || k.Kind == protocol.KindReturn) {
			want[k.String()] = h.emitted[k]
		}
	}
	for key, fs := range files {
		r, ok := want[key]
		if !ok {
			rep.problem("posted %s, which no terminal emitted as a kept sale or return", key)
			continue
		}
		rep.Posted++
		if len(fs) > 1 {
			rep.Duplicated += len(fs) - 1
			rep.problem("%s posted %d times", key, len(fs))
		}
		if total[key] != r.Total {
			rep.problem("%s posted with total %d, emitted %d", key, total[key], r.Total)
		}
	}
	missing := 0
	for key := range want {
		if files[key] == nil {
			missing++
			if missing <= 10 {
				rep.problem("sale/return %s never posted", key)
			}
		}
	}
	if missing > 0 {
		rep.Lost += missing // applied but never in the ERP: lost all the same
		rep.problem("%d captured sales and returns never posted", missing)
	}
}

// ReadPostings reads the flat-file ERP connector's posting files in outbound (names starting
// with a dot are incomplete and, like the ERP, skipped): one Posting per transaction per file.
func ReadPostings(outbound string) ([]Posting, error) {
	names, err := filepath.Glob(filepath.Join(outbound, "LB_*.csv"))
	if err != nil {
		return nil, err
	}
	var out []Posting
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return nil, fmt.Errorf("posting file %s: %w", n, err)
		}
		r := csv.NewReader(f)
		head, err := r.Read()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("posting file %s: header: %w", n, err)
		}
		ki, ti := indexOf(head, "key"), indexOf(head, "total")
		if ki < 0 || ti < 0 {
			f.Close()
			return nil, fmt.Errorf("posting file %s: no key or total column in %v", n, head)
		}
		seen := map[string]bool{}
		for {
			row, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("posting file %s: %w", n, err)
			}
			if seen[row[ki]] {
				continue
			}
			seen[row[ki]] = true
			tot, err := strconv.ParseInt(row[ti], 10, 64)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("posting file %s: total %q: %w", n, row[ti], err)
			}
			out = append(out, Posting{Key: row[ki], File: filepath.Base(n), Total: tot})
		}
		f.Close()
	}
	return out, nil
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
