package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lanebridge/lanebridge/protocol"
)

// RaiseException records an exception: the first raise of a (store, reason, key) creates it
// open, a raise while it is open or acknowledged coalesces into it (count and last_seen; the
// first detail is kept), and a raise after it was resolved is ignored unless e.Recurs, which
// opens it again with the new detail. It reports whether it created the exception. Concurrent
// raisers, also from several hub replicas, coalesce on the (store, reason, key) unique index.
// Detail and comment are clipped to protocol.MaxText and made safe for storage; a key longer
// than maxKey bytes is cut and suffixed with a hash of the whole key.
func (s *DB) RaiseException(ctx context.Context, e Exception) (created bool, err error) {
	if err := normException(&e, time.Now()); err != nil {
		return false, err
	}
	err = s.write(ctx, func(t tx) (err error) {
		created, err = s.raise(ctx, t, e, s.ts(e.CreatedAt))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("raise exception %s/%s/%s: %w", e.Store, e.Reason, e.Key, err)
	}
	return created, nil
}

const (
	raiseSQL = `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at, count, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT (store, reason, key) DO UPDATE
		SET count = exceptions.count + 1, last_seen = excluded.last_seen`
	// live is the states a raise coalesces into.
	live        = `exceptions.state IN ('open', 'acknowledged')`
	raiseOnce   = raiseSQL + ` WHERE ` + live + ` RETURNING count`
	raiseRecurs = raiseSQL + `, detail = CASE WHEN ` + live + ` THEN exceptions.detail ELSE excluded.detail END,
		updated_by = CASE WHEN ` + live + ` THEN exceptions.updated_by ELSE '' END,
		comment = CASE WHEN ` + live + ` THEN exceptions.comment ELSE 'raised again after it was ' || exceptions.state END,
		updated_at = CASE WHEN ` + live + ` THEN exceptions.updated_at ELSE excluded.updated_at END,
		state = CASE WHEN ` + live + ` THEN exceptions.state ELSE 'open' END
		RETURNING count`
)

// MaxOpenPerReason bounds the open (or acknowledged) exceptions of one store and reason: a raise
// with a new key beyond it coalesces into the store's key MoreKey instead, so that an agent
// reporting ever new subjects (captures, terminal names, seqs) keeps at most about 1 MiB of
// exceptions (MaxOpenPerReason × protocol.MaxText) per reason. A day of a badly parsed store
// stays well below it.
const (
	MaxOpenPerReason = 500
	MoreKey          = "(more)"
)

// raise is RaiseException inside the caller's transaction, at time now; e is normalised.
func (s *DB) raise(ctx context.Context, t tx, e Exception, now any) (bool, error) {
	var n int64
	err := t.queryRow(ctx, `SELECT count(*) FROM exceptions WHERE store = ? AND reason = ? AND key <> ? AND state IN ('open', 'acknowledged')
		AND NOT EXISTS (SELECT 1 FROM exceptions WHERE store = ? AND reason = ? AND key = ?)`,
		e.Store, e.Reason, MoreKey, e.Store, e.Reason, e.Key).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("count open exceptions: %w", err)
	}
	if n >= MaxOpenPerReason && e.Key != MoreKey {
		e.Detail = protocol.Excerpt(fmt.Sprintf("more than %d open %s exceptions of store %s: this one counts the rest; the first of them was %s:\n%s",
			MaxOpenPerReason, e.Reason, e.Store, e.Key, e.Detail))
		e.Key, e.Recurs = MoreKey, true
	}
	q := raiseOnce
	if e.Recurs {
		q = raiseRecurs
	}
	err = t.queryRow(ctx, q, e.Store, e.Reason, e.Key, e.Detail, e.State, now, now, now).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // resolved, and not recurring
	}
	return n == 1, err
}

const exceptionCols = `id, store, reason, key, detail, state, created_at, updated_at, updated_by, comment, count, last_seen`

func exceptionDest(e *Exception) []any {
	return []any{&e.ID, &e.Store, &e.Reason, &e.Key, &e.Detail, &e.State,
		scanTime{&e.CreatedAt}, scanTime{&e.UpdatedAt}, &e.UpdatedBy, &e.Comment, &e.Count, scanTime{&e.LastSeen}}
}

