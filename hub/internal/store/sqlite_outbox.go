package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// sqliteEnqueue adds the postings of newly stored records in the caller's transaction.
func sqliteEnqueue(ctx context.Context, tx *sql.Tx, run []protocol.Record, now int64) error {
	var ins *sql.Stmt
	defer func() {
		if ins != nil {
			ins.Close()
		}
	}()
	for i := range run {
		r := &run[i]
		if !Postable(r.Kind) {
			continue
		}
		if ins == nil {
			var err error
			ins, err = tx.PrepareContext(ctx, `INSERT INTO postings (key, store, terminal, business_date, receipt, kind,
				epoch, seq, content_hash, total, state, next_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`)
			if err != nil {
				return fmt.Errorf("prepare enqueue: %w", err)
			}
		}
		p := newPosting(r)
		res, err := ins.ExecContext(ctx, p.Key, p.Store, p.Terminal, p.BusinessDate, p.Receipt, string(p.Kind),
			p.Epoch, p.Seq, p.ContentHash, p.Total, p.State, now, now, now)
		if err != nil {
			return fmt.Errorf("enqueue posting %s: %w", p.Key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("enqueue posting %s: %w", p.Key, err)
		} else if n == 1 {
			continue
		}
		var h, ep string
		var seq uint64
		if err := tx.QueryRowContext(ctx, `SELECT content_hash, epoch, seq FROM postings WHERE key = ?`, p.Key).Scan(&h, &ep, &seq); err != nil {
			return fmt.Errorf("enqueue posting %s: read existing: %w", p.Key, err)
		}
		if h == p.ContentHash {
			continue
		}
		e := duplicateReceiptException(p, ep, seq)
		if _, err := tx.ExecContext(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store, reason, key) DO NOTHING`,
			e.Store, e.Reason, e.Key, e.Detail, e.State, now, now); err != nil {
			return fmt.Errorf("raise duplicate receipt %s: %w", p.Key, err)
		}
	}
	return nil
}

const postingCols = `p.id, p.key, p.store, p.terminal, p.business_date, p.receipt, p.kind, p.epoch, p.seq,
	p.content_hash, p.total, p.state, p.attempts, p.next_at, p.ref, p.last_error, p.created_at, p.updated_at, p.posted_at`

func scanSQLitePosting(sc interface{ Scan(...any) error }, extra ...any) (Posting, error) {
	var p Posting
	var kind string
	var next, c, u, posted int64
	dest := append([]any{&p.ID, &p.Key, &p.Store, &p.Terminal, &p.BusinessDate, &p.Receipt, &kind, &p.Epoch, &p.Seq,
		&p.ContentHash, &p.Total, &p.State, &p.Attempts, &next, &p.Ref, &p.LastError, &c, &u, &posted}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return p, err
	}
	p.Kind = protocol.Kind(kind)
	p.NextAt, p.CreatedAt, p.UpdatedAt = fromMicros(next), fromMicros(c), fromMicros(u)
	if posted != 0 {
		p.PostedAt = fromMicros(posted)
	}
	return p, nil
}

// ClaimPostings implements Outbox.
func (s *SQLite) ClaimPostings(ctx context.Context, owner string, lease time.Duration, limit int) ([]Posting, error) {
	if owner == "" || lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("claim postings: need an owner, a lease and a limit")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	defer tx.Rollback()
	now := micros(time.Now())
	rows, err := tx.QueryContext(ctx, `SELECT id FROM postings WHERE state = 'pending' AND next_at <= ? AND lease_until < ?
		ORDER BY next_at, id LIMIT ?`, now, now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim postings: %w", err)
		}
		ids = append(ids, id)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",") + ")"
	args := append([]any{owner, now + lease.Microseconds(), now}, ids...)
	if _, err := tx.ExecContext(ctx, `UPDATE postings SET lease_owner = ?, lease_until = ?, updated_at = ? WHERE id IN `+in, args...); err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT `+postingCols+`, r.body FROM postings p
		LEFT JOIN records r ON r.store = p.store AND r.epoch = p.epoch AND r.seq = p.seq
		WHERE p.id IN `+in+` ORDER BY p.next_at, p.id`, ids...)
	if err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	var out []Posting
	for rows.Next() {
		var body []byte
		p, err := scanSQLitePosting(rows, &body)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim postings: %w", err)
		}
		if body != nil {
			r, err := decodeRecord(body)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("claim postings: %w", err)
			}
			p.Record = &r
		}
		out = append(out, p)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim postings: commit: %w", err)
	}
	return out, nil
}

