package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/lanebridge/lanebridge/protocol"
)

// receiptKinds are the kinds whose receipt numbers form a terminal's numbering.
var receiptKinds = map[protocol.Kind]bool{
	protocol.KindSale: true, protocol.KindReturn: true, protocol.KindVoid: true,
	protocol.KindNoSale: true, protocol.KindPaidIn: true, protocol.KindPaidOut: true,
}

// dayRow is one record as Day needs it, in (stream creation, seq) order.
type dayRow struct {
	terminal, kind, receipt string
	total                   int64
}

type termAcc struct {
	day      TerminalDay
	numbers  []int64
	byNumber map[int64]string
	firstSeq string // first and last non-numeric receipts in seq order, used when none is numeric
	lastSeq  string
}

// buildDay summarises rows given in (stream creation, seq) order.
func buildDay(store, date string, rows []dayRow) Day {
	d := Day{Store: store, BusinessDate: date, Kinds: []KindTotal{}, Terminals: []TerminalDay{}}
	kinds := map[protocol.Kind]*KindTotal{}
	terms := map[string]*termAcc{}
	seen := map[[3]string]bool{}
	for _, r := range rows {
		k := protocol.Kind(r.kind)
		if receiptKinds[k] && r.receipt != "" {
			// The same business key counts once, as it posts once: a spool reset makes the
			// agent capture its sources again under a new epoch.
			key := [3]string{r.terminal, r.kind, r.receipt}
			if seen[key] {
				d.Recaptured++
				continue
			}
			seen[key] = true
		}
		kt := kinds[k]
		if kt == nil {
			kt = &KindTotal{Kind: k}
			kinds[k] = kt
		}
		kt.Count++
		if sum := kt.Total + r.total; (r.total > 0) == (sum > kt.Total) || r.total == 0 {
			kt.Total = sum
		} else {
			d.SumOverflow = true // the total is not kept wrapped; reconcile raises day_sum_overflow
		}

		ta := terms[r.terminal]
		if ta == nil {
			ta = &termAcc{day: TerminalDay{Terminal: r.terminal, Gaps: [][2]int64{}}, byNumber: map[int64]string{}}
			terms[r.terminal] = ta
		}
		ta.day.Count++
		if !receiptKinds[k] || r.receipt == "" {
			continue
		}
		if ta.firstSeq == "" {
			ta.firstSeq = r.receipt
		}
		ta.lastSeq = r.receipt
		if n, ok := protocol.ReceiptNumber(r.receipt); ok {
			if _, seen := ta.byNumber[n]; !seen {
				ta.byNumber[n] = r.receipt
				ta.numbers = append(ta.numbers, n)
			}
		}
	}
	for _, kt := range kinds {
		d.Kinds = append(d.Kinds, *kt)
	}
	rank := func(k protocol.Kind) int { // protocol order; unknown kinds last
		if i := slices.Index(protocol.Kinds, k); i >= 0 {
			return i
		}
		return len(protocol.Kinds)
	}
	slices.SortFunc(d.Kinds, func(a, b KindTotal) int {
		return cmp.Or(cmp.Compare(rank(a.Kind), rank(b.Kind)), cmp.Compare(a.Kind, b.Kind))
	})
	for _, ta := range terms {
		if len(ta.numbers) == 0 {
			ta.day.FirstReceipt, ta.day.LastReceipt = ta.firstSeq, ta.lastSeq
		} else {
			slices.Sort(ta.numbers)
			ta.day.FirstReceipt = ta.byNumber[ta.numbers[0]]
			ta.day.LastReceipt = ta.byNumber[ta.numbers[len(ta.numbers)-1]]
			ta.day.Gaps = append(ta.day.Gaps, protocol.ReceiptGaps(ta.numbers)...)
		}
		d.Terminals = append(d.Terminals, ta.day)
	}
	slices.SortFunc(d.Terminals, func(a, b TerminalDay) int { return cmp.Compare(a.Terminal, b.Terminal) })
	return d
}

// dayRecordsSQL selects cols of a store's records of a business day (arguments: store, date)
// in (stream creation, seq) order, through the records_day index.
func (d dialect) dayRecordsSQL(cols string) string {
	return `SELECT ` + cols + ` FROM ` + d.recordsByDay + ` JOIN streams s ON s.store = r.store AND s.epoch = r.epoch
		WHERE r.store = ? AND r.business_date = ? ORDER BY s.id, r.seq`
}

// DayRecords returns every record of a store-day, all epochs, in (stream creation, seq) order:
// what a close compares. It reads the records_day index (store, business_date), so its cost is
// the day's records, whatever history the store has. ErrNotFound for an unknown store.
func (s *DB) DayRecords(ctx context.Context, store, businessDate string) ([]protocol.Record, error) {
	var out []protocol.Record
	err := s.read(ctx, func(t tx) error {
		if err := mustStore(ctx, t, store); err != nil {
			return err
		}
		rs, err := t.query(ctx, s.d.dayRecordsSQL("r.body"), store, businessDate)
		out, err = scanAll(rs, err, scanRecord)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("records of %s on %s: %w", store, businessDate, err)
	}
	return out, nil
}

// DayPostings returns the postings of a store-day with what a close compares filled in (Key,
// Store, BusinessDate, Total, State, Attempts, LastError): a lighter read than Postings,
// through postings_day. Fulfilled channel orders' postings (they carry their body: no record)
// are not the store's takings and are left out.
func (s *DB) DayPostings(ctx context.Context, store, businessDate string) ([]Posting, error) {
	var out []Posting
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT key, total, state, attempts, last_error
			FROM postings WHERE store = ? AND business_date = ? AND body IS NULL ORDER BY id`, store, businessDate)
		out, err = scanAll(rs, err, func(r rows, p *Posting) error {
			p.Store, p.BusinessDate = store, businessDate
			return r.Scan(&p.Key, &p.Total, &p.State, &p.Attempts, &p.LastError)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postings of %s on %s: %w", store, businessDate, err)
	}
	return out, nil
}
