// Package reconcile closes a store's business day three ways: (a) the Z reports the terminals
// printed, (b) the sum of the captured transactions, per tender type and per tax code to the
// cent, and (c) what the ERP outbox shows as posted. Every disagreement becomes an exception
// with a reason code; a day without any closes as "closed".
//
// Receipt-number gaps are first sent to the agent as a replay command
// (lanebridge/v1/{store}/down/commands); the close waits for the agent's CommandResult and the
// replayed records, and raises missing_receipts only for what is still missing.
//
// A close reads the store-day's summary kept at apply time (store.DB.DaySummary, migration
// 0013: sums per terminal, tender and tax, receipt numbers, Z reports, returns and the sales
// they name, posting counts) and decodes only the Z reports, returns and their sales; a day the
// summary cannot account for exactly (a recaptured receipt, a return without a receipt, a sum
// that could pass int64, records lost or added behind the store's back) is compared record by
// record, as before (Closer.NoSummary forces that path).
//
// Caveats: a return's original sale is looked up in the same business day only.
package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"log/slog"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// Reason codes.
const (
	ReasonMissingReceipts       = "missing_receipts"
	ReasonZMismatchTender       = "z_mismatch_tender"
	ReasonZMismatchTax          = "z_mismatch_tax"
	ReasonERPMismatch           = "erp_mismatch"
	ReasonDuplicateReceipt      = store.ReasonDuplicateReceipt
	ReasonReturnUnknownOriginal = "return_unknown_original"
	ReasonReturnExceedsSale     = "return_exceeds_sale"
	ReasonNoZReport             = "no_z_report"
	ReasonPostingMissing        = "posting_missing"
	ReasonSumOverflow           = "day_sum_overflow"
)

// Close states.
const (
	StateClosed     = "closed"
	StateExceptions = "exceptions"
)

// Issue is one disagreement found by a close.
type Issue struct {
	Reason   string `json:"reason"`
	Terminal string `json:"terminal,omitempty"`
	Key      string `json:"key"`
	Detail   string `json:"detail"`
}

// Totals are per-tender and per-tax sums in minor units.
type Totals struct {
	Tenders map[string]int64 `json:"tenders"`
	Taxes   map[string]int64 `json:"taxes"`
	Net     int64            `json:"net"` // Σ totals of sales and returns (tax included)
}

func newTotals() Totals { return Totals{Tenders: map[string]int64{}, Taxes: map[string]int64{}} }

// ERPSide is what the outbox shows for the day.
type ERPSide struct {
	Postable int   `json:"postable"` // sales and returns captured
	Postings int   `json:"postings"`
	Done     int   `json:"done"`
	Pending  int   `json:"pending"`
	Rejected int   `json:"rejected"`
	Posted   int64 `json:"posted_total"`   // Σ totals of done postings
	Captured int64 `json:"captured_total"` // Σ totals of captured sales and returns
	// Skipped: the hub has no ERP (erp.kind none); nothing is posted and nothing compared.
	Skipped bool `json:"skipped,omitempty"`
}

// Result is the stored three-way comparison of a store-day.
type Result struct {
	Store        string                `json:"store"`
	BusinessDate string                `json:"business_date"`
	State        string                `json:"state"`
	ClosedAt     time.Time             `json:"closed_at"`
	Z            map[string]Totals     `json:"z"`        // per terminal, from its Z report
	Captured     map[string]Totals     `json:"captured"` // per terminal, from transactions
	ERP          ERPSide               `json:"erp"`
	Gaps         map[string][][2]int64 `json:"gaps,omitempty"`
	Replays      []string              `json:"replay_commands,omitempty"`
	Issues       []Issue               `json:"issues"`
}

// Compare is the pure three-way comparison of a store-day's records and postings. zDue says
// whether Z reports are due by now (no_z_report is raised only then).
func Compare(storeID, date string, recs []protocol.Record, postings []store.Posting, zDue bool) Result {
	return compare(storeID, date, recs, postings, zDue, true)
}