// Exceptions lists exceptions matching f, newest first (at most 1000 when f.Limit <= 0); with
// f.BeforeID only those with a smaller id (the next page), with f.PerStore at most that many
// of each store.
func (s *DB) Exceptions(ctx context.Context, f ExceptionFilter) ([]Exception, error) {
	where, args := filter([][2]string{{"store", f.Store}, {"reason", f.Reason}, {"state", f.State}})
	if f.BeforeID > 0 {
		where, args = and(where, "id < ?"), append(args, f.BeforeID)
	}
	where, args = inStores(where, args, "store", f.Stores)
	q := `SELECT ` + exceptionCols + ` FROM exceptions` + where
	if f.PerStore > 0 {
		q = `SELECT ` + exceptionCols + ` FROM (SELECT ` + exceptionCols + `,
			ROW_NUMBER() OVER (PARTITION BY store ORDER BY id DESC) AS nth FROM exceptions` + where + `) x WHERE nth <= ?`
		args = append(args, f.PerStore)
	}
	var out []Exception
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limitOr(f.Limit, defaultExceptionsLimit))...)
		out, err = scanAll(rs, err, func(r rows, e *Exception) error { return r.Scan(exceptionDest(e)...) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	return out, nil
}

// ExceptionCounts counts exceptions in a state ("" for all) per store and reason, by store.
func (s *DB) ExceptionCounts(ctx context.Context, state string) ([]ExceptionCount, error) {
	where, args := filter([][2]string{{"state", state}})
	var out []ExceptionCount
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT store, reason, count(*), sum(count), max(last_seen) FROM exceptions`+where+`
			GROUP BY store, reason ORDER BY store, reason`, args...)
		out, err = scanAll(rs, err, func(r rows, c *ExceptionCount) error {
			return r.Scan(&c.Store, &c.Reason, &c.Exceptions, &c.Raised, scanTime{&c.LastSeen})
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count exceptions: %w", err)
	}
	return out, nil
}

// and adds a condition to a WHERE clause made by filter.
func and(where, cond string) string {
	if where == "" {
		return " WHERE " + cond
	}
	return where + " AND " + cond
}

// Exception returns one exception by id (ErrNotFound if unknown).
func (s *DB) Exception(ctx context.Context, id int64) (Exception, error) {
	var e Exception
	if err := s.readRow(ctx, `SELECT `+exceptionCols+` FROM exceptions WHERE id = ?`, []any{id}, exceptionDest(&e)...); err != nil {
		return e, fmt.Errorf("exception %d: %w", id, err)
	}
	return e, nil
}

// UpdateException changes an exception's state and records who did it and why (both clipped
// like a detail); it returns the updated exception (ErrNotFound for an unknown id).
func (s *DB) UpdateException(ctx context.Context, id int64, state, by, comment string) (Exception, error) {
	var e Exception
	err := fmt.Errorf("unknown state %q", protocol.Clip(state, 64))
	if validState(state) {
		err = s.write(ctx, func(t tx) error {
			n, err := t.exec(ctx, `UPDATE exceptions SET state = ?, updated_at = ?, updated_by = ?, comment = ? WHERE id = ?`,
				state, s.now(), protocol.Excerpt(by), protocol.Excerpt(comment), id)
			if err == nil && n == 0 {
				return ErrNotFound
			}
			if err == nil {
				err = t.queryRow(ctx, `SELECT `+exceptionCols+` FROM exceptions WHERE id = ?`, id).Scan(exceptionDest(&e)...)
			}
			return err
		})
	}
	if err != nil {
		return e, fmt.Errorf("update exception %d: %w", id, err)
	}
	return e, nil
}

// maxKey is the longest exception key kept as is.
const maxKey = 256

// normException fills defaults, bounds the texts and checks an exception before it is raised.
func normException(e *Exception, now time.Time) error {
	if e.Reason == "" {
		return fmt.Errorf("raise exception: empty reason")
	}
	if e.State == "" {
		e.State = StateOpen
	}
	if !validState(e.State) {
		return fmt.Errorf("raise exception: unknown state %q", protocol.Clip(e.State, 64))
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	e.CreatedAt = normTime(e.CreatedAt)
	e.UpdatedAt = e.CreatedAt
	e.Detail = protocol.Excerpt(e.Detail)
	if len(e.Key) > maxKey || !utf8.ValidString(e.Key) || strings.IndexByte(e.Key, 0) >= 0 {
		sum := sha256.Sum256([]byte(e.Key))
		cut := min(len(e.Key), maxKey-34)
		for cut > 0 && cut < len(e.Key) && !utf8.RuneStart(e.Key[cut]) {
			cut--
		}
		e.Key = protocol.SafeText(e.Key[:cut]) + "#" + hex.EncodeToString(sum[:16])
	}
	return nil
}

func validState(s string) bool {
	return s == StateOpen || s == StateAcknowledged || s == StateResolved || s == StateReposted
}
