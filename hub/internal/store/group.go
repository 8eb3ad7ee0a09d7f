package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/lanebridge/lanebridge/protocol"
)

// BatchApply is one batch of ApplyBatches: records of one (store, epoch) as ApplyBatch takes
// them.
type BatchApply struct {
	Store, Epoch string
	Records      []protocol.Record
}

// BatchOutcome is what ApplyBatch would have returned for one batch of ApplyBatches.
type BatchOutcome struct {
	Result ApplyResult
	Err    error
}

// ApplyBatches applies many batches, possibly of many stores, in one write transaction: one
// commit, one fsync, for all of them (group commit). Each batch is applied exactly as
// ApplyBatch applies it (same checks, same per-record apply, same idempotency, gap and
// conflict rules) inside a savepoint of its own, so a batch that fails (an unknown store, an
// invalid batch) is rolled back alone and the others stand. Batches of one stream are applied
// in the order given, each seeing the progress of the ones before it; batches of different
// streams are applied in (store, epoch) order, so that concurrent groups on PostgreSQL lock
// stream rows in one order. Every outcome is known to be durable when ApplyBatches returns.
//
// The records the batches add are inserted after every batch is planned, all at once: one
// multi-row INSERT (COPY on PostgreSQL) of records for the whole group, one of postings, one
// of day keys and one upsert per day_sums row touched (summed in memory per store, business
// date and terminal), instead of one of each per batch. A later batch of a stream sees the
// hashes of the earlier batches' records before they are inserted.
//
// If the transaction as a whole fails (its commit, a lost connection, a deadlock), each batch
// is applied again on its own with ApplyBatch, in order: a retry is idempotent, so outcomes
// stay exact even when the failed commit did reach the disk.
func (s *DB) ApplyBatches(ctx context.Context, bs []BatchApply) []BatchOutcome {
	out := make([]BatchOutcome, len(bs))
	bodies := make([][][]byte, len(bs))
	order := make([]int, 0, len(bs))
	for i, b := range bs {
		if err := checkRecords(b.Store, b.Epoch, b.Records, true); err != nil {
			out[i].Err = fmt.Errorf("apply batch %s/%s: %w", b.Store, b.Epoch, err)
			continue
		}
		var err error
		if bodies[i], err = marshalBodies(b.Records); err != nil {
			out[i].Err = fmt.Errorf("apply batch %s/%s: %w", b.Store, b.Epoch, err)
			continue
		}
		order = append(order, i)
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(bs[a].Store, bs[b].Store), cmp.Compare(bs[a].Epoch, bs[b].Epoch))
	})
	if len(order) == 0 {
		return out
	}
	err := s.write(ctx, func(t tx) error {
		g := &groupInsert{planned: map[[2]string]*plannedRun{}}
		for _, i := range order {
			b := &bs[i]
			if _, err := t.exec(ctx, `SAVEPOINT batch`); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			res, err := s.applyBatch(ctx, t, b.Store, b.Epoch, b.Records, bodies[i], g)
			if err != nil {
				if _, rerr := t.exec(ctx, `ROLLBACK TO SAVEPOINT batch`); rerr != nil {
					return fmt.Errorf("rollback to savepoint: %w", rerr)
				}
				out[i] = BatchOutcome{Err: fmt.Errorf("apply batch %s/%s: %w", b.Store, b.Epoch, err)}
			} else {
				out[i] = BatchOutcome{Result: res}
			}
			if _, err := t.exec(ctx, `RELEASE SAVEPOINT batch`); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		return s.insertRecords(ctx, t, g.recs, g.bodies, s.now())
	})
	if err == nil {
		return out
	}
	for _, i := range order { // in the order given within each stream, as above
		res, err := s.ApplyBatch(ctx, bs[i].Store, bs[i].Epoch, bs[i].Records)
		out[i] = BatchOutcome{Result: res, Err: err}
	}
	return out
}

// groupInsert collects the runs of new records a group commit's batches planned, to insert
// them together. A nil *groupInsert collects nothing (ApplyBatch inserts its run itself).
type groupInsert struct {
	recs    []protocol.Record
	bodies  [][]byte
	planned map[[2]string]*plannedRun // per (store, epoch)
}

// plannedRun is the hashes of a stream's records planned in this group: seq first, first+1, …
// (a stream's runs in one group follow each other: each starts right after its progress).
type plannedRun struct {
	first  uint64
	hashes []string
}

// add records a run planned for (store, epoch), right after the ones planned before it.
func (g *groupInsert) add(store, epoch string, run []protocol.Record, bodies [][]byte) {
	if g == nil || len(run) == 0 {
		return
	}
	g.recs = append(g.recs, run...)
	g.bodies = append(g.bodies, bodies...)
	k := [2]string{store, epoch}
	p := g.planned[k]
	if p == nil {
		p = &plannedRun{first: run[0].Seq}
		g.planned[k] = p
	}
	for i := range run {
		p.hashes = append(p.hashes, run[i].Hash)
	}
}

// overlay adds to stored the hashes of (store, epoch)'s records from..to planned in this
// group and not inserted yet.
func (g *groupInsert) overlay(store, epoch string, from, to uint64, stored map[uint64]string) {
	if g == nil {
		return
	}
	p := g.planned[[2]string{store, epoch}]
	if p == nil {
		return
	}
	for seq := max(from, p.first); seq <= to && seq-p.first < uint64(len(p.hashes)); seq++ {
		stored[seq] = p.hashes[seq-p.first]
	}
}