// CompareNoERP is Compare for a hub without an ERP (erp.kind none): nothing is posted, so the
// ERP leg is skipped (ERP.Skipped) and raises nothing.
func CompareNoERP(storeID, date string, recs []protocol.Record, zDue bool) Result {
	return compare(storeID, date, recs, nil, zDue, false)
}

func compare(storeID, date string, recs []protocol.Record, postings []store.Posting, zDue, withERP bool) Result {
	res := Result{Store: storeID, BusinessDate: date, Z: map[string]Totals{}, Captured: map[string]Totals{}, Gaps: map[string][][2]int64{}, Issues: []Issue{}}
	issue := func(reason, term, key, format string, a ...any) {
		res.Issues = append(res.Issues, Issue{Reason: reason, Terminal: term, Key: date + "|" + term + "|" + key, Detail: fmt.Sprintf(format, a...)})
	}
	// seen is the first record of a business key; its content hash is computed only when the
	// key comes again (hashing every record costs more than the rest of the comparison).
	type seen struct {
		r    *protocol.Record
		hash string
	}
	// add sums money, noting (once per sum) a sum that would leave int64: the sum is then not
	// kept and the day cannot close clean.
	overflow := map[string]bool{}
	add := func(what string, dst *int64, v int64) {
		if s := *dst + v; (v > 0 && s < *dst) || (v < 0 && s > *dst) {
			overflow[what] = true
		} else {
			*dst = s
		}
	}
	addTo := func(what string, m map[string]int64, k string, v int64) {
		s := m[k]
		add(what+" "+k, &s, v)
		m[k] = s
	}
	byKey := map[string]*seen{}
	var keys []string                      // byKey's keys in record order
	sales := map[string]*protocol.Record{} // terminal|receipt → sale
	numbers := map[string][]int64{}
	active := map[string]bool{}
	var returns []*protocol.Record
	for i := range recs {
		r := &recs[i]
		if r.BusinessDate != date {
			continue
		}
		t := r.Terminal
		if r.Kind == protocol.KindZReport {
			zReport(&res, r, addTo)
			continue
		}
		if r.Kind == protocol.KindXReport {
			continue
		}
		active[t] = true
		if r.Receipt != "" {
			k := r.BusinessKey()
			if prev, ok := byKey[k]; ok {
				if prev.hash == "" {
					prev.hash = prev.r.ContentHash()
				}
				if prev.hash != r.ContentHash() {
					issue(ReasonDuplicateReceipt, t, r.Receipt+"|"+string(r.Kind), "receipt %s (%s) captured as seq %d and seq %d with different content", r.Receipt, r.Kind, prev.r.Seq, r.Seq)
				}
				continue // the same receipt twice counts once
			}
			byKey[k] = &seen{r: r}
			keys = append(keys, k)
			if n, ok := protocol.ReceiptNumber(r.Receipt); ok {
				numbers[t] = append(numbers[t], n)
			}
		}
		ct, ok := res.Captured[t]
		if !ok {
			ct = newTotals()
		}
		for _, tn := range r.Tenders {
			addTo("terminal "+t+" tender", ct.Tenders, tn.Type, tn.Amount)
		}
		if r.Change != 0 && r.Change != -1<<63 {
			addTo("terminal "+t+" tender", ct.Tenders, protocol.TenderCash, -r.Change)
		}
		if r.Kind == protocol.KindSale || r.Kind == protocol.KindReturn {
			for _, tx := range r.Taxes {
				addTo("terminal "+t+" tax", ct.Taxes, tx.Code, tx.Amount)
			}
			add("terminal "+t+" net", &ct.Net, r.Total)
			res.ERP.Postable++
			add("captured total", &res.ERP.Captured, r.Total)
		}
		res.Captured[t] = ct
		switch r.Kind {
		case protocol.KindSale:
			sales[t+"|"+r.Receipt] = r
		case protocol.KindReturn:
			returns = append(returns, r)
		}
	}
	// Receipt gaps per terminal.
	for t, ns := range numbers {
		if g := protocol.ReceiptGaps(ns); len(g) > 0 {
			res.Gaps[t] = g
		}
	}
	dayIssues(&res, date, active, sales, returns, zDue, issue)
	if !withERP {
		res.ERP.Skipped = true
		overflowIssues(overflow, issue)
		return finish(res)
	}
	// ERP side: one done posting per sale and return, totals equal.
	have := map[string]store.Posting{}
	for _, p := range postings {
		if p.BusinessDate != date {
			continue
		}
		have[p.Key] = p
		res.ERP.Postings++
		switch p.State {
		case store.PostingDone:
			res.ERP.Done++
			add("posted total", &res.ERP.Posted, p.Total)
		case store.PostingRejected:
			res.ERP.Rejected++
		default:
			res.ERP.Pending++
		}
	}
	for _, k := range keys {
		r := byKey[k].r // the first record of the key, as the outbox keeps it
		if !store.Postable(r.Kind) {
			continue
		}
		p, ok := have[k]
		switch {
		case !ok:
			issue(ReasonPostingMissing, r.Terminal, r.Receipt+"|"+string(r.Kind), "%s receipt %s has no posting in the outbox", r.Kind, r.Receipt)
		case p.State != store.PostingDone:
			issue(ReasonPostingMissing, r.Terminal, r.Receipt+"|"+string(r.Kind), "%s receipt %s is not posted yet (%s, attempts %d: %s)", r.Kind, r.Receipt, p.State, p.Attempts, p.LastError)
		}
	}
	erpIssues(&res, issue)
	overflowIssues(overflow, issue)
	return finish(res)
}

