package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"maps"
	"slices"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// Availability to sell (package availability computes the figures; this file keeps their inputs).
//
// Per store and SKU the store keeps three exact quantities, changed incrementally in the
// transaction that changes what they count, never by scanning history:
//   - on_hand: the ERP's on-hand as last pulled (PutERPStock);
//   - unposted: the signed quantity of sale and return lines whose posting the on-hand does not
//     reflect yet — added when a record's posting is enqueued (ApplyBatch, ApplyReplay) or a
//     channel order is fulfilled, marked posted by FinishPosting, removed by the next pull;
//   - reserved: what open channel reservations hold (Reserve, ReleaseReservation,
//     FulfilReservation, ExpireReservations).
//
// Every transaction that changes a SKU's inputs gives it a new version from one counter whose
// row lock (PostgreSQL) is taken last and held to the commit, so versions become visible in
// order: a reader that has seen version N has seen every change up to N.

// Reservation states.
const (
	ReservationOpen      = "open"
	ReservationReleased  = "released"
	ReservationFulfilled = "fulfilled"
	ReservationExpired   = "expired"
)

// Exception reasons raised by availability.
const (
	ReasonNegativeOnHand      = "negative_on_hand"
	ReasonChannelOrderUnknown = "channel_order_conflict"
)

// ErrReservationMismatch is returned by Reserve for an order id already reserved with other
// lines; ErrReservationState when a reservation is not in a state the change applies to.
var (
	ErrReservationMismatch = errors.New("reservation exists with other lines")
	ErrReservationState    = errors.New("reservation state does not allow this")
)

// AvailRow is one store's inputs for one SKU.
type AvailRow struct {
	Store    string
	OnHand   protocol.Qty
	Unposted protocol.Qty
	Reserved protocol.Qty
}

// AvailSKU is a SKU's inputs in every store that has any, and its version.
type AvailSKU struct {
	SKU     string
	Version int64
	// Status is the item master's status, "" for a SKU the item master does not have.
	Status string
	Known  bool
	Stores []AvailRow
}

// ReservationLine is one line of a reservation; Store is where it is held.
type ReservationLine struct {
	SKU      string `json:"sku"`
	Quantity string `json:"quantity"`
	Store    string `json:"store,omitempty"`
}

