package store

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/lanebridge/lanebridge/protocol"
)

// Store-day summaries (migration 0013): what a close compares, kept up to date in the
// transaction that applies the records, so a close reads a few rows per terminal instead of
// decoding every record of the day. The figures follow reconcile.Compare exactly: Z and X
// reports are not counted; a business key with a receipt counts once (its first capture);
// every other record counts. Whatever the summary cannot give exactly (a recaptured receipt,
// a return without a receipt, a sum that could pass int64) marks the day slow, and the close
// then compares the records themselves.

// Summary items of day_sums (per store, business date and terminal).
const (
	sumTender   = "t:"       // + tender type: Σ tender amounts, less change on cash
	sumTax      = "x:"       // + tax code: Σ tax amounts of sales and returns
	sumNet      = "net"      // Σ totals of sales and returns
	sumCount    = "n"        // records counted
	sumPostable = "postable" // sales and returns counted
	sumPKeys    = "pkeys"    // sales and returns counted that have a receipt
	sumReturns  = "returns"  // returns counted
	sumSlow     = "slow"     // records the summary cannot account for exactly
	sumAbs      = "abs"      // Σ |every amount added|, saturating: bounds every partial sum
	sumRows     = "rows"     // records stored, of every kind: a close checks it against the records
)

type sumKey struct{ store, date, terminal, item string }

// sumAcc accumulates the day_sums deltas of records of one store.
type sumAcc struct {
	store string
	m     map[sumKey]int64 // shared by the accumulators of one summarise call
}

func (a sumAcc) add(date, terminal, item string, v int64) {
	k := sumKey{a.store, date, terminal, item}
	s, ok := a.m[k]
	if !ok {
		a.m[k] = v
		return
	}
	if n := s + v; (v > 0 && n < s) || (v < 0 && n > s) {
		a.saturate(date, terminal) // the day goes slow: the value does not matter
	} else {
		a.m[k] = n
	}
}

func (a sumAcc) saturate(date, terminal string) {
	a.m[sumKey{a.store, date, terminal, sumAbs}] = math.MaxInt64
}

// money adds an amount to item and its magnitude to abs.
func (a sumAcc) money(date, terminal, item string, v int64) {
	a.add(date, terminal, item, v)
	if v == math.MinInt64 {
		a.saturate(date, terminal)
		return
	}
	k := sumKey{a.store, date, terminal, sumAbs}
	if m := a.m[k]; m > math.MaxInt64-max(v, -v) {
		a.saturate(date, terminal)
	} else {
		a.m[k] = m + max(v, -v)
	}
}

var dayKeyCols = []string{"key", "store", "business_date", "terminal", "kind", "receipt", "number", "epoch", "seq"}
var dayZCols = []string{"store", "business_date", "epoch", "seq"}