// erpIssues raises erp_mismatch when every posting is done but the totals differ.
func erpIssues(res *Result, issue func(reason, term, key, format string, a ...any)) {
	if res.ERP.Done == res.ERP.Postable && res.ERP.Posted != res.ERP.Captured {
		issue(ReasonERPMismatch, "", "total", "ERP posted %s, captured %s", money(res.ERP.Posted), money(res.ERP.Captured))
	}
}

// zReport keeps a Z report's totals as its terminal's (the last one in record order wins).
func zReport(res *Result, r *protocol.Record, addTo func(what string, m map[string]int64, k string, v int64)) {
	if r.Z == nil {
		return
	}
	t := r.Terminal
	zt := newTotals()
	for _, tt := range r.Z.Tenders {
		addTo("terminal "+t+" Z tender", zt.Tenders, tt.Type, tt.Amount)
	}
	for _, tx := range r.Z.Taxes {
		addTo("terminal "+t+" Z tax", zt.Taxes, tx.Code, tx.Amount)
	}
	zt.Net = r.Z.Net
	res.Z[t] = zt
}

// dayIssues raises the issues of res.Gaps, of the Z reports against the captured totals of
// the active terminals, and of the returns against their original sales (terminal|receipt →
// first capture of the sale).
func dayIssues(res *Result, date string, active map[string]bool, sales map[string]*protocol.Record, returns []*protocol.Record, zDue bool, issue func(reason, term, key, format string, a ...any)) {
	for _, t := range sortedKeys(res.Gaps) {
		for _, g := range res.Gaps[t] {
			issue(ReasonMissingReceipts, t, fmt.Sprintf("%d-%d", g[0], g[1]), "terminal %s: receipts %d..%d missing (the agent could not replay them)", t, g[0], g[1])
		}
	}
	// Z against captured, per terminal, to the cent.
	for _, t := range sortedKeys(active) {
		z, ok := res.Z[t]
		if !ok {
			if zDue {
				issue(ReasonNoZReport, t, "z", "terminal %s has transactions on %s but no Z report", t, date)
			}
			continue
		}
		c := res.Captured[t]
		for _, k := range unionKeys(z.Tenders, c.Tenders) {
			if z.Tenders[k] != c.Tenders[k] {
				issue(ReasonZMismatchTender, t, k, "terminal %s tender %s: Z report %s, captured %s", t, k, money(z.Tenders[k]), money(c.Tenders[k]))
			}
		}
		for _, k := range unionKeys(z.Taxes, c.Taxes) {
			if z.Taxes[k] != c.Taxes[k] {
				issue(ReasonZMismatchTax, t, k, "terminal %s tax %s: Z report %s, captured %s", t, k, money(z.Taxes[k]), money(c.Taxes[k]))
			}
		}
	}
	// Returns against their original sales.
	returned := map[string]map[string]*big.Rat{} // sale → sku → quantity returned
	for _, r := range returns {
		orig := sales[r.Terminal+"|"+r.OriginalReceipt]
		if r.OriginalReceipt == "" || orig == nil {
			issue(ReasonReturnUnknownOriginal, r.Terminal, r.Receipt, "return %s on terminal %s names original receipt %q, not a sale of that terminal on %s", r.Receipt, r.Terminal, r.OriginalReceipt, date)
			continue
		}
		k := r.Terminal + "|" + r.OriginalReceipt
		if returned[k] == nil {
			returned[k] = map[string]*big.Rat{}
		}
		sold := map[string]*big.Rat{}
		for _, l := range orig.Lines {
			if !l.Voided {
				addQty(sold, l.SKU, l.Quantity, false)
			}
		}
		for _, l := range r.Lines {
			if l.Voided {
				continue
			}
			addQty(returned[k], l.SKU, l.Quantity, true)
			if s := sold[l.SKU]; s == nil || returned[k][l.SKU].Cmp(s) > 0 {
				issue(ReasonReturnExceedsSale, r.Terminal, r.Receipt+"|"+l.SKU, "return %s returns %s of sku %s in total, sale %s sold %s", r.Receipt, returned[k][l.SKU].FloatString(3), l.SKU, orig.Receipt, ratString(s))
			}
		}
	}
}

