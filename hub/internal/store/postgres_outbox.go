package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lanebridge/lanebridge/protocol"
)

// pgEnqueue adds the postings of newly stored records in the caller's transaction, with one
// INSERT for the run.
func pgEnqueue(ctx context.Context, tx pgx.Tx, run []protocol.Record, now time.Time) error {
	var ps []Posting
	for i := range run {
		if Postable(run[i].Kind) {
			ps = append(ps, newPosting(&run[i]))
		}
	}
	if len(ps) == 0 {
		return nil
	}
	cols := make([][]any, 10)
	for _, p := range ps {
		for i, v := range []any{p.Key, p.Store, p.Terminal, p.BusinessDate, p.Receipt, string(p.Kind), p.Epoch, int64(p.Seq), p.ContentHash, p.Total} {
			cols[i] = append(cols[i], v)
		}
	}
	texts := func(c []any) []string {
		out := make([]string, len(c))
		for i, v := range c {
			out[i] = v.(string)
		}
		return out
	}
	ints := func(c []any) []int64 {
		out := make([]int64, len(c))
		for i, v := range c {
			out[i] = v.(int64)
		}
		return out
	}
	rows, err := tx.Query(ctx, `INSERT INTO postings (key, store, terminal, business_date, receipt, kind, epoch, seq, content_hash, total,
			state, next_at, created_at, updated_at)
		SELECT k, s, t, d, r, kd, e, sq, h, tot, 'pending', $11, $11, $11
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::bigint[])
			AS u(k, s, t, d, r, kd, e, sq, h, tot)
		ON CONFLICT (key) DO NOTHING RETURNING key`,
		texts(cols[0]), texts(cols[1]), texts(cols[2]), texts(cols[3]), texts(cols[4]), texts(cols[5]), texts(cols[6]),
		ints(cols[7]), texts(cols[8]), ints(cols[9]), now)
	if err != nil {
		return fmt.Errorf("enqueue postings: %w", err)
	}
	inserted := map[string]bool{}
	var k string
	if _, err := pgx.ForEachRow(rows, []any{&k}, func() error { inserted[k] = true; return nil }); err != nil {
		return fmt.Errorf("enqueue postings: %w", err)
	}
	if len(inserted) == len(ps) {
		return nil
	}
	var existing []string
	for _, p := range ps {
		if !inserted[p.Key] {
			existing = append(existing, p.Key)
		}
	}
	type prior struct {
		hash, epoch string
		seq         int64
	}
	stored := map[string]prior{}
	rows, err = tx.Query(ctx, `SELECT key, content_hash, epoch, seq FROM postings WHERE key = ANY($1)`, existing)
	if err != nil {
		return fmt.Errorf("enqueue postings: read existing: %w", err)
	}
	var pr prior
	if _, err := pgx.ForEachRow(rows, []any{&k, &pr.hash, &pr.epoch, &pr.seq}, func() error { stored[k] = pr; return nil }); err != nil {
		return fmt.Errorf("enqueue postings: read existing: %w", err)
	}
	for _, p := range ps {
		st, ok := stored[p.Key]
		if inserted[p.Key] || !ok || st.hash == p.ContentHash {
			continue
		}
		e := duplicateReceiptException(p, st.epoch, uint64(st.seq))
		if _, err := tx.Exec(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (store, reason, key) DO NOTHING`,
			e.Store, e.Reason, e.Key, e.Detail, e.State, now); err != nil {
			return fmt.Errorf("raise duplicate receipt %s: %w", p.Key, err)
		}
	}
	return nil
}

type pgPostingRow struct {
	p      Posting
	kind   string
	seq    int64
	posted *time.Time
}

func (r *pgPostingRow) dest() []any {
	p := &r.p
	return []any{&p.ID, &p.Key, &p.Store, &p.Terminal, &p.BusinessDate, &p.Receipt, &r.kind, &p.Epoch, &r.seq,
		&p.ContentHash, &p.Total, &p.State, &p.Attempts, &p.NextAt, &p.Ref, &p.LastError, &p.CreatedAt, &p.UpdatedAt, &r.posted}
}

func (r *pgPostingRow) posting() Posting {
	p := r.p
	p.Kind, p.Seq = protocol.Kind(r.kind), uint64(r.seq)
	p.NextAt, p.CreatedAt, p.UpdatedAt = p.NextAt.UTC(), p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	p.PostedAt = time.Time{}
	if r.posted != nil {
		p.PostedAt = r.posted.UTC()
	}
	return p
}

// ClaimPostings implements Outbox: FOR UPDATE SKIP LOCKED, so replicas claiming at once get
// disjoint postings, and a lease, so a posting stays with its owner while it is being posted.
func (p *Postgres) ClaimPostings(ctx context.Context, owner string, lease time.Duration, limit int) ([]Posting, error) {
	if owner == "" || lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("claim postings: need an owner, a lease and a limit")
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	defer tx.Rollback(ctx)
	now := normTime(time.Now())
	rows, err := tx.Query(ctx, `WITH c AS (
			SELECT id FROM postings WHERE state = 'pending' AND next_at <= $3 AND lease_until < $3
			ORDER BY next_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
		UPDATE postings p SET lease_owner = $1, lease_until = $2, updated_at = $3 FROM c WHERE p.id = c.id RETURNING p.id`,
		owner, now.Add(lease), now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	var ids []int64
	var id int64
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { ids = append(ids, id); return nil }); err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err = tx.Query(ctx, `SELECT `+postingCols+`, r.body FROM postings p
		LEFT JOIN records r ON r.store = p.store AND r.epoch = p.epoch AND r.seq = p.seq
		WHERE p.id = ANY($1) ORDER BY p.next_at, p.id`, ids)
	if err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	var out []Posting
	var pr pgPostingRow
	var body []byte
	if _, err := pgx.ForEachRow(rows, append(pr.dest(), &body), func() error {
		ps := pr.posting()
		if body != nil {
			r, err := decodeRecord(body)
			if err != nil {
				return err
			}
			ps.Record = &r
		}
		out = append(out, ps)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("claim postings: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("claim postings: commit: %w", err)
	}
	return out, nil
}

// FinishPosting implements Outbox.
func (p *Postgres) FinishPosting(ctx context.Context, id int64, owner string, o PostingOutcome) error {
	if err := checkOutcome(o); err != nil {
		return fmt.Errorf("finish posting %d: %w", id, err)
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("finish posting %d: %w", id, err)
	}
	defer tx.Rollback(ctx)
	var pr pgPostingRow
	var holder string
	err = tx.QueryRow(ctx, `SELECT `+postingCols+`, p.lease_owner FROM postings p WHERE p.id = $1 FOR UPDATE`, id).
		Scan(append(pr.dest(), &holder)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("finish posting %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("finish posting %d: %w", id, err)
	}
	ps := pr.posting()
	if holder != owner || ps.State != PostingPending {
		return fmt.Errorf("finish posting %d: held by %q in state %s: %w", id, holder, ps.State, ErrLeaseLost)
	}
	now := normTime(time.Now())
	msg := truncateText(o.Error, 2000)
	switch {
	case o.Done:
		_, err = tx.Exec(ctx, `UPDATE postings SET state = 'done', ref = $1, attempts = attempts + 1, last_error = '',
			lease_owner = '', lease_until = 'epoch', posted_at = $2, updated_at = $2 WHERE id = $3`, o.Ref, now, id)
	case o.Rejected:
		_, err = tx.Exec(ctx, `UPDATE postings SET state = 'rejected', attempts = attempts + 1, last_error = $1,
			lease_owner = '', lease_until = 'epoch', updated_at = $2 WHERE id = $3`, msg, now, id)
		if err == nil {
			e := rejectedException(ps, msg)
			_, err = tx.Exec(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
				VALUES ($1, $2, $3, $4, 'open', $5, $5) ON CONFLICT (store, reason, key) DO UPDATE SET
				detail = excluded.detail, state = 'open', updated_at = excluded.updated_at, updated_by = '', comment = ''`,
				e.Store, e.Reason, e.Key, e.Detail, now)
		}
	default:
		_, err = tx.Exec(ctx, `UPDATE postings SET attempts = attempts + 1, last_error = $1, next_at = $2,
			lease_owner = '', lease_until = 'epoch', updated_at = $3 WHERE id = $4`, msg, normTime(o.RetryAt), now, id)
	}
	if err != nil {
		return fmt.Errorf("finish posting %d: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("finish posting %d: commit: %w", id, err)
	}
	return nil
}

// RepostPosting implements Outbox.
func (p *Postgres) RepostPosting(ctx context.Context, id int64) error {
	now := normTime(time.Now())
	tag, err := p.pool.Exec(ctx, `UPDATE postings SET state = 'pending', attempts = 0, next_at = $1, last_error = '',
		updated_at = $1 WHERE id = $2 AND state != 'done'`, now, id)
	if err != nil {
		return fmt.Errorf("repost posting %d: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var state string
	err = p.pool.QueryRow(ctx, `SELECT state FROM postings WHERE id = $1`, id).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("repost posting %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("repost posting %d: %w", id, err)
	}
	return fmt.Errorf("repost posting %d: already %s: %w", id, state, ErrExists)
}

// ReleaseLeases implements Outbox.
func (p *Postgres) ReleaseLeases(ctx context.Context, owner string) error {
	if _, err := p.pool.Exec(ctx, `UPDATE postings SET lease_owner = '', lease_until = 'epoch'
		WHERE lease_owner != '' AND ($1 = '' OR lease_owner = $1)`, owner); err != nil {
		return fmt.Errorf("release posting leases: %w", err)
	}
	return nil
}

// Postings implements Outbox, oldest first.
func (p *Postgres) Postings(ctx context.Context, f PostingFilter) ([]Posting, error) {
	q := `SELECT ` + postingCols + ` FROM postings p`
	var conds []string
	var args []any
	for _, c := range []struct{ col, val string }{{"store", f.Store}, {"business_date", f.BusinessDate}, {"state", f.State}, {"key", f.Key}} {
		if c.val != "" {
			args = append(args, c.val)
			conds = append(conds, fmt.Sprintf("p.%s = $%d", c.col, len(args)))
		}
	}
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultRecordsLimit
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY p.id LIMIT $%d", len(args))
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list postings: %w", err)
	}
	out := []Posting{}
	var pr pgPostingRow
	if _, err := pgx.ForEachRow(rows, pr.dest(), func() error { out = append(out, pr.posting()); return nil }); err != nil {
		return nil, fmt.Errorf("list postings: %w", err)
	}
	return out, nil
}

// ApplyReplay implements Replayer. It locks the stream row like ApplyBatch.
func (p *Postgres) ApplyReplay(ctx context.Context, store, epoch string, recs []protocol.Record) (ReplayResult, error) {
	var res ReplayResult
	if err := checkReplay(store, epoch, recs); err != nil {
		return res, fmt.Errorf("apply replay %s/%s: %w", store, epoch, err)
	}
	bodies, err := marshalBodies(recs)
	if err != nil {
		return res, fmt.Errorf("apply replay %s/%s: %w", store, epoch, err)
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("apply replay %s/%s: %w", store, epoch, err)
	}
	defer tx.Rollback(ctx)
	var progress int64
	err = tx.QueryRow(ctx, `SELECT applied_through FROM streams WHERE store = $1 AND epoch = $2 FOR UPDATE`, store, epoch).Scan(&progress)
	if errors.Is(err, pgx.ErrNoRows) {
		ok, err := pgStoreExists(ctx, tx, store)
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
		return res, fmt.Errorf("apply replay %s/%s: lock stream: %w", store, epoch, err)
	}
	res.AppliedThrough = uint64(progress)
	now := normTime(time.Now())
	for i := range recs {
		r := &recs[i]
		if r.Seq > res.AppliedThrough {
			res.Ahead++
			continue
		}
		var h string
		err := tx.QueryRow(ctx, `SELECT hash FROM records WHERE store = $1 AND epoch = $2 AND seq = $3`, store, epoch, int64(r.Seq)).Scan(&h)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO records (store, epoch, seq, kind, terminal, receipt, business_date, total, hash, body, applied_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
				store, epoch, int64(r.Seq), string(r.Kind), r.Terminal, r.Receipt, r.BusinessDate, r.Total, r.Hash, bodies[i], now); err != nil {
				return res, fmt.Errorf("apply replay %s/%s: insert seq %d: %w", store, epoch, r.Seq, err)
			}
			if err := p.enqueue(ctx, tx, recs[i:i+1], now); err != nil {
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
			if _, err := tx.Exec(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (store, reason, key) DO NOTHING`,
				e.Store, e.Reason, e.Key, e.Detail, e.State, now); err != nil {
				return res, fmt.Errorf("apply replay %s/%s: raise conflict: %w", store, epoch, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return ReplayResult{}, fmt.Errorf("apply replay %s/%s: commit: %w", store, epoch, err)
	}
	return res, nil
}

// AddCommand implements CommandLog.
func (p *Postgres) AddCommand(ctx context.Context, store string, c protocol.Command) error {
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("add command %s: %w", c.ID, err)
	}
	tag, err := p.pool.Exec(ctx, `INSERT INTO commands (id, store, body, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`, c.ID, store, body, normTime(time.Now()))
	if err != nil {
		return fmt.Errorf("add command %s: %w", c.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("add command %s: %w", c.ID, ErrExists)
	}
	return nil
}

// PutCommandResult implements CommandLog.
func (p *Postgres) PutCommandResult(ctx context.Context, store string, r protocol.CommandResult) (bool, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("put command result %s: %w", r.ID, err)
	}
	tag, err := p.pool.Exec(ctx, `UPDATE commands SET result = $1, result_at = $2
		WHERE id = $3 AND store = $4 AND (result IS NULL OR result != $1::jsonb)`, body, normTime(time.Now()), r.ID, store)
	if err != nil {
		return false, fmt.Errorf("put command result %s: %w", r.ID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// Command implements CommandLog.
func (p *Postgres) Command(ctx context.Context, id string) (CommandRecord, error) {
	var c CommandRecord
	var body, result []byte
	var at time.Time
	var rat *time.Time
	err := p.pool.QueryRow(ctx, `SELECT store, body, created_at, result, result_at FROM commands WHERE id = $1`, id).
		Scan(&c.Store, &body, &at, &result, &rat)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("command %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("command %s: %w", id, err)
	}
	var ra time.Time
	if rat != nil {
		ra = rat.UTC()
	}
	return finishCommandRecord(c, body, result, at.UTC(), rat != nil, ra)
}

// PutClose implements CloseLog.
func (p *Postgres) PutClose(ctx context.Context, c CloseRecord) error {
	if c.ClosedAt.IsZero() {
		c.ClosedAt = time.Now()
	}
	if _, err := p.pool.Exec(ctx, `INSERT INTO closes (store, business_date, state, body, closed_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (store, business_date) DO UPDATE SET state = excluded.state, body = excluded.body, closed_at = excluded.closed_at`,
		c.Store, c.BusinessDate, c.State, c.Body, normTime(c.ClosedAt)); err != nil {
		return fmt.Errorf("put close %s/%s: %w", c.Store, c.BusinessDate, err)
	}
	return nil
}

// GetClose implements CloseLog.
func (p *Postgres) GetClose(ctx context.Context, store, businessDate string) (CloseRecord, error) {
	c := CloseRecord{Store: store, BusinessDate: businessDate}
	err := p.pool.QueryRow(ctx, `SELECT state, body, closed_at FROM closes WHERE store = $1 AND business_date = $2`, store, businessDate).
		Scan(&c.State, &c.Body, &c.ClosedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("close %s/%s: %w", store, businessDate, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("close %s/%s: %w", store, businessDate, err)
	}
	c.ClosedAt = c.ClosedAt.UTC()
	return c, nil
}

// UpdateException implements ExceptionUpdater.
func (p *Postgres) UpdateException(ctx context.Context, id int64, state, by, comment string) (Exception, error) {
	if !validState(state) {
		return Exception{}, fmt.Errorf("update exception %d: unknown state %q", id, state)
	}
	var e Exception
	err := p.pool.QueryRow(ctx, `UPDATE exceptions SET state = $1, updated_by = $2, comment = $3, updated_at = $4 WHERE id = $5
		RETURNING id, store, reason, key, detail, state, created_at, updated_at, updated_by, comment`,
		state, by, comment, normTime(time.Now()), id).
		Scan(&e.ID, &e.Store, &e.Reason, &e.Key, &e.Detail, &e.State, &e.CreatedAt, &e.UpdatedAt, &e.UpdatedBy, &e.Comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, fmt.Errorf("update exception %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("update exception %d: %w", id, err)
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	return e, nil
}

// Exception implements ExceptionUpdater.
func (p *Postgres) Exception(ctx context.Context, id int64) (Exception, error) {
	var e Exception
	err := p.pool.QueryRow(ctx, `SELECT id, store, reason, key, detail, state, created_at, updated_at, updated_by, comment
		FROM exceptions WHERE id = $1`, id).
		Scan(&e.ID, &e.Store, &e.Reason, &e.Key, &e.Detail, &e.State, &e.CreatedAt, &e.UpdatedAt, &e.UpdatedBy, &e.Comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, fmt.Errorf("exception %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("exception %d: %w", id, err)
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	return e, nil
}
