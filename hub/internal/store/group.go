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
		for _, i := range order {
			b := &bs[i]
			if _, err := t.exec(ctx, `SAVEPOINT batch`); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			res, err := s.applyBatch(ctx, t, b.Store, b.Epoch, b.Records, bodies[i])
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
		return nil
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