// overflowIssues raises one issue per sum that would have overflowed.
func overflowIssues(overflow map[string]bool, issue func(reason, term, key, format string, a ...any)) {
	for _, what := range sortedKeys(overflow) {
		issue(ReasonSumOverflow, "", what, "the day's %s would pass ±9.2·10^18 minor units: records beyond it are not summed; check the store's records", what)
	}
}

func finish(res Result) Result {
	sort.SliceStable(res.Issues, func(i, j int) bool { return res.Issues[i].Reason < res.Issues[j].Reason })
	res.State = StateClosed
	if len(res.Issues) > 0 {
		res.State = StateExceptions
	}
	return res
}

func addQty(m map[string]*big.Rat, sku, q string, abs bool) {
	r, ok := new(big.Rat).SetString(q)
	if !ok {
		return
	}
	if abs {
		r.Abs(r)
	}
	if m[sku] == nil {
		m[sku] = new(big.Rat)
	}
	m[sku].Add(m[sku], r)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "0"
	}
	return r.FloatString(3)
}

func money(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func unionKeys(a, b map[string]int64) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return sortedKeys(m)
}

// MissingReceipts returns the business date, terminal and receipt range of a missing_receipts
// exception, from the key the close gives it; ok is false for any other exception.
func MissingReceipts(e store.Exception) (date, terminal string, gap [2]int64, ok bool) {
	date, rest, ok1 := strings.Cut(e.Key, "|")
	i := strings.LastIndexByte(rest, '|')
	if e.Reason != ReasonMissingReceipts || !ok1 || i < 0 {
		return "", "", gap, false
	}
	from, to, ok2 := strings.Cut(rest[i+1:], "-")
	a, err1 := strconv.ParseInt(from, 10, 64)
	b, err2 := strconv.ParseInt(to, 10, 64)
	if !ok2 || err1 != nil || err2 != nil || a < 0 || b < a {
		return "", "", gap, false
	}
	return date, rest[:i], [2]int64{a, b}, true
}

// Publisher sends a command to an agent (QoS 1).
type Publisher interface {
	Publish(topic string, payload []byte) error
}

