// Package store is the hub's durable store: applied records, per-stream progress, store
// credentials, agent status and exceptions. Two implementations share one contract test suite:
// SQLite (embedded default, modernc.org/sqlite) and PostgreSQL (pgx) for several hub replicas.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// ErrNotFound is returned when a store, record or exception does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned when creating something that already exists.
var ErrExists = errors.New("already exists")

// ErrBadBatch is returned by ApplyBatch for records that are not one (store, epoch) in
// ascending contiguous seq order starting at 1 or later. Nothing of such a batch is applied.
var ErrBadBatch = errors.New("invalid batch")

// ErrCorrupt is returned when the store finds its own invariants broken, e.g. a stream whose
// progress covers a record that is not stored. It needs a person, not a retry.
var ErrCorrupt = errors.New("store invariant broken")

// ApplyResult is the outcome of ApplyBatch, committed durably before it is returned.
type ApplyResult struct {
	// AppliedThrough is the stream's cumulative progress after the call: every seq of the epoch
	// <= AppliedThrough is stored.
	AppliedThrough uint64
	// Applied counts records newly written by this call.
	Applied int
	// Duplicates counts records that were already stored with the same hash.
	Duplicates int
	// Conflicts counts records whose (store, epoch, seq) was already stored with another hash;
	// each one raised an exception of reason "hash_conflict" and was not overwritten.
	Conflicts int
	// ResendFrom is non-zero when the batch started beyond AppliedThrough+1 (a gap): nothing
	// from the batch past the gap was applied and the agent should resend from this seq.
	ResendFrom uint64
}

// Exception reasons raised by this package.
const (
	ReasonHashConflict = "hash_conflict"
	ReasonQuarantine   = "capture_quarantined"
	ReasonSpoolAlarm   = "agent_alarm"
)

// Exception is something a person must look at.
type Exception struct {
	ID        int64     `json:"id"`
	Store     string    `json:"store"`
	Reason    string    `json:"reason"`
	Key       string    `json:"key"` // idempotency key: raising the same (store, reason, key) twice keeps one
	Detail    string    `json:"detail"`
	State     string    `json:"state"` // open, acknowledged, resolved, reposted
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"` // who made the last state change
	Comment   string    `json:"comment,omitempty"`    // their comment
}

// ExceptionFilter selects exceptions; empty fields match everything.
type ExceptionFilter struct {
	Store  string
	Reason string
	State  string
	Limit  int
}

// StoreInfo is what the hub knows about one store.
type StoreInfo struct {
	ID        string           `json:"id"`
	CreatedAt time.Time        `json:"created_at"`
	Streams   []Stream         `json:"streams"`
	Status    *protocol.Status `json:"status,omitempty"`
	StatusAt  time.Time        `json:"status_at,omitzero"`
	Records   int64            `json:"records"`
}

// Stream is the progress of one (store, epoch).
type Stream struct {
	Epoch          string    `json:"epoch"`
	AppliedThrough uint64    `json:"applied_through"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// KindTotal sums the records of one kind in a day.
type KindTotal struct {
	Kind  protocol.Kind `json:"kind"`
	Count int64         `json:"count"`
	Total int64         `json:"total"`
}

// TerminalDay is one terminal's receipts in a business day.
type TerminalDay struct {
	Terminal     string     `json:"terminal"`
	Count        int64      `json:"count"`
	FirstReceipt string     `json:"first_receipt"`
	LastReceipt  string     `json:"last_receipt"`
	Gaps         [][2]int64 `json:"gaps"` // inclusive ranges of missing numeric receipt numbers
}

// Day summarises one store's business day.
type Day struct {
	Store        string        `json:"store"`
	BusinessDate string        `json:"business_date"`
	Kinds        []KindTotal   `json:"kinds"`
	Terminals    []TerminalDay `json:"terminals"`
	// Recaptured counts records whose business key (terminal, kind, receipt) was already
	// counted, e.g. captured again under a new epoch after a spool reset; they count once.
	Recaptured int64 `json:"recaptured"`
}

// Store is the hub's persistence. Implementations are safe for concurrent use by several
// goroutines and, for PostgreSQL, by several hub processes: ApplyBatch serialises writers of
// one store (row lock on the stream) so replicas never interleave a store's records.
type Store interface {
	// ApplyBatch applies records of one (store, epoch), given in ascending contiguous seq order,
	// in one transaction: records at or below the stream's progress are compared by hash
	// (duplicate or conflict), the contiguous run after it is inserted, and a batch that starts
	// past progress+1 applies nothing and reports ResendFrom. The store must exist.
	ApplyBatch(ctx context.Context, store, epoch string, recs []protocol.Record) (ApplyResult, error)

	// AddStore registers a store with the hash of its MQTT password (ErrExists if present).
	AddStore(ctx context.Context, id, passwordHash string) error
	// Credentials returns the password hash of a store (ErrNotFound if unknown).
	Credentials(ctx context.Context, id string) (passwordHash string, err error)
	ListStores(ctx context.Context) ([]StoreInfo, error)
	GetStore(ctx context.Context, id string) (StoreInfo, error)

	// PutStatus keeps the latest status of an agent.
	PutStatus(ctx context.Context, st protocol.Status, at time.Time) error

	// Records lists applied records of a store ordered by (epoch creation, seq) after afterSeq
	// within the store's current (latest) epoch when epoch is "", up to limit.
	Records(ctx context.Context, store, epoch string, afterSeq uint64, limit int) ([]protocol.Record, error)
	// Day summarises a business day.
	Day(ctx context.Context, store, businessDate string) (Day, error)

	// RaiseException creates an open exception unless one with the same (store, reason, key)
	// exists; it reports whether it created one.
	RaiseException(ctx context.Context, e Exception) (created bool, err error)
	Exceptions(ctx context.Context, f ExceptionFilter) ([]Exception, error)

	Close() error
}

// ExceptionUpdater changes the state of an exception (open, acknowledged, resolved); it returns
// ErrNotFound for an unknown id. Both implementations provide it; it is kept out of Store so
// that test fakes of Store need not.
type ExceptionUpdater interface {
	SetExceptionState(ctx context.Context, id int64, state string) error
	// UpdateException changes state and records who did it and why; it returns the updated
	// exception.
	UpdateException(ctx context.Context, id int64, state, by, comment string) (Exception, error)
	// Exception returns one exception by id.
	Exception(ctx context.Context, id int64) (Exception, error)
}