// Reservation is a channel order holding stock.
type Reservation struct {
	ID        int64             `json:"id"`
	Channel   string            `json:"channel"`
	OrderID   string            `json:"order_id"`
	State     string            `json:"state"`
	BodyHash  string            `json:"body_hash"`
	Lines     []ReservationLine `json:"lines"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// availKey is one (store, sku).
type availKey struct{ store, sku string }

// availDelta is a change of inputs, added to what is stored.
type availDelta struct{ unposted, reserved protocol.Qty }

// availMark wraps every write transaction: the SKUs it changed get their versions just
// before the commit (the counter's lock last, so no transaction holding it waits for a row
// another holds), and the commit hook runs when there were any.
type availMark struct {
	tx
	skus []string
}

// SetAvailabilityHook makes every committed transaction that changed availability call fn
// (after the commit; fn must not block). Call it before the store is used.
func (s *DB) SetAvailabilityHook(fn func()) { s.availHook = fn }

// addAvail adds deltas to the inputs and gives their SKUs new versions.
func (s *DB) addAvail(ctx context.Context, t tx, ds map[availKey]availDelta) error {
	keys := slices.SortedFunc(maps.Keys(ds), func(a, b availKey) int { return cmp.Or(cmp.Compare(a.sku, b.sku), cmp.Compare(a.store, b.store)) })
	var skus []string
	for _, k := range keys {
		d := ds[k]
		if d == (availDelta{}) {
			continue
		}
		if _, err := t.exec(ctx, `INSERT INTO avail_stock (store, sku, on_hand, unposted, reserved) VALUES (?, ?, 0, ?, ?)
			ON CONFLICT (sku, store) DO UPDATE SET unposted = avail_stock.unposted + excluded.unposted,
			reserved = avail_stock.reserved + excluded.reserved`, k.store, k.sku, int64(d.unposted), int64(d.reserved)); err != nil {
			return fmt.Errorf("availability of %s in %s: %w", k.sku, k.store, err)
		}
		skus = append(skus, k.sku)
	}
	return s.touch(ctx, t, skus)
}

// touch marks skus changed: they get versions at the commit (write), or now in a transaction
// write did not open (the migration's).
func (s *DB) touch(ctx context.Context, t tx, skus []string) error {
	if m, ok := t.(*availMark); ok {
		m.skus = append(m.skus, skus...)
		return nil
	}
	return s.bumpAvail(ctx, t, skus)
}

// bumpAvail gives each of skus a new version (write calls it last: see availMark).
func (s *DB) bumpAvail(ctx context.Context, t tx, skus []string) error {
	slices.Sort(skus)
	skus = slices.Compact(skus)
	if len(skus) == 0 {
		return nil
	}
	var hi int64
	if err := t.queryRow(ctx, `UPDATE avail_counter SET version = version + ? WHERE id = 1 RETURNING version`, len(skus)).Scan(&hi); err != nil {
		return fmt.Errorf("availability version: %w", err)
	}
	v := hi - int64(len(skus))
	for _, sku := range skus {
		v++
		if _, err := t.exec(ctx, `INSERT INTO avail_skus (sku, version) VALUES (?, ?)
			ON CONFLICT (sku) DO UPDATE SET version = excluded.version`, sku, v); err != nil {
			return fmt.Errorf("version of %s: %w", sku, err)
		}
	}
	return nil
}

// lineQty is, per SKU, the signed quantity of a sale's or return's lines that move stock.
func lineQty(r *protocol.Record) (map[string]protocol.Qty, error) {
	out := map[string]protocol.Qty{}
	if r.Kind != protocol.KindSale && r.Kind != protocol.KindReturn {
		return out, nil
	}
	for _, l := range r.Lines {
		if l.SKU == "" || l.Voided {
			continue
		}
		q, err := protocol.ParseQty(l.Quantity)
		if err == nil {
			q, err = out[l.SKU].Add(q)
		}
		if err != nil {
			return nil, fmt.Errorf("record %s/%d sku %q: %w", r.Epoch, r.Seq, l.SKU, err)
		}
		out[l.SKU] = q
	}
	return out, nil
}

// pendAvail counts the lines of records whose postings were just enqueued as unposted.
func (s *DB) pendAvail(ctx context.Context, t tx, recs []*protocol.Record) error {
	ds := map[availKey]availDelta{}
	var rows [][]any
	for _, r := range recs {
		qs, err := lineQty(r)
		if err != nil {
			return err
		}
		for sku, q := range qs {
			k := availKey{r.Store, sku}
			d := ds[k]
			if d.unposted, err = d.unposted.Add(q); err != nil {
				return fmt.Errorf("sku %q: %w", sku, err)
			}
			ds[k] = d
			rows = append(rows, []any{r.Store, r.Epoch, int64(r.Seq), sku, int64(q)})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if err := t.insert(ctx, "avail_pending", []string{"store", "epoch", "seq", "sku", "quantity"}, rows); err != nil {
		return fmt.Errorf("availability: pending lines: %w", err)
	}
	return s.addAvail(ctx, t, ds)
}

// postedAvail marks a posting's lines as taken by the ERP at now (they stay unposted until a
// pull after now: the on-hand pulled before does not reflect them).
func (s *DB) postedAvail(ctx context.Context, t tx, p Posting, now any) error {
	_, err := t.exec(ctx, `UPDATE avail_pending SET posted_at = ? WHERE store = ? AND epoch = ? AND seq = ?`, now, p.Store, p.Epoch, int64(p.Seq))
	return wrapf(err, "availability: mark posted")
}

// pullPlan is what a pull changes, applied in (sku, store) order like every other change.
type pullPlan struct {
	onHand map[availKey]int64      // new on-hand where it changed
	deltas map[availKey]availDelta // lines the ERP has taken: no longer unposted
}

// planPull compares a store's on-hand as pulled at pulledAt with what is stored and drops the
// lines the ERP took before it (their quantities go to the plan); negative on-hand raises
// negative_on_hand (the ERP owns on-hand: it is shown as pulled and available counts it as 0).
func (s *DB) planPull(ctx context.Context, t tx, pl *pullPlan, st string, onHand map[string]string, pulledAt time.Time, now any) error {
	old := map[string]int64{}
	rs, err := t.query(ctx, `SELECT sku, on_hand FROM avail_stock WHERE store = ?`, st)
	if err := each(rs, err, func(r rows) error {
		var sku string
		var q int64
		err := r.Scan(&sku, &q)
		old[sku] = q
		return err
	}); err != nil {
		return fmt.Errorf("availability of %s: %w", st, err)
	}
	for _, sku := range slices.Sorted(maps.Keys(onHand)) {
		q, err := protocol.ParseQty(onHand[sku])
		if err != nil {
			return fmt.Errorf("on-hand of %s in %s: %w", sku, st, err)
		}
		if q < 0 {
			if _, err := s.raise(ctx, t, Exception{Store: st, Reason: ReasonNegativeOnHand, Key: sku, State: StateOpen, Recurs: true,
				Detail: fmt.Sprintf("the ERP reports on-hand %s of %s in store %s; the ERP owns on-hand: correct it there (available counts it as 0)", q, sku, st)}, now); err != nil {
				return err
			}
		}
		if o, ok := old[sku]; !ok || o != int64(q) {
			pl.onHand[availKey{st, sku}] = int64(q)
		}
	}
	for sku, o := range old {
		if _, ok := onHand[sku]; !ok && o != 0 {
			pl.onHand[availKey{st, sku}] = 0
		}
	}
	never, at := s.ts(time.Unix(0, 0)), s.ts(pulledAt)
	rs, err = t.query(ctx, `SELECT sku, SUM(quantity) FROM avail_pending WHERE store = ? AND posted_at > ? AND posted_at < ? GROUP BY sku`, st, never, at)
	n := 0
	if err := each(rs, err, func(r rows) error {
		var sku string
		var q int64
		err := r.Scan(&sku, &q)
		pl.deltas[availKey{st, sku}] = availDelta{unposted: -protocol.Qty(q)}
		n++
		return err
	}); err != nil {
		return fmt.Errorf("availability of %s: reflected lines: %w", st, err)
	}
	if n > 0 {
		if _, err := t.exec(ctx, `DELETE FROM avail_pending WHERE store = ? AND posted_at > ? AND posted_at < ?`, st, never, at); err != nil {
			return fmt.Errorf("availability of %s: drop reflected lines: %w", st, err)
		}
	}
	return nil
}

// applyPull writes a pull's plan: on-hand rows in (sku, store) order, then the deltas.
func (s *DB) applyPull(ctx context.Context, t tx, pl *pullPlan) error {
	keys := slices.SortedFunc(maps.Keys(pl.onHand), func(a, b availKey) int { return cmp.Or(cmp.Compare(a.sku, b.sku), cmp.Compare(a.store, b.store)) })
	var skus []string
	for _, k := range keys {
		if _, err := t.exec(ctx, `INSERT INTO avail_stock (store, sku, on_hand) VALUES (?, ?, ?)
			ON CONFLICT (sku, store) DO UPDATE SET on_hand = excluded.on_hand`, k.store, k.sku, pl.onHand[k]); err != nil {
			return fmt.Errorf("on-hand of %s in %s: %w", k.sku, k.store, err)
		}
		skus = append(skus, k.sku)
	}
	if err := s.touch(ctx, t, skus); err != nil {
		return err
	}
	return s.addAvail(ctx, t, pl.deltas)
}

// masterStatuses reads the item master's status per SKU.
func masterStatuses(ctx context.Context, t tx) (map[string]string, error) {
	out := map[string]string{}
	rs, err := t.query(ctx, `SELECT sku, status FROM erp_items`)
	err = each(rs, err, func(r rows) error {
		var sku, st string
		err := r.Scan(&sku, &st)
		out[sku] = st
		return err
	})
	return out, err
}

// AvailabilitySince returns the inputs of the SKUs whose version is above since (all SKUs for
// 0), or of the listed skus when not nil, ordered by version, at most limit (0: 1000), and
// the current version. Read in one snapshot.
func (s *DB) AvailabilitySince(ctx context.Context, since int64, skus []string, limit int) (out []AvailSKU, current int64, err error) {
	err = s.read(ctx, func(t tx) error {
		if err := t.queryRow(ctx, `SELECT version FROM avail_counter WHERE id = 1`).Scan(&current); err != nil {
			return err
		}
		q, args := `SELECT v.sku, v.version, COALESCE(i.status, ''), i.sku IS NOT NULL FROM avail_skus v
			LEFT JOIN erp_items i ON i.sku = v.sku WHERE v.version > ?`, []any{since}
		if skus != nil {
			if len(skus) == 0 || len(skus) > inChunk {
				return fmt.Errorf("between 1 and %d SKUs at once", inChunk)
			}
			q += ` AND v.sku IN (` + placeholders(len(skus)) + `)`
			for _, k := range skus {
				args = append(args, k)
			}
		}
		rs, err := t.query(ctx, q+` ORDER BY v.version LIMIT ?`, append(args, limitOr(limit, defaultRecordsLimit))...)
		if out, err = scanAll(rs, err, func(r rows, a *AvailSKU) error {
			return r.Scan(&a.SKU, &a.Version, &a.Status, &a.Known)
		}); err != nil || len(out) == 0 {
			return err
		}
		idx := make(map[string]int, len(out))
		in := make([]any, len(out))
		for i, a := range out {
			idx[a.SKU], in[i] = i, a.SKU
		}
		for len(in) > 0 {
			n := min(len(in), inChunk)
			rs, err := t.query(ctx, `SELECT sku, store, on_hand, unposted, reserved FROM avail_stock WHERE sku IN (`+placeholders(n)+`) ORDER BY sku, store`, in[:n]...)
			if err := each(rs, err, func(r rows) error {
				var sku string
				var row AvailRow
				var oh, un, re int64
				err := r.Scan(&sku, &row.Store, &oh, &un, &re)
				row.OnHand, row.Unposted, row.Reserved = protocol.Qty(oh), protocol.Qty(un), protocol.Qty(re)
				a := &out[idx[sku]]
				a.Stores = append(a.Stores, row)
				return err
			}); err != nil {
				return err
			}
			in = in[n:]
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("availability since %d: %w", since, err)
	}
	return out, current, nil
}

// TouchAvailability gives skus (every SKU with figures when nil) new versions: their figures
// changed by a rule (safety stock, a channel's pool) rather than by their inputs.
func (s *DB) TouchAvailability(ctx context.Context, skus []string) error {
	return wrapf(s.write(ctx, func(t tx) error {
		if skus == nil {
			rs, err := t.query(ctx, `SELECT sku FROM avail_skus`)
			if skus, err = scanAll(rs, err, scanString); err != nil {
				return err
			}
		}
		return s.touch(ctx, t, skus)
	}), "touch availability")
}

// --- reservations ---

const reservationCols = `id, channel, order_id, state, body_hash, lines, created_at, updated_at`

func scanReservation(r row, v *Reservation) error {
	var lines []byte
	if err := r.Scan(&v.ID, &v.Channel, &v.OrderID, &v.State, &v.BodyHash, &lines, scanTime{&v.CreatedAt}, scanTime{&v.UpdatedAt}); err != nil {
		return err
	}
	return json.Unmarshal(lines, &v.Lines)
}

func (s *DB) lockReservation(ctx context.Context, t tx, channel, orderID string) (Reservation, bool, error) {
	var v Reservation
	err := scanReservation(t.queryRow(ctx, `SELECT `+reservationCols+` FROM avail_reservations WHERE channel = ? AND order_id = ?`+s.d.forUpdate, channel, orderID), &v)
	if errors.Is(err, sql.ErrNoRows) {
		return v, false, nil
	}
	return v, err == nil, err
}

// ReservePlan allocates a reservation's lines to stores from the SKUs' current inputs (keyed
// by SKU); an error stores nothing.
type ReservePlan func(stock map[string]AvailSKU) ([]ReservationLine, error)

// Reserve holds stock for a channel order at once: a new (channel, orderID) is allocated by
// plan, from the inputs of skus read in the same transaction, and added to the reserved
// quantities; the same order with the same bodyHash again changes nothing (created false);
// with another bodyHash, ErrReservationMismatch.
func (s *DB) Reserve(ctx context.Context, channel, orderID, bodyHash string, skus []string, plan ReservePlan) (v Reservation, created bool, err error) {
	err = s.write(ctx, func(t tx) error {
		old, found, err := s.lockReservation(ctx, t, channel, orderID)
		if err != nil {
			return err
		}
		if found {
			v = old
			if old.BodyHash != bodyHash {
				return fmt.Errorf("order %s of %s: %w", orderID, channel, ErrReservationMismatch)
			}
			return nil
		}
		stock, err := s.availOf(ctx, t, skus)
		if err != nil {
			return err
		}
		lines, err := plan(stock)
		if err != nil {
			return err
		}
		body, err := json.Marshal(lines)
		if err != nil {
			return err
		}
		now := clock.Now().UTC().Truncate(time.Microsecond)
		n, err := t.exec(ctx, `INSERT INTO avail_reservations (channel, order_id, body_hash, state, lines, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, order_id) DO NOTHING`,
			channel, orderID, bodyHash, ReservationOpen, string(body), s.ts(now), s.ts(now))
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("order %s of %s: reserved concurrently: %w", orderID, channel, ErrVersionConflict)
		}
		if err := s.holdLines(ctx, t, lines, 1, 0); err != nil {
			return err
		}
		old, _, err = s.lockReservation(ctx, t, channel, orderID)
		v, created = old, true
		return err
	})
	if err != nil {
		return v, false, fmt.Errorf("reserve %s/%s: %w", channel, orderID, err)
	}
	return v, created, nil
}

// holdLines adds lines × reserved to reserved and × unposted to unposted.
func (s *DB) holdLines(ctx context.Context, t tx, lines []ReservationLine, reserved, unposted protocol.Qty) error {
	ds := map[availKey]availDelta{}
	for _, l := range lines {
		q, err := protocol.ParseQty(l.Quantity)
		if err != nil {
			return fmt.Errorf("line %s: %w", l.SKU, err)
		}
		k := availKey{l.Store, l.SKU}
		d := ds[k]
		d.reserved += reserved * q
		d.unposted += unposted * q
		ds[k] = d
	}
	return s.addAvail(ctx, t, ds)
}

// availOf reads the inputs of skus in a write transaction.
func (s *DB) availOf(ctx context.Context, t tx, skus []string) (map[string]AvailSKU, error) {
	st, err := masterStatuses(ctx, t)
	if err != nil {
		return nil, err
	}
	out := map[string]AvailSKU{}
	for _, sku := range skus {
		status, known := st[sku]
		a := AvailSKU{SKU: sku, Status: status, Known: known}
		rs, err := t.query(ctx, `SELECT store, on_hand, unposted, reserved FROM avail_stock WHERE sku = ? ORDER BY store`, sku)
		if err := each(rs, err, func(r rows) error {
			var row AvailRow
			var oh, un, re int64
			err := r.Scan(&row.Store, &oh, &un, &re)
			row.OnHand, row.Unposted, row.Reserved = protocol.Qty(oh), protocol.Qty(un), protocol.Qty(re)
			a.Stores = append(a.Stores, row)
			return err
		}); err != nil {
			return nil, err
		}
		out[sku] = a
	}
	return out, nil
}

// setReservation moves an open reservation to state (released or expired), freeing its lines.
// A reservation already released or expired changes nothing (changed false); a fulfilled one
// is ErrReservationState.
func (s *DB) setReservation(ctx context.Context, t tx, channel, orderID, state string) (Reservation, bool, error) {
	v, found, err := s.lockReservation(ctx, t, channel, orderID)
	switch {
	case err != nil:
		return v, false, err
	case !found:
		return v, false, ErrNotFound
	case v.State == ReservationFulfilled:
		return v, false, fmt.Errorf("order %s of %s is fulfilled: %w", orderID, channel, ErrReservationState)
	case v.State != ReservationOpen:
		return v, false, nil
	}
	if err := s.holdLines(ctx, t, v.Lines, -1, 0); err != nil {
		return v, false, err
	}
	now := clock.Now().UTC().Truncate(time.Microsecond)
	if _, err := t.exec(ctx, `UPDATE avail_reservations SET state = ?, updated_at = ? WHERE id = ?`, state, s.ts(now), v.ID); err != nil {
		return v, false, err
	}
	v.State, v.UpdatedAt = state, now
	return v, true, nil
}

// ReleaseReservation frees an open reservation (changed false when it was not open;
// ErrReservationState when fulfilled, ErrNotFound when unknown).
func (s *DB) ReleaseReservation(ctx context.Context, channel, orderID string) (v Reservation, changed bool, err error) {
	err = s.write(ctx, func(t tx) error {
		v, changed, err = s.setReservation(ctx, t, channel, orderID, ReservationReleased)
		return err
	})
	return v, changed, wrapf(err, "release %s/%s", channel, orderID)
}

// ExpireReservations expires the open reservations created before cutoff, at most limit.
func (s *DB) ExpireReservations(ctx context.Context, cutoff time.Time, limit int) ([]Reservation, error) {
	var out []Reservation
	err := s.write(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT channel, order_id FROM avail_reservations WHERE state = 'open' AND created_at < ? ORDER BY created_at LIMIT ?`,
			s.ts(cutoff), limitOr(limit, defaultRecordsLimit))
		ids, err := scanAll(rs, err, func(r rows, k *availKey) error { return r.Scan(&k.store, &k.sku) })
		if err != nil {
			return err
		}
		for _, k := range ids {
			v, changed, err := s.setReservation(ctx, t, k.store, k.sku, ReservationExpired)
			if err != nil {
				return err
			}
			if changed {
				out = append(out, v)
			}
		}
		return nil
	})
	return out, wrapf(err, "expire reservations")
}