// summarise adds newly stored records (of one or many stores, each store's in apply order) to
// their days' summaries: the deltas are summed in memory and each day_sums row touched is
// upserted once.
func (s *DB) summarise(ctx context.Context, t tx, run []protocol.Record) error {
	if len(run) == 0 {
		return nil
	}
	var keyed, zs [][]any
	keys := make([]string, len(run)) // business keys of the records with a receipt
	for i := range run {
		r := &run[i]
		switch {
		case r.Kind == protocol.KindZReport:
			zs = append(zs, []any{r.Store, r.BusinessDate, r.Epoch, int64(r.Seq)})
		case r.Kind == protocol.KindXReport || r.Receipt == "":
		default:
			n, ok := protocol.ReceiptNumber(r.Receipt)
			if !ok {
				n = -1
			}
			keys[i] = r.BusinessKey()
			keyed = append(keyed, []any{keys[i], r.Store, r.BusinessDate, r.Terminal, string(r.Kind), r.Receipt, n, r.Epoch, int64(r.Seq)})
		}
	}
	if _, err := t.insertNew(ctx, "day_z", dayZCols, zs, "store, business_date, epoch, seq"); err != nil {
		return fmt.Errorf("summarise: %w", err)
	}
	added, err := t.insertNew(ctx, "day_keys", dayKeyCols, keyed, "key")
	if err != nil {
		return fmt.Errorf("summarise: %w", err)
	}
	first := make(map[string]bool, len(added)) // keys whose first capture is in run
	for _, k := range added {
		first[k] = true
	}
	sums := map[sumKey]int64{}
	for i := range run {
		r := &run[i]
		d, term, acc := r.BusinessDate, r.Terminal, sumAcc{r.Store, sums}
		acc.add(d, term, sumRows, 1)
		if r.Kind == protocol.KindZReport || r.Kind == protocol.KindXReport {
			continue
		}
		if r.Receipt != "" {
			k := keys[i]
			if !first[k] { // captured before (or twice in run): the close compares the records
				acc.add(d, term, sumSlow, 1)
				continue
			}
			delete(first, k)
		} else if r.Kind == protocol.KindReturn {
			acc.add(d, term, sumSlow, 1) // its original sale is checked on the records
		}
		acc.add(d, term, sumCount, 1)
		for _, tn := range r.Tenders {
			acc.money(d, term, sumTender+tn.Type, tn.Amount)
		}
		if r.Change != 0 && r.Change != math.MinInt64 {
			acc.money(d, term, sumTender+protocol.TenderCash, -r.Change)
		}
		if r.Kind == protocol.KindSale || r.Kind == protocol.KindReturn {
			for _, tx := range r.Taxes {
				acc.money(d, term, sumTax+tx.Code, tx.Amount)
			}
			acc.money(d, term, sumNet, r.Total)
			acc.add(d, term, sumPostable, 1)
			if r.Receipt != "" {
				acc.add(d, term, sumPKeys, 1)
			}
			if r.Kind == protocol.KindReturn {
				acc.add(d, term, sumReturns, 1)
			}
		}
	}
	return s.addSums(ctx, t, sums)
}

// daySumsChunk is how many rows one upsert carries at most (5 parameters each); see chunkAt.
const daySumsChunk = 256

