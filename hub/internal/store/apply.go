package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/lanebridge/lanebridge/protocol"
)

// ApplyBatch applies records of one (store, epoch), given in ascending contiguous seq order,
// in one transaction: records at or below the stream's progress are compared by hash
// (duplicate, or conflict: a hash_conflict exception, nothing overwritten), the contiguous run
// after it is inserted and enqueued for the ERP, and a batch that starts past progress+1
// applies nothing and reports ResendFrom. The store must exist (ErrNotFound). Writers of one
// stream serialise: PostgreSQL locks the stream row, SQLite has one writer.
func (s *DB) ApplyBatch(ctx context.Context, store, epoch string, recs []protocol.Record) (ApplyResult, error) {
	var res ApplyResult
	err := s.applyTx(ctx, store, epoch, recs, true, func(t tx, bodies [][]byte) (err error) {
		res, err = s.applyBatch(ctx, t, store, epoch, recs, bodies, nil)
		return err
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply batch %s/%s: %w", store, epoch, err)
	}
	return res, nil
}

// applyTx checks and encodes recs, then runs fn in one write transaction.
func (s *DB) applyTx(ctx context.Context, store, epoch string, recs []protocol.Record, contiguous bool, fn func(t tx, bodies [][]byte) error) error {
	if err := checkRecords(store, epoch, recs, contiguous); err != nil {
		return err
	}
	bodies, err := marshalBodies(recs)
	if err != nil {
		return err
	}
	return s.write(ctx, func(t tx) error { return fn(t, bodies) })
}

// applyBatch applies one batch in t. With g nil it inserts the batch's new records itself;
// otherwise it only plans them (progress, duplicates, conflicts) and adds them to g, which
// inserts the runs of a whole group commit at once (g.flush).
func (s *DB) applyBatch(ctx context.Context, t tx, store, epoch string, recs []protocol.Record, bodies [][]byte, g *groupInsert) (ApplyResult, error) {
	var res ApplyResult
	now := s.now()
	if len(recs) > 0 {
		// Creates the stream row only for a known store; on PostgreSQL a concurrent creator
		// makes this wait for its commit and then do nothing.
		if _, err := t.exec(ctx, `INSERT INTO streams (store, epoch, applied_through, created_at, updated_at)
			SELECT ?, ?, 0, ?, ? WHERE EXISTS (SELECT 1 FROM stores WHERE id = ?)
			ON CONFLICT (store, epoch) DO NOTHING`, store, epoch, now, now, store); err != nil {
			return res, fmt.Errorf("create stream: %w", err)
		}
	}
	p, found, err := s.progress(ctx, t, store, epoch)
	if err != nil || !found {
		return res, err // an empty batch of an unknown stream of a known store applies nothing
	}
	res.AppliedThrough = p
	if len(recs) == 0 {
		return res, nil
	}
	stored := map[uint64]string{}
	if first := recs[0].Seq; first <= p {
		last := min(recs[len(recs)-1].Seq, p)
		rs, err := t.query(ctx, `SELECT seq, hash FROM records WHERE store = ? AND epoch = ? AND seq BETWEEN ? AND ?`,
			store, epoch, int64(first), int64(last))
		if err := each(rs, err, func(r rows) error {
			var seq uint64
			var h string
			err := r.Scan(&seq, &h)
			stored[seq] = h
			return err
		}); err != nil {
			return res, fmt.Errorf("read stored hashes: %w", err)
		}
		g.overlay(store, epoch, first, last, stored)
	}
	pl, err := planApply(epoch, recs, p, stored)
	if err != nil {
		return res, err
	}
	res.Duplicates, res.Conflicts, res.ResendFrom = pl.duplicates, len(pl.conflicts), pl.resendFrom
	for _, c := range pl.conflicts {
		if _, err := s.raise(ctx, t, conflictException(store, epoch, c), now); err != nil {
			return res, fmt.Errorf("raise hash conflict for seq %d: %w", c.seq, err)
		}
	}
	if pl.insertFrom == len(recs) {
		return res, nil
	}
	run := recs[pl.insertFrom:]
	if g == nil {
		if err := s.insertRecords(ctx, t, run, bodies[pl.insertFrom:], now); err != nil {
			return res, err
		}
	}
	res.Applied = len(run)
	res.AppliedThrough = run[len(run)-1].Seq
	if _, err := t.exec(ctx, `UPDATE streams SET applied_through = ?, updated_at = ? WHERE store = ? AND epoch = ?`,
		int64(res.AppliedThrough), now, store, epoch); err != nil {
		return res, fmt.Errorf("update progress: %w", err)
	}
	g.add(store, epoch, run, bodies[pl.insertFrom:])
	return res, nil
}

// progress reads (and on PostgreSQL locks) a stream's progress; found is false for a stream
// not created yet, ErrNotFound is returned for an unknown store.
func (s *DB) progress(ctx context.Context, t tx, store, epoch string) (p uint64, found bool, err error) {
	err = t.queryRow(ctx, `SELECT applied_through FROM streams WHERE store = ? AND epoch = ?`+s.d.forUpdate, store, epoch).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, mustStore(ctx, t, store)
	}
	if err != nil {
		return 0, false, fmt.Errorf("read progress: %w", err)
	}
	return p, true, nil
}