// FulfilReservation turns an open reservation into postings: build makes the sale records (one
// per store) that the outbox posts to the ERP, each under its own business key, with no row in
// records (the posting keeps the body). The held quantities become unposted in the same
// transaction. A fulfilled reservation changes nothing (changed false); a released or expired
// one is ErrReservationState.
func (s *DB) FulfilReservation(ctx context.Context, channel, orderID string, build func(Reservation) ([]protocol.Record, error)) (v Reservation, changed bool, err error) {
	err = s.write(ctx, func(t tx) error {
		var found bool
		v, found, err = s.lockReservation(ctx, t, channel, orderID)
		switch {
		case err != nil:
			return err
		case !found:
			return ErrNotFound
		case v.State == ReservationFulfilled:
			return nil
		case v.State != ReservationOpen:
			return fmt.Errorf("order %s of %s is %s: %w", orderID, channel, v.State, ErrReservationState)
		}
		recs, err := build(v)
		if err != nil {
			return err
		}
		now := s.now()
		if err := s.enqueueBodies(ctx, t, recs, now); err != nil {
			return err
		}
		if err := s.holdLines(ctx, t, v.Lines, -1, 0); err != nil {
			return err
		}
		at := clock.Now().UTC().Truncate(time.Microsecond)
		if _, err := t.exec(ctx, `UPDATE avail_reservations SET state = ?, updated_at = ? WHERE id = ?`, ReservationFulfilled, s.ts(at), v.ID); err != nil {
			return err
		}
		v.State, v.UpdatedAt, changed = ReservationFulfilled, at, true
		return nil
	})
	return v, changed, wrapf(err, "fulfil %s/%s", channel, orderID)
}