// addSums upserts deltas into day_sums in key order (concurrent writers on PostgreSQL lock
// rows in the same order). A sum that would pass int64 is left as it was and saturates abs.
func (s *DB) addSums(ctx context.Context, t tx, acc map[sumKey]int64) error {
	keys := make([]sumKey, 0, len(acc))
	for k := range acc {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b sumKey) int {
		return cmp.Or(cmp.Compare(a.store, b.store), cmp.Compare(a.date, b.date), cmp.Compare(a.terminal, b.terminal), cmp.Compare(a.item, b.item))
	})
	for off, n := 0, 0; off < len(keys); off += n {
		n = chunkAt(off, len(keys), daySumsChunk)
		chunk := keys[off : off+n]
		args := make([]any, 0, 5*len(chunk))
		for _, k := range chunk {
			args = append(args, k.store, k.date, k.terminal, k.item, acc[k])
		}
		q := `INSERT INTO day_sums (store, business_date, terminal, item, amount) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?),", len(chunk)), ",") +
			` ON CONFLICT (store, business_date, terminal, item) DO UPDATE SET amount = CASE
				WHEN excluded.amount > 0 THEN CASE WHEN day_sums.amount > 9223372036854775807 - excluded.amount
					THEN CASE WHEN excluded.item = 'abs' THEN 9223372036854775807 ELSE day_sums.amount END
					ELSE day_sums.amount + excluded.amount END
				WHEN excluded.amount < 0 THEN CASE WHEN day_sums.amount < -9223372036854775807 - 1 - excluded.amount
					THEN day_sums.amount ELSE day_sums.amount + excluded.amount END
				ELSE day_sums.amount END`
		if _, err := t.exec(ctx, q, args...); err != nil {
			return fmt.Errorf("summarise: day sums: %w", err)
		}
	}
	return nil
}

// rebuildSummaries recomputes every store-day summary from the stored records, stream by
// stream in (creation, seq) order: the backfill of migration 0013 and RebuildDaySummaries.
func (s *DB) rebuildSummaries(ctx context.Context, t tx) error {
	for _, tbl := range []string{"day_keys", "day_z", "day_sums"} {
		if _, err := t.exec(ctx, `DELETE FROM `+tbl); err != nil {
			return fmt.Errorf("rebuild summaries: %w", err)
		}
	}
	rs, err := t.query(ctx, `SELECT store, epoch FROM streams ORDER BY id`)
	streams, err := scanAll(rs, err, func(r rows, v *[2]string) error { return r.Scan(&v[0], &v[1]) })
	if err != nil {
		return fmt.Errorf("rebuild summaries: streams: %w", err)
	}
	const chunk = 2000
	for _, st := range streams {
		for from := int64(0); ; {
			rs, err := t.query(ctx, `SELECT body FROM records WHERE store = ? AND epoch = ? AND seq > ? ORDER BY seq LIMIT ?`, st[0], st[1], from, chunk)
			recs, err := scanAll(rs, err, scanRecord)
			if err != nil {
				return fmt.Errorf("rebuild summaries of %s/%s: %w", st[0], st[1], err)
			}
			if len(recs) == 0 {
				break
			}
			if err := s.summarise(ctx, t, recs); err != nil {
				return fmt.Errorf("rebuild summaries of %s/%s: %w", st[0], st[1], err)
			}
			from = int64(recs[len(recs)-1].Seq)
		}
	}
	return nil
}

// RebuildDaySummaries recomputes every store-day summary from the stored records, in one
// write transaction (migration 0013 does it once; tests compare it with the kept summaries).
func (s *DB) RebuildDaySummaries(ctx context.Context) error {
	return s.write(ctx, func(t tx) error { return s.rebuildSummaries(ctx, t) })
}

// DaySum is one day_sums row.
type DaySum struct {
	Terminal, Item string
	Amount         int64
}

// DaySummary is what a close reads of a store-day when the summary accounts for it exactly
// (Exact); otherwise it must compare the records (DayRecords, DayPostings).
type DaySummary struct {
	Exact bool
	// Terminals: per terminal that has counted records, its sums.
	Terminals map[string]TerminalSums
	Gaps      map[string][][2]int64 // per terminal, receipt numbers missing
	// Z: the day's Z reports; Returns: its returns; Sales: the first capture of each sale a
	// return names. All in (stream creation, seq) order.
	Z, Returns, Sales []protocol.Record
	ERP               PostingSums
	// Unposted: the day's sales and returns with a receipt whose posting is missing or not
	// done, in (stream creation, seq) order; read only when the counts say some are.
	Unposted []UnpostedKey
}

// TerminalSums are a terminal's sums of a store-day.
type TerminalSums struct {
	Tenders, Taxes map[string]int64
	Net            int64
	Postable       int64
	PKeys          int64
}

// PostingSums are counts and the done total of a store-day's postings.
type PostingSums struct {
	Postings, Done, Pending, Rejected int
	Posted                            int64
}

// UnpostedKey is a sale or return whose posting is missing (Missing) or not done.
type UnpostedKey struct {
	Terminal, Receipt string
	Kind              protocol.Kind
	Missing           bool
	State             string
	Attempts          int
	LastError         string
}

// DaySummary reads a store-day's summary; withERP adds its postings' figures. Exact is false
// when the day has records the summary cannot account for (the close then reads the records).
// ErrNotFound for an unknown store.
func (s *DB) DaySummary(ctx context.Context, store, date string, withERP bool) (DaySummary, error) {
	var out DaySummary
	err := s.read(ctx, func(t tx) error {
		out = DaySummary{Terminals: map[string]TerminalSums{}, Gaps: map[string][][2]int64{}}
		if err := mustStore(ctx, t, store); err != nil {
			return err
		}
		exact, postable, returns, stored, err := readSums(ctx, t, store, date, &out)
		if err != nil || !exact {
			return err
		}
		// Records deleted or added behind the store's back (a restore, a repair) make the
		// summary stale: the close then compares the records.
		var n int64
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM `+s.d.recordsByDay+` WHERE r.store = ? AND r.business_date = ?`, store, date).Scan(&n); err != nil {
			return fmt.Errorf("count records: %w", err)
		}
		if n != stored {
			return nil
		}
		// The receipt numbers, in day_keys_day order: a covering index scan, gaps found here.
		rs, err := t.query(ctx, `SELECT terminal, number FROM day_keys WHERE store = ? AND business_date = ? AND number >= 0
			ORDER BY terminal, number`, store, date)
		numbers := map[string][]int64{}
		if err := each(rs, err, func(r rows) error {
			var term string
			var n int64
			err := r.Scan(&term, &n)
			numbers[term] = append(numbers[term], n)
			return err
		}); err != nil {
			return fmt.Errorf("receipt numbers: %w", err)
		}
		for term, ns := range numbers {
			if g := protocol.ReceiptGaps(ns); len(g) > 0 {
				out.Gaps[term] = g
			}
		}
		byOrder := ` JOIN records r ON r.store = k.store AND r.epoch = k.epoch AND r.seq = k.seq
			JOIN streams s ON s.store = k.store AND s.epoch = k.epoch`
		if rs, err = t.query(ctx, `SELECT r.body FROM day_z k`+byOrder+` WHERE k.store = ? AND k.business_date = ? ORDER BY s.id, k.seq`, store, date); err == nil {
			out.Z, err = scanAll(rs, err, scanRecord)
		}
		if err != nil {
			return fmt.Errorf("z reports: %w", err)
		}
		if returns > 0 {
			if rs, err = t.query(ctx, `SELECT r.body FROM day_keys k`+byOrder+` WHERE k.store = ? AND k.business_date = ? AND k.kind = ? ORDER BY s.id, k.seq`, store, date, string(protocol.KindReturn)); err == nil {
				out.Returns, err = scanAll(rs, err, scanRecord)
			}
			if err != nil {
				return fmt.Errorf("returns: %w", err)
			}
			seen := map[string]bool{}
			for _, r := range out.Returns {
				orig := protocol.Record{Store: store, Terminal: r.Terminal, BusinessDate: date, Receipt: r.OriginalReceipt, Kind: protocol.KindSale}
				if r.OriginalReceipt == "" || seen[orig.BusinessKey()] {
					continue
				}
				seen[orig.BusinessKey()] = true
				rs, err := t.query(ctx, `SELECT r.body FROM day_keys k`+byOrder+` WHERE k.key = ?`, orig.BusinessKey())
				sales, err := scanAll(rs, err, scanRecord)
				if err != nil {
					return fmt.Errorf("sale of return %s: %w", r.Receipt, err)
				}
				out.Sales = append(out.Sales, sales...)
			}
		}
		if !withERP {
			out.Exact = true
			return nil
		}
		return readPostingSums(ctx, t, store, date, postable, &out)
	})
	if err != nil {
		return DaySummary{}, fmt.Errorf("summary of %s on %s: %w", store, date, err)
	}
	return out, nil
}

