package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// Defaults for list limits.
const (
	defaultRecordsLimit    = 1000
	defaultExceptionsLimit = 1000
)

// Exception states.
const (
	StateOpen         = "open"
	StateAcknowledged = "acknowledged"
	StateResolved     = "resolved"
	// StateReposted closes an erp_rejected exception whose posting was queued again.
	StateReposted = "reposted"
)

// checkBatch validates what ApplyBatch needs of its arguments: one (store, epoch), seq >= 1,
// ascending and contiguous. It does not recompute hashes (the wire decoder did).
func checkBatch(store, epoch string, recs []protocol.Record) error {
	if err := protocol.ValidateStoreID(store); err != nil {
		return fmt.Errorf("%w: %w", ErrBadBatch, err)
	}
	if epoch == "" {
		return fmt.Errorf("%w: empty epoch", ErrBadBatch)
	}
	for i := range recs {
		r := &recs[i]
		if r.Store != store || r.Epoch != epoch {
			return fmt.Errorf("%w: records[%d] is %s/%s, batch is %s/%s", ErrBadBatch, i, r.Store, r.Epoch, store, epoch)
		}
		if r.Seq == 0 || r.Seq > 1<<62 {
			return fmt.Errorf("%w: records[%d] has seq %d", ErrBadBatch, i, r.Seq)
		}
		if r.Hash == "" {
			return fmt.Errorf("%w: records[%d] (seq %d) has no hash", ErrBadBatch, i, r.Seq)
		}
		if i > 0 && r.Seq != recs[i-1].Seq+1 {
			return fmt.Errorf("%w: records[%d] has seq %d after %d", ErrBadBatch, i, r.Seq, recs[i-1].Seq)
		}
	}
	return nil
}

// marshalBodies encodes every record once, before a write transaction starts, so the
// transaction holds its locks for as short a time as possible.
func marshalBodies(recs []protocol.Record) ([][]byte, error) {
	out := make([][]byte, len(recs))
	for i := range recs {
		if recs[i].Wire != nil {
			out[i] = recs[i].Wire // exactly what the agent sent (and what its hash covers)
			continue
		}
		b, err := json.Marshal(&recs[i])
		if err != nil {
			return nil, fmt.Errorf("encode record seq %d: %w", recs[i].Seq, err)
		}
		out[i] = b
	}
	return out, nil
}

// planApply is the part of ApplyBatch both implementations share. Given progress p and the
// stored hashes of the batch's records at or below p, it classifies the batch: duplicates,
// conflicts (seqs whose stored hash differs), and the index of the first record to insert
// (len(recs) when none); resendFrom is non-zero for a gap.
type applyPlan struct {
	duplicates int
	conflicts  []conflict
	insertFrom int
	resendFrom uint64
}

type conflict struct {
	seq             uint64
	stored, offered string
}

func planApply(epoch string, recs []protocol.Record, p uint64, stored map[uint64]string) (applyPlan, error) {
	var pl applyPlan
	pl.insertFrom = len(recs)
	for i := range recs {
		r := &recs[i]
		if r.Seq <= p {
			h, ok := stored[r.Seq]
			if !ok {
				return pl, fmt.Errorf("%w: stream %s applied through %d but seq %d is not stored", ErrCorrupt, epoch, p, r.Seq)
			}
			if h == r.Hash {
				pl.duplicates++
			} else {
				pl.conflicts = append(pl.conflicts, conflict{seq: r.Seq, stored: h, offered: r.Hash})
			}
			continue
		}
		if r.Seq > p+1 {
			pl.resendFrom = p + 1
			return pl, nil
		}
		pl.insertFrom = i
		return pl, nil
	}
	return pl, nil
}

func conflictException(store, epoch string, c conflict) Exception {
	return Exception{
		Store:  store,
		Reason: ReasonHashConflict,
		Key:    epoch + ":" + strconv.FormatUint(c.seq, 10),
		Detail: fmt.Sprintf("epoch %s seq %d was stored with hash %s and arrived again with hash %s; the stored record was kept", epoch, c.seq, c.stored, c.offered),
		State:  StateOpen,
	}
}

// normException fills defaults and checks an exception before it is raised.
func normException(e *Exception, now time.Time) error {
	if e.Reason == "" {
		return fmt.Errorf("raise exception: empty reason")
	}
	if e.State == "" {
		e.State = StateOpen
	}
	if !validState(e.State) {
		return fmt.Errorf("raise exception: unknown state %q", e.State)
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	e.CreatedAt = normTime(e.CreatedAt)
	e.UpdatedAt = e.CreatedAt
	return nil
}

func validState(s string) bool {
	return s == StateOpen || s == StateAcknowledged || s == StateResolved || s == StateReposted
}

// normTime is the precision both backends keep: UTC microseconds.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// receiptKinds are the kinds whose receipt numbers form a terminal's numbering.
var receiptKinds = map[protocol.Kind]bool{
	protocol.KindSale: true, protocol.KindReturn: true, protocol.KindVoid: true,
	protocol.KindNoSale: true, protocol.KindPaidIn: true, protocol.KindPaidOut: true,
}

// receiptNumber parses an all-digit receipt ("000123") of at most 18 digits.
func receiptNumber(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
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
		kt.Total += r.total

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
		if n, ok := receiptNumber(r.receipt); ok {
			if _, seen := ta.byNumber[n]; !seen {
				ta.byNumber[n] = r.receipt
				ta.numbers = append(ta.numbers, n)
			}
		}
	}
	for _, kt := range kinds {
		d.Kinds = append(d.Kinds, *kt)
	}
	slices.SortFunc(d.Kinds, func(a, b KindTotal) int {
		ia, ib := slices.Index(protocol.Kinds, a.Kind), slices.Index(protocol.Kinds, b.Kind)
		if ia != ib {
			// Unknown kinds (index -1) sort last.
			if ia < 0 {
				return 1
			}
			if ib < 0 {
				return -1
			}
			return ia - ib
		}
		if a.Kind < b.Kind {
			return -1
		}
		if a.Kind > b.Kind {
			return 1
		}
		return 0
	})
	for _, ta := range terms {
		if len(ta.numbers) == 0 {
			ta.day.FirstReceipt, ta.day.LastReceipt = ta.firstSeq, ta.lastSeq
		} else {
			slices.Sort(ta.numbers)
			ta.day.FirstReceipt = ta.byNumber[ta.numbers[0]]
			ta.day.LastReceipt = ta.byNumber[ta.numbers[len(ta.numbers)-1]]
			for i := 1; i < len(ta.numbers); i++ {
				if prev, cur := ta.numbers[i-1], ta.numbers[i]; cur > prev+1 {
					ta.day.Gaps = append(ta.day.Gaps, [2]int64{prev + 1, cur - 1})
				}
			}
		}
		d.Terminals = append(d.Terminals, ta.day)
	}
	slices.SortFunc(d.Terminals, func(a, b TerminalDay) int {
		switch {
		case a.Terminal < b.Terminal:
			return -1
		case a.Terminal > b.Terminal:
			return 1
		}
		return 0
	})
	return d
}

func decodeRecord(body []byte) (protocol.Record, error) {
	var r protocol.Record
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("decode stored record: %w", err)
	}
	return r, nil
}

func decodeStatus(body []byte) (*protocol.Status, error) {
	var s protocol.Status
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("decode stored status: %w", err)
	}
	return &s, nil
}