// enqueueBodies adds postings that carry their record's body (no row in records) and counts
// their lines as unposted. A business key already queued is an error: the caller's order
// reference is unique per channel.
func (s *DB) enqueueBodies(ctx context.Context, t tx, recs []protocol.Record, now any) error {
	if s.noPostings.Load() {
		return nil // no ERP: nothing is posted, and nothing waits to be reflected
	}
	var pend []*protocol.Record
	for i := range recs {
		r := &recs[i]
		body, err := json.Marshal(r)
		if err != nil {
			return err
		}
		p := newPosting(r)
		n, err := t.exec(ctx, `INSERT INTO postings (key, store, terminal, business_date, receipt, kind, epoch, seq, content_hash, total, state,
			next_at, created_at, updated_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			p.Key, p.Store, p.Terminal, p.BusinessDate, p.Receipt, string(p.Kind), p.Epoch, int64(p.Seq), p.ContentHash, p.Total, p.State,
			now, now, now, string(body))
		if err != nil {
			return fmt.Errorf("enqueue %s: %w", p.Key, err)
		}
		if n == 0 {
			return fmt.Errorf("enqueue %s: the key is already in the outbox: %w", p.Key, ErrExists)
		}
		pend = append(pend, r)
	}
	return s.pendAvail(ctx, t, pend)
}

// ReservationFilter selects reservations; empty fields match all.
type ReservationFilter struct {
	Channel, State string
	Limit          int // default 1000
}

// Reservations lists reservations, newest first.
func (s *DB) Reservations(ctx context.Context, f ReservationFilter) ([]Reservation, error) {
	where, args := filter([][2]string{{"channel", f.Channel}, {"state", f.State}})
	var out []Reservation
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT `+reservationCols+` FROM avail_reservations`+where+` ORDER BY id DESC LIMIT ?`,
			append(args, limitOr(f.Limit, defaultRecordsLimit))...)
		out, err = scanAll(rs, err, func(r rows, v *Reservation) error { return scanReservation(r, v) })
		return err
	})
	return out, wrapf(err, "list reservations")
}

