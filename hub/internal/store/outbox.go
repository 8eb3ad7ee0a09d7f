package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lanebridge/lanebridge/protocol"
)

// The ERP outbox.
//
// ApplyBatch and ApplyReplay enqueue, in the transaction that stores a record, one posting per
// business key (store, terminal, business date, receipt, kind) for the kinds that move stock or
// revenue in the ERP: sales and returns. Voids and no-sales move nothing and post nothing;
// paid-ins, paid-outs and reports are settled by the daily close, not posted per receipt. The
// key is unique in the table, so a replayed, resent or re-captured record never enqueues twice;
// the same key arriving with other business content raises a duplicate_receipt exception and
// keeps the first posting.

// Posting states.
const (
	PostingPending  = "pending"  // waiting to be posted (or retried)
	PostingDone     = "done"     // the ERP has it; Ref names the ERP document
	PostingRejected = "rejected" // the ERP rejected it permanently; an erp_rejected exception is open
)

// Exception reasons raised by the outbox.
const (
	ReasonERPRejected      = "erp_rejected"
	ReasonDuplicateReceipt = "duplicate_receipt"
)

// ErrLeaseLost is returned when a posting is finished by an owner whose lease has been taken
// over by another (its lease expired). The other owner's Find resolves the outcome.
var ErrLeaseLost = errors.New("posting lease lost")

