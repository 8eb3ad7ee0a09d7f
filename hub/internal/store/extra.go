package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// ReplayResult is the outcome of ApplyReplay.
type ReplayResult struct {
	AppliedThrough uint64 // the stream's progress (unchanged by a replay)
	Restored       int    // records at or below progress that were missing and are now stored
	Duplicates     int    // records already stored with the same hash
	Conflicts      int    // records stored with another hash (hash_conflict raised, not overwritten)
	Ahead          int    // records past progress, ignored: the normal stream delivers them
}

// Replayer applies replay batches (protocol.Batch with Replay set): records of one
// (store, epoch), ascending but not necessarily contiguous, sent again on a replay command.
// Missing records at or below the stream's progress are stored again (and enqueued for the ERP
// unless their business key is already in the outbox), in one transaction.
type Replayer interface {
	ApplyReplay(ctx context.Context, store, epoch string, recs []protocol.Record) (ReplayResult, error)
}

// CommandRecord is a command sent to an agent and, once reported, its result.
type CommandRecord struct {
	Store     string                  `json:"store"`
	Command   protocol.Command        `json:"command"`
	CreatedAt time.Time               `json:"created_at"`
	Result    *protocol.CommandResult `json:"result,omitempty"`
	ResultAt  time.Time               `json:"result_at,omitzero"`
}

// CommandLog keeps commands sent to agents and their results.
type CommandLog interface {
	// AddCommand records a command before it is published (ErrExists for a known id).
	AddCommand(ctx context.Context, store string, c protocol.Command) error
	// PutCommandResult stores an agent's result for a command it was sent; results for unknown
	// ids or another store are ignored (false). Storing the same result again is harmless.
	PutCommandResult(ctx context.Context, store string, r protocol.CommandResult) (bool, error)
	Command(ctx context.Context, id string) (CommandRecord, error)
}

// CloseRecord is the stored outcome of a store-day close; Body is the reconcile package's JSON.
type CloseRecord struct {
	Store        string    `json:"store"`
	BusinessDate string    `json:"business_date"`
	State        string    `json:"state"`
	Body         []byte    `json:"-"`
	ClosedAt     time.Time `json:"closed_at"`
}

// CloseLog keeps the latest close of each store-day.
type CloseLog interface {
	PutClose(ctx context.Context, c CloseRecord) error
	// GetClose returns ErrNotFound when the day was never closed.
	GetClose(ctx context.Context, store, businessDate string) (CloseRecord, error)
}

// Hub is everything the hub needs of its store; both implementations provide it.
type Hub interface {
	Store
	ExceptionUpdater
	Outbox
	Replayer
	CommandLog
	CloseLog
	Inventory
}

var (
	_ Hub = (*SQLite)(nil)
	_ Hub = (*Postgres)(nil)
)

// checkReplay validates a replay batch: one (store, epoch), seq >= 1, strictly ascending.
func checkReplay(store, epoch string, recs []protocol.Record) error {
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
		if r.Seq == 0 || r.Seq > 1<<62 || r.Hash == "" {
			return fmt.Errorf("%w: records[%d] has seq %d or no hash", ErrBadBatch, i, r.Seq)
		}
		if i > 0 && r.Seq <= recs[i-1].Seq {
			return fmt.Errorf("%w: records[%d] has seq %d after %d", ErrBadBatch, i, r.Seq, recs[i-1].Seq)
		}
	}
	return nil
}