// Reservation returns one reservation (ErrNotFound if unknown).
func (s *DB) Reservation(ctx context.Context, channel, orderID string) (Reservation, error) {
	var v Reservation
	err := s.read(ctx, func(t tx) error {
		return scanReservation(t.queryRow(ctx, `SELECT `+reservationCols+` FROM avail_reservations WHERE channel = ? AND order_id = ?`, channel, orderID), &v)
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return v, wrapf(err, "reservation %s/%s", channel, orderID)
}

// --- safety stock, shown figures, feed cursors ---

// SafetyRule is safety stock set through the API: scope "default", "sku" or "category".
type SafetyRule struct {
	Channel  string       `json:"channel"` // "" for every store
	Scope    string       `json:"scope"`
	Key      string       `json:"key,omitempty"`
	Quantity protocol.Qty `json:"-"`
}

// SetSafetyRule stores (or, with remove, deletes) a rule and re-versions every SKU.
func (s *DB) SetSafetyRule(ctx context.Context, r SafetyRule, remove bool) error {
	return wrapf(s.write(ctx, func(t tx) error {
		var err error
		if remove {
			_, err = t.exec(ctx, `DELETE FROM avail_safety WHERE channel = ? AND scope = ? AND key = ?`, r.Channel, r.Scope, r.Key)
		} else {
			_, err = t.exec(ctx, `INSERT INTO avail_safety (channel, scope, key, quantity) VALUES (?, ?, ?, ?)
				ON CONFLICT (channel, scope, key) DO UPDATE SET quantity = excluded.quantity`, r.Channel, r.Scope, r.Key, int64(r.Quantity))
		}
		if err != nil {
			return err
		}
		rs, err := t.query(ctx, `SELECT sku FROM avail_skus`)
		skus, err := scanAll(rs, err, scanString)
		if err != nil {
			return err
		}
		return s.touch(ctx, t, skus)
	}), "set safety stock %s/%s/%s", r.Channel, r.Scope, r.Key)
}

// SafetyRules lists the rules set through the API.
func (s *DB) SafetyRules(ctx context.Context) ([]SafetyRule, error) {
	var out []SafetyRule
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT channel, scope, key, quantity FROM avail_safety ORDER BY channel, scope, key`)
		out, err = scanAll(rs, err, func(r rows, v *SafetyRule) error {
			var q int64
			err := r.Scan(&v.Channel, &v.Scope, &v.Key, &q)
			v.Quantity = protocol.Qty(q)
			return err
		})
		return err
	})
	return out, wrapf(err, "safety stock")
}

// Shown is what a channel displays for a SKU, reported at At.
type Shown struct {
	Channel, SKU string
	Shown        protocol.Qty
	At           time.Time
}

// PutShown records what a channel displays.
func (s *DB) PutShown(ctx context.Context, v Shown) error {
	_, err := s.exec(ctx, `INSERT INTO avail_shown (channel, sku, shown, at) VALUES (?, ?, ?, ?)
		ON CONFLICT (channel, sku) DO UPDATE SET shown = excluded.shown, at = excluded.at`, v.Channel, v.SKU, int64(v.Shown), s.ts(v.At))
	return wrapf(err, "shown %s/%s", v.Channel, v.SKU)
}

// ShownFigures lists what channels display.
func (s *DB) ShownFigures(ctx context.Context) ([]Shown, error) {
	var out []Shown
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT channel, sku, shown, at FROM avail_shown ORDER BY channel, sku`)
		out, err = scanAll(rs, err, func(r rows, v *Shown) error {
			var q int64
			err := r.Scan(&v.Channel, &v.SKU, &q, scanTime{&v.At})
			v.Shown = protocol.Qty(q)
			return err
		})
		return err
	})
	return out, wrapf(err, "shown figures")
}

