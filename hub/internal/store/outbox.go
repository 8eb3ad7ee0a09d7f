package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"strings"
	"time"

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
	// Stores, when not nil, keeps only postings of these stores (none when empty).
	Stores []string
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

// Postable reports whether records of kind k are posted to the ERP.
func Postable(k protocol.Kind) bool { return k == protocol.KindSale || k == protocol.KindReturn }

// newPosting is the outbox row for record r.
func newPosting(r *protocol.Record) Posting {
	return Posting{
		Key: r.BusinessKey(), Store: r.Store, Terminal: r.Terminal, BusinessDate: r.BusinessDate,
		Receipt: r.KeyReceipt(), Kind: r.Kind, Epoch: r.Epoch, Seq: r.Seq, ContentHash: r.ContentHash(),
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

func checkOutcome(o PostingOutcome) error {
	if o.Done && o.Rejected {
		return errors.New("posting outcome is both done and rejected")
	}
	if !o.Done && !o.Rejected && o.RetryAt.IsZero() {
		return errors.New("posting outcome: a retry needs RetryAt")
	}
	return nil
}

var postingInsertCols = []string{"key", "store", "terminal", "business_date", "receipt", "kind", "epoch", "seq",
	"content_hash", "total", "state", "next_at", "created_at", "updated_at"}

// enqueue adds the postings of newly stored records in the caller's transaction. A business
// key already queued with other content raises duplicate_receipt and keeps the first.
func (s *DB) enqueue(ctx context.Context, t tx, run []protocol.Record, now any) error {
	if s.noPostings.Load() {
		return nil
	}
	var ps []Posting
	var rs [][]any
	for i := range run {
		if Postable(run[i].Kind) {
			p := newPosting(&run[i])
			ps = append(ps, p)
			rs = append(rs, []any{p.Key, p.Store, p.Terminal, p.BusinessDate, p.Receipt, string(p.Kind), p.Epoch, int64(p.Seq),
				p.ContentHash, p.Total, p.State, now, now, now})
		}
	}
	inserted, err := t.insertNew(ctx, "postings", postingInsertCols, rs, "key")
	if err != nil {
		return fmt.Errorf("enqueue postings: %w", err)
	}
	if err := s.pendAvail(ctx, t, enqueued(run, inserted)); err != nil {
		return err
	}
	for off := 0; len(inserted) < len(ps) && off < len(ps); off += inChunk {
		if err := s.checkRequeued(ctx, t, ps[off:min(off+inChunk, len(ps))], now); err != nil {
			return err
		}
	}
	return nil
}

// enqueued is the records of run whose postings were inserted (keys).
func enqueued(run []protocol.Record, keys []string) []*protocol.Record {
	in := make(map[string]bool, len(keys))
	for _, k := range keys {
		in[k] = true
	}
	var out []*protocol.Record
	for i := range run {
		if r := &run[i]; Postable(r.Kind) && in[r.BusinessKey()] {
			in[r.BusinessKey()] = false // the first of a key in run is the one queued
			out = append(out, r)
		}
	}
	return out
}

// checkRequeued compares each posting of chunk with the queued one of its key (the first
// capture of a receipt, which may be in chunk itself).
func (s *DB) checkRequeued(ctx context.Context, t tx, chunk []Posting, now any) error {
	keys := make([]any, len(chunk))
	for i, p := range chunk {
		keys[i] = p.Key
	}
	rs, err := t.query(ctx, `SELECT key, content_hash, epoch, seq FROM postings WHERE key IN (`+placeholders(len(keys))+`)`, keys...)
	queued, err := scanAll(rs, err, func(r rows, q *Posting) error { return r.Scan(&q.Key, &q.ContentHash, &q.Epoch, &q.Seq) })
	if err != nil {
		return fmt.Errorf("enqueue postings: read queued: %w", err)
	}
	byKey := make(map[string]Posting, len(queued))
	for _, q := range queued {
		byKey[q.Key] = q
	}
	for _, p := range chunk {
		if q := byKey[p.Key]; q.ContentHash != p.ContentHash { // the row just queued is p itself
			if _, err := s.raise(ctx, t, duplicateReceiptException(p, q.Epoch, q.Seq), now); err != nil {
				return fmt.Errorf("raise duplicate receipt %s: %w", p.Key, err)
			}
		}
	}
	return nil
}

const postingCols = `p.id, p.key, p.store, p.terminal, p.business_date, p.receipt, p.kind, p.epoch, p.seq,
	p.content_hash, p.total, p.state, p.attempts, p.next_at, p.ref, p.last_error, p.created_at, p.updated_at, p.posted_at`

func scanPosting(r row, p *Posting, extra ...any) error {
	var kind string
	err := r.Scan(append([]any{&p.ID, &p.Key, &p.Store, &p.Terminal, &p.BusinessDate, &p.Receipt, &kind, &p.Epoch, &p.Seq,
		&p.ContentHash, &p.Total, &p.State, &p.Attempts, scanTime{&p.NextAt}, &p.Ref, &p.LastError,
		scanTime{&p.CreatedAt}, scanTime{&p.UpdatedAt}, scanTime{&p.PostedAt}}, extra...)...)
	p.Kind = protocol.Kind(kind)
	return err
}

// ClaimPostings leases up to limit due pending postings (next_at <= now, no running lease) to
// owner for lease, oldest first, with their records. On PostgreSQL rows another replica is
// claiming are skipped (SKIP LOCKED), so concurrent claimers get disjoint postings.
func (s *DB) ClaimPostings(ctx context.Context, owner string, lease time.Duration, limit int) ([]Posting, error) {
	if owner == "" || lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("claim postings: need an owner, a lease and a limit")
	}
	var out []Posting
	err := s.write(ctx, func(t tx) error {
		now := clock.Now()
		rs, err := t.query(ctx, `SELECT id FROM postings WHERE state = 'pending' AND next_at <= ? AND lease_until < ?
			ORDER BY next_at, id LIMIT ?`+s.d.skipLocked, s.ts(now), s.ts(now), limit)
		ids, err := scanAll(rs, err, func(r rows, id *any) error { return r.Scan(id) })
		if err != nil || len(ids) == 0 {
			return err
		}
		in := "(" + placeholders(len(ids)) + ")"
		if _, err := t.exec(ctx, `UPDATE postings SET lease_owner = ?, lease_until = ?, updated_at = ? WHERE id IN `+in,
			append([]any{owner, s.ts(now.Add(lease)), s.ts(now)}, ids...)...); err != nil {
			return err
		}
		rs, err = t.query(ctx, `SELECT `+postingCols+`, COALESCE(r.body, p.body) FROM postings p
			LEFT JOIN records r ON r.store = p.store AND r.epoch = p.epoch AND r.seq = p.seq
			WHERE p.id IN `+in+` ORDER BY p.next_at, p.id`, ids...)
		out, err = scanAll(rs, err, func(r rows, p *Posting) error {
			var body []byte
			err := scanPosting(r, p, &body)
			if err == nil && body != nil {
				p.Record, err = decode[*protocol.Record](body, "record")
			}
			return err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	return out, nil
}

// FinishPosting records the outcome of a claimed posting and ends the lease. It returns
// ErrLeaseLost when owner no longer holds it and ErrNotFound for an unknown id. A rejection
// raises (or reopens) the posting's erp_rejected exception.
func (s *DB) FinishPosting(ctx context.Context, id int64, owner string, o PostingOutcome) error {
	if err := checkOutcome(o); err != nil {
		return fmt.Errorf("finish posting %d: %w", id, err)
	}
	err := s.write(ctx, func(t tx) error {
		var holder string
		var p Posting
		err := scanPosting(t.queryRow(ctx, `SELECT `+postingCols+`, p.lease_owner FROM postings p WHERE p.id = ?`+s.d.forUpdate, id), &p, &holder)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if holder != owner || p.State != PostingPending {
			return fmt.Errorf("held by %q in state %s: %w", holder, p.State, ErrLeaseLost)
		}
		now, never := s.now(), s.ts(time.Unix(0, 0))
		msg := o.Error
		if len(msg) > 2000 {
			msg = strings.ToValidUTF8(msg[:2000], "") + "…"
		}
		switch {
		case o.Done:
			_, err = t.exec(ctx, `UPDATE postings SET state = 'done', ref = ?, attempts = attempts + 1, last_error = '',
				lease_owner = '', lease_until = ?, posted_at = ?, updated_at = ? WHERE id = ?`, o.Ref, never, now, now, id)
			if err == nil {
				err = s.postedAvail(ctx, t, p, now)
			}
		case o.Rejected:
			_, err = t.exec(ctx, `UPDATE postings SET state = 'rejected', attempts = attempts + 1, last_error = ?,
				lease_owner = '', lease_until = ?, updated_at = ? WHERE id = ?`, msg, never, now, id)
			if err == nil { // raise erp_rejected, or reopen it after a re-post was rejected again
				_, _, err = s.upsertException(ctx, t, p.Store, ReasonERPRejected, p.Key, now, `INSERT INTO exceptions
					(store, reason, key, detail, state, created_at, updated_at, count, last_seen) VALUES (?, ?, ?, ?, 'open', ?, ?, 1, ?)
					ON CONFLICT (store, reason, key) DO UPDATE SET detail = excluded.detail, state = 'open', updated_at = excluded.updated_at,
					updated_by = '', comment = '', count = exceptions.count + 1, last_seen = excluded.last_seen RETURNING id, count, state`,
					p.Store, ReasonERPRejected, p.Key, fmt.Sprintf("posting %d (%s) rejected by the ERP: %s", p.ID, p.Key, msg), now, now, now)
			}
		default:
			_, err = t.exec(ctx, `UPDATE postings SET attempts = attempts + 1, last_error = ?, next_at = ?,
				lease_owner = '', lease_until = ?, updated_at = ? WHERE id = ?`, msg, s.ts(o.RetryAt), never, now, id)
		}
		return err
	})
	return wrapf(err, "finish posting %d", id)
}

// RepostPosting puts a rejected (or pending) posting back to pending, due now, with its
// attempts reset. A done posting is not reposted (ErrExists).
func (s *DB) RepostPosting(ctx context.Context, id int64) error {
	err := s.write(ctx, func(t tx) error {
		now := s.now()
		n, err := t.exec(ctx, `UPDATE postings SET state = 'pending', attempts = 0, next_at = ?, last_error = '',
			updated_at = ? WHERE id = ? AND state != 'done'`, now, now, id)
		if err != nil || n == 1 {
			return err
		}
		var state string
		err = t.queryRow(ctx, `SELECT state FROM postings WHERE id = ?`, id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("already %s: %w", state, ErrExists)
	})
	return wrapf(err, "repost posting %d", id)
}

// ReleaseLeases ends every lease held by owner, or every lease when owner is "" (a single hub
// process starting on SQLite: nobody else can hold one).
func (s *DB) ReleaseLeases(ctx context.Context, owner string) error {
	_, err := s.exec(ctx, `UPDATE postings SET lease_owner = '', lease_until = ?
		WHERE lease_owner != '' AND (? = '' OR lease_owner = ?)`, s.ts(time.Unix(0, 0)), owner, owner)
	return wrapf(err, "release posting leases")
}

// Posting returns one posting by id (ErrNotFound if unknown).
func (s *DB) Posting(ctx context.Context, id int64) (Posting, error) {
	var p Posting
	err := s.read(ctx, func(t tx) error {
		return scanPosting(t.queryRow(ctx, `SELECT `+postingCols+` FROM postings p WHERE p.id = ?`, id), &p)
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return p, wrapf(err, "posting %d", id)
}

// Postings lists postings matching f, oldest first.
func (s *DB) Postings(ctx context.Context, f PostingFilter) ([]Posting, error) {
	where, args := filter([][2]string{{"p.store", f.Store}, {"p.business_date", f.BusinessDate}, {"p.state", f.State}, {"p.key", f.Key}})
	where, args = inStores(where, args, "p.store", f.Stores)
	var out []Posting
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT `+postingCols+` FROM postings p`+where+` ORDER BY p.id LIMIT ?`,
			append(args, limitOr(f.Limit, defaultRecordsLimit))...)
		out, err = scanAll(rs, err, func(r rows, p *Posting) error { return scanPosting(r, p) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list postings: %w", err)
	}
	return out, nil
}
