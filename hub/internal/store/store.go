package store

import (
	"errors"
	"fmt"
	"strings"
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
	Key       string    `json:"key"` // what it is about (terminal, receipt, day): raising the same (store, reason, key) again coalesces
	Detail    string    `json:"detail"`
	State     string    `json:"state"` // open, acknowledged, resolved, reposted
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"` // who made the last state change
	Comment   string    `json:"comment,omitempty"`    // their comment
	Count     int64     `json:"count"`                // how often it was raised
	LastSeen  time.Time `json:"last_seen"`            // when it was last raised
	// Recurs makes a raise after the exception was resolved open it again (for events such as
	// a quarantined capture; a condition found again, such as a day's difference, does not).
	Recurs bool `json:"-"`
}

// ExceptionCount counts the exceptions of one store and reason.
type ExceptionCount struct {
	Store      string    `json:"store"`
	Reason     string    `json:"reason"`
	Exceptions int64     `json:"exceptions"` // rows
	Raised     int64     `json:"raised"`     // raises coalesced into them
	LastSeen   time.Time `json:"last_seen"`
}

// ExceptionFilter selects exceptions; empty fields match everything.
type ExceptionFilter struct {
	Store  string
	Reason string
	State  string
	Limit  int
	// Stores, when not nil, keeps only exceptions of these stores (none when empty).
	Stores []string
	// BeforeID, when > 0, selects exceptions with a smaller id: the page after one whose last
	// (oldest) exception has this id.
	BeforeID int64
	// PerStore, when > 0, keeps at most that many (the newest) of each store, so one store's
	// flood cannot push the others off a page.
	PerStore int
	// OlderThan, when not zero, keeps exceptions first raised before it.
	OlderThan time.Time
	// IDs, when not nil, keeps only these exceptions (at most a few thousand).
	IDs []int64
}

// ExceptionEvent is an entry of an exception's history: its first raise, a reopening or a
// change of state, by whom (the principal; "hub" for a raise), when, from which state to
// which, and the comment.
type ExceptionEvent struct {
	ID          int64     `json:"id"`
	ExceptionID int64     `json:"exception_id"`
	At          time.Time `json:"at"`
	Actor       string    `json:"actor"`
	Action      string    `json:"action"` // ActionRaised, ActionReopened or ActionChanged
	From        string    `json:"from,omitempty"`
	To          string    `json:"to"`
	Comment     string    `json:"comment,omitempty"`
}

// StoreInfo is what the hub knows about one store.
type StoreInfo struct {
	ID        string           `json:"id"`
	State     string           `json:"state"` // StoreActive, StoreDisabled or StoreRemoved
	CreatedAt time.Time        `json:"created_at"`
	Streams   []Stream         `json:"streams"`
	Status    *protocol.Status `json:"status,omitempty"`
	StatusAt  time.Time        `json:"status_at,omitzero"`
	Records   int64            `json:"records"`
	// TradingHours and TimeZone are the store's own ("" for the hub's alerts defaults).
	TradingHours string `json:"trading_hours"`
	TimeZone     string `json:"time_zone"`
	// Maintenance is the store's own maintenance window for updates ("" for the hub's
	// rollouts.maintenance_window), in TimeZone.
	Maintenance string `json:"maintenance"`
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
	// SumOverflow: a kind's total would have left int64; records beyond it are not in Total.
	SumOverflow bool `json:"sum_overflow,omitempty"`
}

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

// ReplayResult is the outcome of ApplyReplay.
type ReplayResult struct {
	AppliedThrough uint64 // the stream's progress (unchanged by a replay)
	Restored       int    // records at or below progress that were missing and are now stored
	Duplicates     int    // records already stored with the same hash
	Conflicts      int    // records stored with another hash (hash_conflict raised, not overwritten)
	Ahead          int    // records past progress, ignored: the normal stream delivers them
}

// CommandRecord is a command sent to an agent and, once reported, its result.
type CommandRecord struct {
	Store     string                  `json:"store"`
	Command   protocol.Command        `json:"command"`
	CreatedAt time.Time               `json:"created_at"`
	Result    *protocol.CommandResult `json:"result,omitempty"`
	ResultAt  time.Time               `json:"result_at,omitzero"`
}

// CloseRecord is the stored outcome of a store-day close; Body is the reconcile package's JSON.
type CloseRecord struct {
	Store        string    `json:"store"`
	BusinessDate string    `json:"business_date"`
	State        string    `json:"state"`
	Body         []byte    `json:"-"`
	ClosedAt     time.Time `json:"closed_at"`
}

// normTime is the precision both engines keep: UTC microseconds.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// filter is a WHERE clause matching each non-empty value of {column, value}, and its arguments.
func filter(conds [][2]string) (string, []any) {
	var parts []string
	var args []any
	for _, c := range conds {
		if c[1] != "" {
			parts = append(parts, c[0]+" = ?")
			args = append(args, c[1])
		}
	}
	if len(parts) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(parts, " AND "), args
}

// inStores narrows a filter's WHERE clause to rows whose col is one of ids; nil ids leave it
// as it is, an empty list matches nothing.
func inStores(where string, args []any, col string, ids []string) (string, []any) {
	if ids == nil {
		return where, args
	}
	cond := "1 = 0"
	if len(ids) > 0 {
		cond = col + " IN (" + placeholders(len(ids)) + ")"
		for _, id := range ids {
			args = append(args, id)
		}
	}
	if where == "" {
		return " WHERE " + cond, args
	}
	return where + " AND " + cond, args
}

func limitOr(limit, def int) int {
	if limit <= 0 {
		return def
	}
	return limit
}

// wrapf prefixes err, when not nil, with what failed.
func wrapf(err error, format string, a ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(a, err)...)
}