// readSums reads the day's sums into out.Terminals; exact is false when the day is slow or a
// sum over its terminals could pass int64.
func readSums(ctx context.Context, t tx, store, date string, out *DaySummary) (exact bool, postable, returns, stored int64, err error) {
	rs, err := t.query(ctx, `SELECT terminal, item, amount FROM day_sums WHERE store = ? AND business_date = ?`, store, date)
	sums, err := scanAll(rs, err, func(r rows, v *DaySum) error { return r.Scan(&v.Terminal, &v.Item, &v.Amount) })
	if err != nil {
		return false, 0, 0, 0, fmt.Errorf("day sums: %w", err)
	}
	var abs int64
	for _, v := range sums {
		if v.Item == sumRows {
			stored += v.Amount
			continue
		}
		ts, ok := out.Terminals[v.Terminal]
		if !ok {
			ts = TerminalSums{Tenders: map[string]int64{}, Taxes: map[string]int64{}}
		}
		switch {
		case strings.HasPrefix(v.Item, sumTender):
			ts.Tenders[v.Item[len(sumTender):]] = v.Amount
		case strings.HasPrefix(v.Item, sumTax):
			ts.Taxes[v.Item[len(sumTax):]] = v.Amount
		case v.Item == sumNet:
			ts.Net = v.Amount
		case v.Item == sumPostable:
			ts.Postable = v.Amount
			postable += v.Amount
		case v.Item == sumPKeys:
			ts.PKeys = v.Amount
		case v.Item == sumReturns:
			returns += v.Amount
		case v.Item == sumSlow:
			if v.Amount != 0 {
				return false, 0, 0, 0, nil
			}
		case v.Item == sumAbs:
			if v.Amount < 0 || abs > math.MaxInt64-v.Amount || v.Amount == math.MaxInt64 {
				return false, 0, 0, 0, nil
			}
			abs += v.Amount
		}
		out.Terminals[v.Terminal] = ts
	}
	return true, postable, returns, stored, nil
}