// DayReader is what a close reads of a store-day: its records and postings; and the stores
// to close.
type DayReader interface {
	ListStores(ctx context.Context) ([]store.StoreInfo, error)
	// GetStore returns store.ErrNotFound for an unknown store.
	GetStore(ctx context.Context, id string) (store.StoreInfo, error)
	// DayRecords returns a store-day's records, all epochs, in (stream creation, seq) order
	// (store.ErrNotFound for an unknown store).
	DayRecords(ctx context.Context, store, businessDate string) ([]protocol.Record, error)
	// DayPostings returns a store-day's postings (Key, BusinessDate, State, Total, Attempts
	// and LastError are what a close reads).
	DayPostings(ctx context.Context, store, businessDate string) ([]store.Posting, error)
}

// CloseLog keeps the latest close of each store-day.
type CloseLog interface {
	PutClose(ctx context.Context, c store.CloseRecord) error
	// GetClose returns store.ErrNotFound when the day was never closed.
	GetClose(ctx context.Context, store, businessDate string) (store.CloseRecord, error)
}

// CommandLog keeps the replay commands a close sends and the agents' results.
type CommandLog interface {
	// AddCommand records a command before it is published.
	AddCommand(ctx context.Context, store string, c protocol.Command) error
	Command(ctx context.Context, id string) (store.CommandRecord, error)
}

// Store is what a Closer needs of the hub's store. It has nine methods because a close reads
// the day (DayReader), replays gaps (CommandLog), raises its issues (RaiseException) and stores
// its result (CloseLog).
type Store interface {
	DayReader
	CloseLog
	CommandLog
	// RaiseException creates an open exception or coalesces into the one of the same
	// (store, reason, key); a resolved one stays resolved.
	RaiseException(ctx context.Context, e store.Exception) (bool, error)
}

// Closer runs closes against the hub's store.
type Closer struct {
	St         Store
	Pub        Publisher     // nil: no replay commands
	Log        *slog.Logger  // nil discards
	ReplayWait time.Duration // how long to wait for a replay (default 30 s)
	// ZDue reports whether Z reports of date are due at now, given in the store's zone
	// (default: always).
	ZDue func(date string, now time.Time) bool
	// Location is a store's time zone, in which its business days and Z deadline are read
	// (nil, or a nil result: the hub's local zone).
	Location func(ctx context.Context, store string) *time.Location
	// Now is the clock of the Z deadline (nil: time.Now).
	Now func() time.Time
	// NoERP skips the ERP leg (erp.kind none: nothing is posted).
	NoERP bool
	// NoSummary compares the day's records even when the store keeps day summaries
	// (SummaryReader): the reference path the summary is tested against.
	NoSummary bool
}

// dayRecords reads every record of the store-day, all epochs, through the store's
// business-date index: its cost does not grow with the history the store keeps.
func (c *Closer) dayRecords(ctx context.Context, storeID, date string) ([]protocol.Record, error) {
	return c.St.DayRecords(ctx, storeID, date)
}

func (c *Closer) compare(ctx context.Context, storeID, date string) (Result, error) {
	due := true
	if c.ZDue != nil {
		now := clock.Now
		if c.Now != nil {
			now = c.Now
		}
		due = c.ZDue(date, now().In(c.location(ctx, storeID)))
	}
	if sr, ok := c.St.(SummaryReader); ok && !c.NoSummary {
		sum, err := sr.DaySummary(ctx, storeID, date, !c.NoERP)
		if err != nil {
			return Result{}, err
		}
		if sum.Exact {
			return CompareSummary(storeID, date, sum, due, !c.NoERP), nil
		}
	}
	recs, err := c.dayRecords(ctx, storeID, date)
	if err != nil {
		return Result{}, err
	}
	if c.NoERP {
		return CompareNoERP(storeID, date, recs, due), nil
	}
	ps, err := c.St.DayPostings(ctx, storeID, date)
	if err != nil {
		return Result{}, err
	}
	return Compare(storeID, date, recs, ps, due), nil
}

