package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"slices"
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
	if err := normException(&e, clock.Now()); err != nil {
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
	raiseOnce   = raiseSQL + ` WHERE ` + live + ` RETURNING id, count, state`
	raiseRecurs = raiseSQL + `, detail = CASE WHEN ` + live + ` THEN exceptions.detail ELSE excluded.detail END,
		updated_by = CASE WHEN ` + live + ` THEN exceptions.updated_by ELSE '' END,
		comment = CASE WHEN ` + live + ` THEN exceptions.comment ELSE 'raised again after it was ' || exceptions.state END,
		updated_at = CASE WHEN ` + live + ` THEN exceptions.updated_at ELSE excluded.updated_at END,
		state = CASE WHEN ` + live + ` THEN exceptions.state ELSE 'open' END
		RETURNING id, count, state`
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
	n, ok, err := s.upsertException(ctx, t, e.Store, e.Reason, e.Key, now, q, e.Store, e.Reason, e.Key, e.Detail, e.State, now, now, now)
	return ok && n == 1, err // !ok: resolved, and not recurring
}

// upsertException runs q, an INSERT … ON CONFLICT (store, reason, key) DO UPDATE … RETURNING
// id, count, state of the exception (store, reason, key), and records in its history its
// first raise or its reopening (a raise that changed its state). ok is false when q returned
// no row (a conditional update that did not apply).
func (s *DB) upsertException(ctx context.Context, t tx, store, reason, key string, now any, q string, args ...any) (count int64, ok bool, err error) {
	var prev, state string
	var id int64
	err = t.queryRow(ctx, `SELECT state FROM exceptions WHERE store = ? AND reason = ? AND key = ?`+s.d.forUpdate, store, reason, key).Scan(&prev)
	if err == nil || errors.Is(err, sql.ErrNoRows) {
		err = t.queryRow(ctx, q, args...).Scan(&id, &count, &state)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	case prev == "":
		err = addHistory(ctx, t, now, raiser, ActionRaised, state, "", Exception{ID: id})
	case prev != state:
		err = addHistory(ctx, t, now, raiser, ActionReopened, state, "", Exception{ID: id, State: prev})
	}
	return count, true, err
}

// Actions of an exception's history.
const (
	ActionRaised   = "raised"   // the first raise (repeats are counted on the exception)
	ActionReopened = "reopened" // raised again after it was resolved (or reposted)
	ActionChanged  = "changed"  // a person changed its state
)

// raiser is the actor of the raises in an exception's history.
const raiser = "hub"

// addHistory adds a history entry to each exception of prior, from its state there to to.
func addHistory(ctx context.Context, t tx, at any, actor, action, to, comment string, prior ...Exception) error {
	rows := make([][]any, len(prior))
	for i, e := range prior {
		rows[i] = []any{e.ID, at, actor, action, e.State, to, comment}
	}
	err := t.insert(ctx, "exception_history", []string{"exception_id", "at", "actor", "action", "from_state", "to_state", "comment"}, rows)
	return wrapf(err, "exception history")
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
	if !f.OlderThan.IsZero() {
		where, args = and(where, "created_at < ?"), append(args, s.ts(f.OlderThan))
	}
	if f.IDs != nil {
		where = and(where, "id IN (NULL"+strings.Repeat(", ?", len(f.IDs))+")")
		for _, id := range f.IDs {
			args = append(args, id)
		}
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
// like a detail) on it and in its history; it returns the updated exception (ErrNotFound for
// an unknown id).
func (s *DB) UpdateException(ctx context.Context, id int64, state, by, comment string) (Exception, error) {
	es, err := s.UpdateExceptions(ctx, []int64{id}, state, by, comment)
	if err != nil {
		return Exception{}, err
	}
	return es[0], nil
}

// UpdateExceptions is UpdateException of several exceptions at once, in one transaction: it
// changes all of them or, when one is unknown (ErrNotFound), none. It returns them by id.
func (s *DB) UpdateExceptions(ctx context.Context, ids []int64, state, by, comment string) ([]Exception, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	by, comment = protocol.Excerpt(by), protocol.Excerpt(comment)
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	in := ` FROM exceptions WHERE id IN (` + placeholders(len(ids)) + `)`
	read := func(t tx, lock string) ([]Exception, error) {
		rs, err := t.query(ctx, `SELECT `+exceptionCols+in+` ORDER BY id`+lock, args...)
		return scanAll(rs, err, func(r rows, e *Exception) error { return r.Scan(exceptionDest(e)...) })
	}
	var out []Exception
	err := fmt.Errorf("unknown state %q", protocol.Clip(state, 64))
	if len(ids) == 0 {
		err = errors.New("no exception ids")
	} else if validState(state) {
		err = s.write(ctx, func(t tx) error {
			prior, err := read(t, s.d.forUpdate)
			if err != nil {
				return err
			}
			if len(prior) < len(ids) {
				return fmt.Errorf("%s: %w", missingIDs(ids, prior), ErrNotFound)
			}
			now := s.now()
			if _, err := t.exec(ctx, `UPDATE exceptions SET state = ?, updated_at = ?, updated_by = ?, comment = ? WHERE id IN (`+placeholders(len(ids))+`)`,
				append([]any{state, now, by, comment}, args...)...); err != nil {
				return err
			}
			if err := addHistory(ctx, t, now, by, ActionChanged, state, comment, prior...); err != nil {
				return err
			}
			out, err = read(t, "")
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("update exceptions %v: %w", ids[:min(len(ids), 10)], err)
	}
	return out, nil
}

// missingIDs names the ids of want that found lacks (both sorted).
func missingIDs(want []int64, found []Exception) string {
	var miss []string
	for _, id := range want {
		if !slices.ContainsFunc(found, func(e Exception) bool { return e.ID == id }) {
			miss = append(miss, fmt.Sprint(id))
		}
	}
	return "exception " + strings.Join(miss, ", ")
}

// ExceptionHistory returns the history of an exception, oldest first (its latest 1000
// entries); none for an unknown id.
func (s *DB) ExceptionHistory(ctx context.Context, id int64) ([]ExceptionEvent, error) {
	var out []ExceptionEvent
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT id, exception_id, at, actor, action, from_state, to_state, comment FROM exception_history
			WHERE exception_id = ? ORDER BY id DESC LIMIT 1000`, id)
		out, err = scanAll(rs, err, func(r rows, h *ExceptionEvent) error {
			return r.Scan(&h.ID, &h.ExceptionID, scanTime{&h.At}, &h.Actor, &h.Action, &h.From, &h.To, &h.Comment)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("exception %d history: %w", id, err)
	}
	slices.Reverse(out)
	return out, nil
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