// readPostingSums reads the day's posting counts and done total and, unless every sale and
// return counted (postable) has a done posting, the ones with a receipt that have not. Exact
// is left false when the done total could pass int64.
func readPostingSums(ctx context.Context, t tx, store, date string, postable int64, out *DaySummary) error {
	var n, done, rejected int
	var lo, hi, posted int64
	// Σ done totals is read with the bounds that say it cannot have passed int64 on the way
	// (if it did pass it, SQLite fails the query and PostgreSQL's numeric does not fit: the
	// close then sums the postings itself).
	err := t.queryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = ? THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN state = ? THEN 1 ELSE 0 END), 0),
			COALESCE(MIN(total), 0), COALESCE(MAX(total), 0), COALESCE(SUM(CASE WHEN state = ? THEN total ELSE 0 END), 0)
		FROM postings WHERE store = ? AND business_date = ? AND body IS NULL`, PostingDone, PostingRejected, PostingDone, store, date).
		Scan(&n, &done, &rejected, &lo, &hi, &posted)
	if err != nil {
		return nil // not exact: the close reads the postings (and meets any real error itself)
	}
	// Σ of up to n totals each within ±bound stays in int64 when n·bound does.
	if lo == math.MinInt64 || (n > 0 && max(hi, -lo) > math.MaxInt64/int64(n)) {
		return nil
	}
	out.ERP = PostingSums{Postings: n, Done: done, Rejected: rejected, Pending: n - done - rejected, Posted: posted}
	// The day's postings are at most one per sale and return counted (the first capture of a
	// receipt, each one without a receipt): as many, all done, means none is missing.
	if int64(n) != postable || done != n {
		rs, err := t.query(ctx, `SELECT k.terminal, k.receipt, k.kind, p.key IS NULL, COALESCE(p.state, ''), COALESCE(p.attempts, 0), COALESCE(p.last_error, '')
			FROM day_keys k JOIN streams s ON s.store = k.store AND s.epoch = k.epoch
			LEFT JOIN postings p ON p.key = k.key
			WHERE k.store = ? AND k.business_date = ? AND k.kind IN (?, ?) AND (p.key IS NULL OR p.state <> ?)
			ORDER BY s.id, k.seq`, store, date, string(protocol.KindSale), string(protocol.KindReturn), PostingDone)
		out.Unposted, err = scanAll(rs, err, func(r rows, u *UnpostedKey) error {
			var kind string
			err := r.Scan(&u.Terminal, &u.Receipt, &kind, &u.Missing, &u.State, &u.Attempts, &u.LastError)
			u.Kind = protocol.Kind(kind)
			return err
		})
		if err != nil {
			return fmt.Errorf("unposted: %w", err)
		}
	}
	out.Exact = true
	return nil
}