// CloseDay runs the close of a store-day: compare; for receipt gaps send replay commands and
// wait for them; compare again; store the result and raise an exception per issue.
func (c *Closer) CloseDay(ctx context.Context, storeID, date string) (any, error) {
	return c.Close(ctx, storeID, date)
}

// Close is CloseDay with a typed result.
func (c *Closer) Close(ctx context.Context, storeID, date string) (Result, error) {
	log := c.logger()
	res, err := c.compare(ctx, storeID, date)
	if err != nil {
		return res, fmt.Errorf("close %s/%s: %w", storeID, date, err)
	}
	if len(res.Gaps) > 0 && c.Pub != nil {
		ids, err := c.replay(ctx, storeID, date, res.Gaps)
		if err != nil {
			log.Warn("replay request failed", "store", storeID, "date", date, "err", err)
		}
		if len(ids) > 0 {
			c.await(ctx, ids)
			if res, err = c.compare(ctx, storeID, date); err != nil {
				return res, fmt.Errorf("close %s/%s: %w", storeID, date, err)
			}
			res.Replays = ids
		}
	}
	res.ClosedAt = clock.Now().UTC()
	for _, is := range res.Issues {
		if _, err := c.St.RaiseException(ctx, store.Exception{Store: storeID, Reason: is.Reason, Key: is.Key, Detail: is.Detail}); err != nil {
			return res, fmt.Errorf("close %s/%s: %w", storeID, date, err)
		}
	}
	body, err := json.Marshal(res)
	if err != nil {
		return res, err
	}
	if err := c.St.PutClose(ctx, store.CloseRecord{Store: storeID, BusinessDate: date, State: res.State, Body: body, ClosedAt: res.ClosedAt}); err != nil {
		return res, fmt.Errorf("close %s/%s: %w", storeID, date, err)
	}
	log.Info("store-day closed", "store", storeID, "date", date, "state", res.State, "issues", len(res.Issues))
	return res, nil
}

func (c *Closer) location(ctx context.Context, storeID string) *time.Location {
	if c.Location != nil {
		if loc := c.Location(ctx, storeID); loc != nil {
			return loc
		}
	}
	return time.Local
}