// FinishPosting implements Outbox.
func (s *SQLite) FinishPosting(ctx context.Context, id int64, owner string, o PostingOutcome) error {
	if err := checkOutcome(o); err != nil {
		return fmt.Errorf("finish posting %d: %w", id, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("finish posting %d: %w", id, err)
	}
	defer tx.Rollback()
	row := tx.QueryRowContext(ctx, `SELECT `+postingCols+`, p.lease_owner FROM postings p WHERE p.id = ?`, id)
	var holder string
	p, err := scanSQLitePosting(row, &holder)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("finish posting %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("finish posting %d: %w", id, err)
	}
	if holder != owner || p.State != PostingPending {
		return fmt.Errorf("finish posting %d: held by %q in state %s: %w", id, holder, p.State, ErrLeaseLost)
	}
	now := micros(time.Now())
	msg := truncateText(o.Error, 2000)
	switch {
	case o.Done:
		_, err = tx.ExecContext(ctx, `UPDATE postings SET state = 'done', ref = ?, attempts = attempts + 1, last_error = '',
			lease_owner = '', lease_until = 0, posted_at = ?, updated_at = ? WHERE id = ?`, o.Ref, now, now, id)
	case o.Rejected:
		_, err = tx.ExecContext(ctx, `UPDATE postings SET state = 'rejected', attempts = attempts + 1, last_error = ?,
			lease_owner = '', lease_until = 0, updated_at = ? WHERE id = ?`, msg, now, id)
		if err == nil {
			e := rejectedException(p, msg)
			_, err = tx.ExecContext(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
				VALUES (?, ?, ?, ?, 'open', ?, ?) ON CONFLICT (store, reason, key) DO UPDATE SET
				detail = excluded.detail, state = 'open', updated_at = excluded.updated_at, updated_by = '', comment = ''`,
				e.Store, e.Reason, e.Key, e.Detail, now, now)
		}
	default:
		_, err = tx.ExecContext(ctx, `UPDATE postings SET attempts = attempts + 1, last_error = ?, next_at = ?,
			lease_owner = '', lease_until = 0, updated_at = ? WHERE id = ?`, msg, micros(o.RetryAt), now, id)
	}
	if err != nil {
		return fmt.Errorf("finish posting %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("finish posting %d: commit: %w", id, err)
	}
	return nil
}

// RepostPosting implements Outbox.
func (s *SQLite) RepostPosting(ctx context.Context, id int64) error {
	now := micros(time.Now())
	res, err := s.w.ExecContext(ctx, `UPDATE postings SET state = 'pending', attempts = 0, next_at = ?, last_error = '',
		updated_at = ? WHERE id = ? AND state != 'done'`, now, now, id)
	if err != nil {
		return fmt.Errorf("repost posting %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("repost posting %d: %w", id, err)
	} else if n == 1 {
		return nil
	}
	var state string
	err = s.w.QueryRowContext(ctx, `SELECT state FROM postings WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("repost posting %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("repost posting %d: %w", id, err)
	}
	return fmt.Errorf("repost posting %d: already %s: %w", id, state, ErrExists)
}

// ReleaseLeases implements Outbox.
func (s *SQLite) ReleaseLeases(ctx context.Context, owner string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE postings SET lease_owner = '', lease_until = 0
		WHERE lease_owner != '' AND (? = '' OR lease_owner = ?)`, owner, owner); err != nil {
		return fmt.Errorf("release posting leases: %w", err)
	}
	return nil
}

// Postings implements Outbox, oldest first.
func (s *SQLite) Postings(ctx context.Context, f PostingFilter) ([]Posting, error) {
	q := `SELECT ` + postingCols + ` FROM postings p`
	var conds []string
	var args []any
	for _, c := range []struct{ col, val string }{{"store", f.Store}, {"business_date", f.BusinessDate}, {"state", f.State}, {"key", f.Key}} {
		if c.val != "" {
			conds = append(conds, "p."+c.col+" = ?")
			args = append(args, c.val)
		}
	}
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultRecordsLimit
	}
	q += " ORDER BY p.id LIMIT ?"
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list postings: %w", err)
	}
	out := []Posting{}
	for rows.Next() {
		p, err := scanSQLitePosting(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list postings: %w", err)
		}
		out = append(out, p)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("list postings: %w", err)
	}
	return out, nil
}

// ApplyReplay implements Replayer.
func (s *SQLite) ApplyReplay(ctx context.Context, store, epoch string, recs []protocol.Record) (ReplayResult, error) {
	var res ReplayResult
	if err := checkReplay(store, epoch, recs); err != nil {
		return res, fmt.Errorf("apply replay %s/%s: %w", store, epoch, err)
	}
	bodies, err := marshalBodies(recs)
	if err != nil {
		return res, fmt.Errorf("apply replay %s/%s: %w", store, epoch, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("apply replay %s/%s: %w", store, epoch, err)
	}
	defer tx.Rollback()
	var p uint64
	err = tx.QueryRowContext(ctx, `SELECT applied_through FROM streams WHERE store = ? AND epoch = ?`, store, epoch).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		ok, err := sqliteStoreExists(ctx, tx, store)
		if err != nil {
			return res, fmt.Errorf("apply replay %s/%s: %w", store, epoch, err)
		}
		if !ok {
			return res, fmt.Errorf("apply replay %s/%s: %w", store, epoch, ErrNotFound)
		}
		res.Ahead = len(recs)
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("apply replay %s/%s: read progress: %w", store, epoch, err)
	}
	res.AppliedThrough = p
	now := micros(time.Now())
	for i := range recs {
		r := &recs[i]
		if r.Seq > p {
			res.Ahead++
			continue
		}
		var h string
		err := tx.QueryRowContext(ctx, `SELECT hash FROM records WHERE store = ? AND epoch = ? AND seq = ?`, store, epoch, r.Seq).Scan(&h)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := sqliteInsertRecords(ctx, tx, store, epoch, recs[i:i+1], bodies[i:i+1], now); err != nil {
				return res, fmt.Errorf("apply replay %s/%s: %w", store, epoch, err)
			}
			if err := s.enqueue(ctx, tx, recs[i:i+1], now); err != nil {
				return res, fmt.Errorf("apply replay %s/%s: %w", store, epoch, err)
			}
			res.Restored++
		case err != nil:
			return res, fmt.Errorf("apply replay %s/%s: seq %d: %w", store, epoch, r.Seq, err)
		case h == r.Hash:
			res.Duplicates++
		default:
			res.Conflicts++
			e := conflictException(store, epoch, conflict{seq: r.Seq, stored: h, offered: r.Hash})
			if _, err := tx.ExecContext(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store, reason, key) DO NOTHING`,
				e.Store, e.Reason, e.Key, e.Detail, e.State, now, now); err != nil {
				return res, fmt.Errorf("apply replay %s/%s: raise conflict: %w", store, epoch, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return ReplayResult{}, fmt.Errorf("apply replay %s/%s: commit: %w", store, epoch, err)
	}
	return res, nil
}

// AddCommand implements CommandLog.
func (s *SQLite) AddCommand(ctx context.Context, store string, c protocol.Command) error {
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("add command %s: %w", c.ID, err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO commands (id, store, body, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, c.ID, store, body, micros(time.Now()))
	if err != nil {
		return fmt.Errorf("add command %s: %w", c.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("add command %s: %w", c.ID, ErrExists)
	}
	return nil
}

// PutCommandResult implements CommandLog.
func (s *SQLite) PutCommandResult(ctx context.Context, store string, r protocol.CommandResult) (bool, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("put command result %s: %w", r.ID, err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE commands SET result = ?, result_at = ? WHERE id = ? AND store = ? AND result != ?`,
		body, micros(time.Now()), r.ID, store, body)
	if err != nil {
		return false, fmt.Errorf("put command result %s: %w", r.ID, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Command implements CommandLog.
func (s *SQLite) Command(ctx context.Context, id string) (CommandRecord, error) {
	var c CommandRecord
	var body, result string
	var at, rat int64
	err := s.r.QueryRowContext(ctx, `SELECT store, body, created_at, result, result_at FROM commands WHERE id = ?`, id).
		Scan(&c.Store, &body, &at, &result, &rat)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("command %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("command %s: %w", id, err)
	}
	return finishCommandRecord(c, []byte(body), []byte(result), fromMicros(at), rat != 0, fromMicros(rat))
}

func finishCommandRecord(c CommandRecord, body, result []byte, at time.Time, hasResult bool, rat time.Time) (CommandRecord, error) {
	c.CreatedAt = at
	if err := json.Unmarshal(body, &c.Command); err != nil {
		return c, fmt.Errorf("command %s: decode: %w", c.Command.ID, err)
	}
	if hasResult && len(result) > 0 {
		var r protocol.CommandResult
		if err := json.Unmarshal(result, &r); err != nil {
			return c, fmt.Errorf("command %s: decode result: %w", c.Command.ID, err)
		}
		c.Result, c.ResultAt = &r, rat
	}
	return c, nil
}

// PutClose implements CloseLog.
func (s *SQLite) PutClose(ctx context.Context, c CloseRecord) error {
	if c.ClosedAt.IsZero() {
		c.ClosedAt = time.Now()
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO closes (store, business_date, state, body, closed_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (store, business_date) DO UPDATE SET state = excluded.state, body = excluded.body, closed_at = excluded.closed_at`,
		c.Store, c.BusinessDate, c.State, string(c.Body), micros(c.ClosedAt)); err != nil {
		return fmt.Errorf("put close %s/%s: %w", c.Store, c.BusinessDate, err)
	}
	return nil
}

// GetClose implements CloseLog.
func (s *SQLite) GetClose(ctx context.Context, store, businessDate string) (CloseRecord, error) {
	c := CloseRecord{Store: store, BusinessDate: businessDate}
	var body string
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT state, body, closed_at FROM closes WHERE store = ? AND business_date = ?`, store, businessDate).
		Scan(&c.State, &body, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("close %s/%s: %w", store, businessDate, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("close %s/%s: %w", store, businessDate, err)
	}
	c.Body, c.ClosedAt = []byte(body), fromMicros(at)
	return c, nil
}

// UpdateException implements ExceptionUpdater.
func (s *SQLite) UpdateException(ctx context.Context, id int64, state, by, comment string) (Exception, error) {
	if !validState(state) {
		return Exception{}, fmt.Errorf("update exception %d: unknown state %q", id, state)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE exceptions SET state = ?, updated_by = ?, comment = ?, updated_at = ? WHERE id = ?`,
		state, by, comment, micros(time.Now()), id)
	if err != nil {
		return Exception{}, fmt.Errorf("update exception %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Exception{}, fmt.Errorf("update exception %d: %w", id, ErrNotFound)
	}
	return s.exceptionBy(ctx, s.w, id)
}

// Exception implements ExceptionUpdater.
func (s *SQLite) Exception(ctx context.Context, id int64) (Exception, error) {
	return s.exceptionBy(ctx, s.r, id)
}

func (s *SQLite) exceptionBy(ctx context.Context, db *sql.DB, id int64) (Exception, error) {
	var e Exception
	var c, u int64
	err := db.QueryRowContext(ctx, `SELECT id, store, reason, key, detail, state, created_at, updated_at, updated_by, comment
		FROM exceptions WHERE id = ?`, id).Scan(&e.ID, &e.Store, &e.Reason, &e.Key, &e.Detail, &e.State, &c, &u, &e.UpdatedBy, &e.Comment)
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("exception %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("exception %d: %w", id, err)
	}
	e.CreatedAt, e.UpdatedAt = fromMicros(c), fromMicros(u)
	return e, nil
}