// Posting is one entry of the ERP outbox.
type Posting struct {
	ID           int64         `json:"id"`
	Key          string        `json:"key"`
	Store        string        `json:"store"`
	Terminal     string        `json:"terminal"`
	BusinessDate string        `json:"business_date"`
	Receipt      string        `json:"receipt"`
	Kind         protocol.Kind `json:"kind"`
	Epoch        string        `json:"epoch"`
	Seq          uint64        `json:"seq"`
	ContentHash  string        `json:"content_hash"`
	Total        int64         `json:"total"`
	State        string        `json:"state"`
	Attempts     int           `json:"attempts"`
	NextAt       time.Time     `json:"next_at"`
	Ref          string        `json:"ref,omitempty"`
	LastError    string        `json:"last_error,omitempty"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
	PostedAt     time.Time     `json:"posted_at,omitzero"`
	// Record is the posted record; filled by ClaimPostings only (nil when the record is not
	// stored, e.g. removed by hand: the posting then waits for a replay to restore it).
	Record *protocol.Record `json:"record,omitempty"`
}

// PostingFilter selects postings; empty fields match everything.
type PostingFilter struct {
	Store        string
	BusinessDate string
	State        string
	Key          string
	Limit        int // default 1000
}

// PostingOutcome is what a poster learned about a claimed posting.
type PostingOutcome struct {
	// Done: the ERP holds the posting as Ref.
	Done bool
	Ref  string
	// Rejected: permanent rejection with Error as the ERP's message; raises erp_rejected.
	Rejected bool
	// Otherwise a retry at RetryAt with Error kept as LastError.
	Error   string
	RetryAt time.Time
}

// Outbox is the ERP outbox of the hub's store. Both implementations provide it; it is kept out
// of Store so that fakes of Store need not. Safe for concurrent use; with PostgreSQL several hub
// processes may claim at once and never get the same posting while its lease runs.
type Outbox interface {
	// ClaimPostings leases up to limit due pending postings (next_at <= now, no running lease)
	// to owner for lease, oldest first, with their records.
	ClaimPostings(ctx context.Context, owner string, lease time.Duration, limit int) ([]Posting, error)
	// FinishPosting records the outcome of a claimed posting and ends the lease. It returns
	// ErrLeaseLost when owner no longer holds it and ErrNotFound for an unknown id.
	FinishPosting(ctx context.Context, id int64, owner string, o PostingOutcome) error
	// RepostPosting puts a rejected (or pending) posting back to pending, due now, with its
	// attempts reset. A done posting is not reposted (ErrExists).
	RepostPosting(ctx context.Context, id int64) error
	// ReleaseLeases ends every lease held by owner, or every lease when owner is "" (a single
	// hub process starting on SQLite: nobody else can hold one).
	ReleaseLeases(ctx context.Context, owner string) error
	Postings(ctx context.Context, f PostingFilter) ([]Posting, error)
}

// Postable reports whether records of kind k are posted to the ERP.
func Postable(k protocol.Kind) bool { return k == protocol.KindSale || k == protocol.KindReturn }

// PostingKey is the business key store|terminal|business_date|receipt|kind. A record without
// a receipt number is keyed by its identity instead (receipt "@epoch:seq").
func PostingKey(r *protocol.Record) string {
	return strings.Join([]string{r.Store, r.Terminal, r.BusinessDate, postingReceipt(r), string(r.Kind)}, "|")
}

func postingReceipt(r *protocol.Record) string {
	if r.Receipt != "" {
		return r.Receipt
	}
	return "@" + r.Epoch + ":" + strconv.FormatUint(r.Seq, 10)
}

// ContentHash is the SHA-256 of a record's business content: its canonical form without the
// agent-assigned identity (epoch, seq, capture time, hash, source). Two captures of the same
// receipt have the same content hash.
func ContentHash(r protocol.Record) string {
	r.Epoch, r.Seq, r.CapturedAt, r.Hash, r.Source = "", 0, time.Time{}, "", nil
	sum := sha256.Sum256(r.Canonical())
	return hex.EncodeToString(sum[:])
}

// newPosting is the outbox row for record r.
func newPosting(r *protocol.Record) Posting {
	return Posting{
		Key: PostingKey(r), Store: r.Store, Terminal: r.Terminal, BusinessDate: r.BusinessDate,
		Receipt: postingReceipt(r), Kind: r.Kind, Epoch: r.Epoch, Seq: r.Seq, ContentHash: ContentHash(*r),
		Total: r.Total, State: PostingPending,
	}
}

func duplicateReceiptException(p Posting, storedEpoch string, storedSeq uint64) Exception {
	return Exception{
		Store:  p.Store,
		Reason: ReasonDuplicateReceipt,
		Key:    p.Key + "|" + p.ContentHash[:16],
		Detail: fmt.Sprintf("receipt %s of terminal %s on %s (%s) was captured again with other content: epoch %s seq %d; the first capture (epoch %s seq %d) is the one posted",
			p.Receipt, p.Terminal, p.BusinessDate, p.Kind, p.Epoch, p.Seq, storedEpoch, storedSeq),
		State: StateOpen,
	}
}

func rejectedException(p Posting, msg string) Exception {
	return Exception{
		Store:  p.Store,
		Reason: ReasonERPRejected,
		Key:    p.Key,
		Detail: fmt.Sprintf("posting %d (%s) rejected by the ERP: %s", p.ID, p.Key, msg),
		State:  StateOpen,
	}
}

func checkOutcome(o PostingOutcome) error {
	if o.Done && o.Rejected {
		return errors.New("posting outcome is both done and rejected")
	}
	if !o.Done && !o.Rejected && o.RetryAt.IsZero() {
		return errors.New("posting outcome: a retry needs RetryAt")
	}
	return nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// PostingSwitch turns the ERP outbox on or off. With postings off (a hub without an ERP,
// erp.kind none) ApplyBatch and ApplyReplay store records and enqueue nothing, so no posting
// waits forever for an ERP that does not exist. Call it before the store is used; on by default.
type PostingSwitch interface {
	SetPostings(enabled bool)
}

var (
	_ PostingSwitch = (*SQLite)(nil)
	_ PostingSwitch = (*Postgres)(nil)
)

// SetPostings implements PostingSwitch.
func (s *SQLite) SetPostings(enabled bool) { s.noPostings.Store(!enabled) }

// SetPostings implements PostingSwitch.
func (p *Postgres) SetPostings(enabled bool) { p.noPostings.Store(!enabled) }

func (s *SQLite) enqueue(ctx context.Context, tx *sql.Tx, run []protocol.Record, now int64) error {
	if s.noPostings.Load() {
		return nil
	}
	return sqliteEnqueue(ctx, tx, run, now)
}

func (p *Postgres) enqueue(ctx context.Context, tx pgx.Tx, run []protocol.Record, now time.Time) error {
	if p.noPostings.Load() {
		return nil
	}
	return pgEnqueue(ctx, tx, run, now)
}