func (c *Closer) logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// ClosedDay returns the stored result of the latest close.
func (c *Closer) ClosedDay(ctx context.Context, storeID, date string) (any, error) {
	cr, err := c.St.GetClose(ctx, storeID, date)
	if err != nil {
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(cr.Body, &res); err != nil {
		return nil, fmt.Errorf("close %s/%s: decode: %w", storeID, date, err)
	}
	return res, nil
}

func (c *Closer) replay(ctx context.Context, storeID, date string, gaps map[string][][2]int64) ([]string, error) {
	var ids []string
	for _, t := range sortedKeys(gaps) {
		for _, g := range gaps[t] {
			id, err := c.Replay(ctx, storeID, protocol.Command{Terminal: t, BusinessDate: date, FromReceipt: g[0], ToReceipt: g[1]})
			if err != nil {
				return ids, err
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Replay records a replay command for a store's agent and publishes it: cmd names the terminal,
// business date and receipt range (or epoch and seq range); Replay fills in the version, type
// and a fresh id, which it returns.
func (c *Closer) Replay(ctx context.Context, storeID string, cmd protocol.Command) (string, error) {
	if c.Pub == nil {
		return "", errors.New("replay: the hub has no broker connection to send commands on")
	}
	b := make([]byte, 6)
	rand.Read(b)
	cmd.V, cmd.ID, cmd.Type = protocol.Version, "replay-"+hex.EncodeToString(b), protocol.CommandReplay
	if err := c.St.AddCommand(ctx, storeID, cmd); err != nil {
		return "", err
	}
	payload, _ := json.Marshal(cmd)
	if err := c.Pub.Publish(protocol.CommandsTopic(storeID), payload); err != nil {
		return "", fmt.Errorf("replay: publish: %w", err)
	}
	return cmd.ID, nil
}

// await waits until every command has a result (and a moment for its replay batch to be
// applied) or ReplayWait passes.
func (c *Closer) await(ctx context.Context, ids []string) {
	wait := c.ReplayWait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		all := true
		for _, id := range ids {
			cr, err := c.St.Command(ctx, id)
			if err != nil || cr.Result == nil {
				all = false
				break
			}
		}
		if all {
			// The agent reports the result with its replay batch in flight; give ingest a moment.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ZDueBy reports Z reports of a business date as due once the time of day by ("01:00", valid
// HH:MM) has passed on the following day, in the zone of now.
func ZDueBy(by string) func(date string, now time.Time) bool {
	at, _ := time.Parse("15:04", by)
	return func(date string, now time.Time) bool {
		d, err := time.ParseInLocation(time.DateOnly, date, now.Location())
		if err != nil {
			return true
		}
		due := time.Date(d.Year(), d.Month(), d.Day()+1, at.Hour(), at.Minute(), 0, 0, now.Location())
		return !now.Before(due)
	}
}

// ErrBadTime is returned by NewSchedule for a time of day that is not HH:MM.
var ErrBadTime = errors.New("time of day is not HH:MM")

// Scheduler closes the previous business day of every store once a day at At, in the store's
// zone (Closer.Location).
type Scheduler struct {
	C  *Closer
	At string // "02:00"
	// Every is how often stores are checked for a day due (default 1m).
	Every time.Duration
	// Workers is how many store-days are closed at once (default 2): a close is mostly
	// reading and decoding the day's records, which runs in parallel on the store's read
	// connections; its writes (exceptions, the result) go through the store's writer.
	Workers int
	tried   map[[2]string]bool // store-days closed or tried by this process
}

// Run closes days until ctx ends. A day already closed is not closed again automatically, and
// a close that failed is not retried by the scheduler (the API can run it).
func (s *Scheduler) Run(ctx context.Context) error {
	at, err := time.Parse("15:04", s.At)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadTime, s.At)
	}
	every := s.Every
	if every <= 0 {
		every = time.Minute
	}
	s.tried = map[[2]string]bool{}
	for {
		s.closeDue(ctx, at, clock.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// closeDue closes, for each store whose local time is past at, its previous day.
func (s *Scheduler) closeDue(ctx context.Context, at, now time.Time) {
	stores, err := s.C.St.ListStores(ctx)
	if err != nil {
		return
	}
	var due [][2]string
	for _, st := range stores {
		local := now.In(s.C.location(ctx, st.ID))
		dueAt := time.Date(local.Year(), local.Month(), local.Day(), at.Hour(), at.Minute(), 0, 0, local.Location())
		key := [2]string{st.ID, local.AddDate(0, 0, -1).Format(time.DateOnly)}
		if local.Before(dueAt) || s.tried[key] {
			continue
		}
		s.tried[key] = true
		due = append(due, key)
	}
	s.C.CloseDays(ctx, due, s.Workers, true)
}

// CloseDays closes the given (store, business date) pairs with workers closes at once
// (default 2), skipping a day already closed when skipClosed is set. A failed close is logged
// and does not stop the others.
func (c *Closer) CloseDays(ctx context.Context, days [][2]string, workers int, skipClosed bool) {
	if workers <= 0 {
		workers = 2
	}
	work := make(chan [2]string)
	var wg sync.WaitGroup
	for range min(workers, len(days)) {
		wg.Go(func() {
			for d := range work {
				if skipClosed {
					if _, err := c.St.GetClose(ctx, d[0], d[1]); err == nil {
						continue
					}
				}
				if _, err := c.Close(ctx, d[0], d[1]); err != nil {
					c.logger().Warn("close failed", "store", d[0], "date", d[1], "err", err)
				}
			}
		})
	}
	for _, d := range days {
		if ctx.Err() != nil {
			break
		}
		work <- d
	}
	close(work)
	wg.Wait()
}