// FeedCursor is the version a webhook subscriber has been sent (0: none).
func (s *DB) FeedCursor(ctx context.Context, subscriber string) (int64, error) {
	var v int64
	err := s.readRow(ctx, `SELECT version FROM avail_feed WHERE subscriber = ?`, []any{subscriber}, &v)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return v, wrapf(err, "feed cursor of %s", subscriber)
}

// SetFeedCursor records that subscriber has been sent everything up to version.
func (s *DB) SetFeedCursor(ctx context.Context, subscriber string, version int64) error {
	_, err := s.exec(ctx, `INSERT INTO avail_feed (subscriber, version) VALUES (?, ?)
		ON CONFLICT (subscriber) DO UPDATE SET version = excluded.version`, subscriber, version)
	return wrapf(err, "feed cursor of %s", subscriber)
}

// rebuildAvailability computes the inputs from scratch from what is stored: the ERP's on-hand,
// the postings the on-hand does not reflect and the open reservations. Migration 14 runs it
// once, so that a hub upgraded with postings waiting starts with exact figures; tests compare
// it with the incremental inputs. It expects the availability tables empty.
func (s *DB) rebuildAvailability(ctx context.Context, t tx) error {
	pulled := map[string]time.Time{}
	type oh struct {
		key availKey
		q   string
	}
	rs, err := t.query(ctx, `SELECT store, sku, on_hand, pulled_at FROM erp_onhand ORDER BY store, sku`)
	ohs, err := scanAll(rs, err, func(r rows, v *oh) error {
		var at time.Time
		err := r.Scan(&v.key.store, &v.key.sku, &v.q, scanTime{&at})
		if at.After(pulled[v.key.store]) {
			pulled[v.key.store] = at
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild availability: on-hand: %w", err)
	}
	var skus []string
	for _, v := range ohs {
		q, err := protocol.ParseQty(v.q)
		if err != nil {
			return fmt.Errorf("rebuild availability: on-hand of %s in %s: %w", v.key.sku, v.key.store, err)
		}
		if _, err := t.exec(ctx, `INSERT INTO avail_stock (store, sku, on_hand) VALUES (?, ?, ?)`, v.key.store, v.key.sku, int64(q)); err != nil {
			return fmt.Errorf("rebuild availability: %w", err)
		}
		skus = append(skus, v.key.sku)
	}
	type pend struct {
		rec      *protocol.Record
		postedAt time.Time
	}
	rs, err = t.query(ctx, `SELECT p.posted_at, COALESCE(r.body, p.body) FROM postings p
		LEFT JOIN records r ON r.store = p.store AND r.epoch = p.epoch AND r.seq = p.seq
		WHERE (r.body IS NOT NULL OR p.body IS NOT NULL) AND p.state IN ('pending', 'rejected', 'done') ORDER BY p.id`)
	ps, err := scanAll(rs, err, func(r rows, v *pend) error {
		var body []byte
		if err := r.Scan(scanTime{&v.postedAt}, &body); err != nil {
			return err
		}
		var err error
		v.rec, err = decode[*protocol.Record](body, "record")
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild availability: postings: %w", err)
	}
	var recs []*protocol.Record
	for _, p := range ps {
		at, ok := pulled[p.rec.Store]
		if p.postedAt.IsZero() || (ok && !p.postedAt.Before(at)) { // not reflected by the last pull
			recs = append(recs, p.rec)
		}
	}
	if err := s.pendAvail(ctx, t, recs); err != nil {
		return err
	}
	// Lines posted after the last pull keep their posting time, so the next pull drops them.
	for _, p := range ps {
		if !p.postedAt.IsZero() {
			if _, err := t.exec(ctx, `UPDATE avail_pending SET posted_at = ? WHERE store = ? AND epoch = ? AND seq = ?`,
				s.ts(p.postedAt), p.rec.Store, p.rec.Epoch, int64(p.rec.Seq)); err != nil {
				return fmt.Errorf("rebuild availability: %w", err)
			}
		}
	}
	rs, err = t.query(ctx, `SELECT `+reservationCols+` FROM avail_reservations WHERE state = 'open' ORDER BY id`)
	open, err := scanAll(rs, err, func(r rows, v *Reservation) error { return scanReservation(r, v) })
	if err != nil {
		return fmt.Errorf("rebuild availability: reservations: %w", err)
	}
	for _, v := range open {
		if err := s.holdLines(ctx, t, v.Lines, 1, 0); err != nil {
			return err
		}
	}
	st, err := masterStatuses(ctx, t)
	if err != nil {
		return err
	}
	for sku := range st {
		skus = append(skus, sku)
	}
	return s.bumpAvail(ctx, t, skus)
}

// MasterItems returns the item master's entries of skus (those it has).
func (s *DB) MasterItems(ctx context.Context, skus []string) (map[string]MasterItem, error) {
	out := map[string]MasterItem{}
	err := s.read(ctx, func(t tx) error {
		for off := 0; off < len(skus); off += inChunk {
			chunk := skus[off:min(off+inChunk, len(skus))]
			args := make([]any, len(chunk))
			for i, k := range chunk {
				args[i] = k
			}
			rs, err := t.query(ctx, `SELECT sku, description, price, tax_code, status FROM erp_items WHERE sku IN (`+placeholders(len(chunk))+`)`, args...)
			if err := each(rs, err, func(r rows) error {
				var it MasterItem
				err := r.Scan(&it.SKU, &it.Description, &it.Price, &it.TaxCode, &it.Status)
				out[it.SKU] = it
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, wrapf(err, "item master")
}