var recordCols = []string{"store", "epoch", "seq", "kind", "terminal", "receipt", "business_date", "total", "hash", "body", "applied_at"}

// insertRecords stores new records (of one or many streams), adds them to their days'
// summaries and enqueues their postings: one multi-row statement (or COPY) per table for all
// of them.
func (s *DB) insertRecords(ctx context.Context, t tx, run []protocol.Record, bodies [][]byte, now any) error {
	if len(run) == 0 {
		return nil
	}
	rs := make([][]any, len(run))
	for i := range run {
		r := &run[i]
		rs[i] = []any{r.Store, r.Epoch, int64(r.Seq), string(r.Kind), r.Terminal, r.Receipt, r.BusinessDate, r.Total, r.Hash, bodies[i], now}
	}
	if err := t.insert(ctx, "records", recordCols, rs); err != nil {
		return fmt.Errorf("insert %d records from %s/%s seq %d: %w", len(run), run[0].Store, run[0].Epoch, run[0].Seq, err)
	}
	if err := s.summarise(ctx, t, run); err != nil {
		return err
	}
	return s.enqueue(ctx, t, run, now)
}

// ApplyReplay applies a replay batch (protocol.Batch with Replay set): records of one
// (store, epoch), ascending but not necessarily contiguous, sent again on a replay command.
// Missing records at or below the stream's progress are stored again (and enqueued for the ERP
// unless their business key is already in the outbox), in one transaction; records past
// progress are left to the normal stream.
func (s *DB) ApplyReplay(ctx context.Context, store, epoch string, recs []protocol.Record) (ReplayResult, error) {
	var res ReplayResult
	err := s.applyTx(ctx, store, epoch, recs, false, func(t tx, bodies [][]byte) error {
		res = ReplayResult{}
		p, found, err := s.progress(ctx, t, store, epoch)
		if err != nil || !found {
			res.Ahead = len(recs) // a stream not created yet: the normal stream delivers them
			return err
		}
		res.AppliedThrough = p
		return s.replay(ctx, t, &res, recs, bodies)
	})
	if err != nil {
		return ReplayResult{}, fmt.Errorf("apply replay %s/%s: %w", store, epoch, err)
	}
	return res, nil
}

func (s *DB) replay(ctx context.Context, t tx, res *ReplayResult, recs []protocol.Record, bodies [][]byte) error {
	now := s.now()
	for i := range recs {
		r := &recs[i]
		if r.Seq > res.AppliedThrough {
			res.Ahead++
			continue
		}
		var h string
		err := t.queryRow(ctx, `SELECT hash FROM records WHERE store = ? AND epoch = ? AND seq = ?`, r.Store, r.Epoch, int64(r.Seq)).Scan(&h)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := s.insertRecords(ctx, t, recs[i:i+1], bodies[i:i+1], now); err != nil {
				return err
			}
			res.Restored++
		case err != nil:
			return fmt.Errorf("seq %d: %w", r.Seq, err)
		case h == r.Hash:
			res.Duplicates++
		default:
			res.Conflicts++
			if _, err := s.raise(ctx, t, conflictException(r.Store, r.Epoch, conflict{seq: r.Seq, stored: h, offered: r.Hash}), now); err != nil {
				return fmt.Errorf("raise conflict: %w", err)
			}
		}
	}
	return nil
}

// checkRecords validates a batch: one (store, epoch), seq >= 1, strictly ascending and, for a
// normal batch, contiguous. It does not recompute hashes (the wire decoder did).
func checkRecords(store, epoch string, recs []protocol.Record, contiguous bool) error {
	if err := protocol.ValidateStoreID(store); err != nil {
		return fmt.Errorf("%w: %w", ErrBadBatch, err)
	}
	if epoch == "" {
		return fmt.Errorf("%w: empty epoch", ErrBadBatch)
	}
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Store != store || r.Epoch != epoch:
			return fmt.Errorf("%w: records[%d] is %s/%s, batch is %s/%s", ErrBadBatch, i, r.Store, r.Epoch, store, epoch)
		case r.Seq == 0 || r.Seq > 1<<62:
			return fmt.Errorf("%w: records[%d] has seq %d", ErrBadBatch, i, r.Seq)
		case r.Hash == "":
			return fmt.Errorf("%w: records[%d] (seq %d) has no hash", ErrBadBatch, i, r.Seq)
		case i > 0 && (r.Seq <= recs[i-1].Seq || contiguous && r.Seq != recs[i-1].Seq+1):
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

// applyPlan classifies a batch against progress p and the stored hashes of its records at or
// below p: duplicates, conflicts (seqs whose stored hash differs), the index of the first
// record to insert (len(recs) when none), and resendFrom, non-zero for a gap.
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
	pl := applyPlan{insertFrom: len(recs)}
	for i := range recs {
		r := &recs[i]
		if r.Seq <= p {
			h, ok := stored[r.Seq]
			switch {
			case !ok:
				return pl, fmt.Errorf("%w: stream %s applied through %d but seq %d is not stored", ErrCorrupt, epoch, p, r.Seq)
			case h == r.Hash:
				pl.duplicates++
			default:
				pl.conflicts = append(pl.conflicts, conflict{seq: r.Seq, stored: h, offered: r.Hash})
			}
			continue
		}
		if r.Seq > p+1 {
			pl.resendFrom = p + 1
		} else {
			pl.insertFrom = i
		}
		break
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
