package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// AddStore registers a store with the hash of its MQTT password (ErrExists if present).
func (s *DB) AddStore(ctx context.Context, id, passwordHash string) error {
	if err := protocol.ValidateStoreID(id); err != nil {
		return fmt.Errorf("add store: %w", err)
	}
	err := s.insertNew(ctx, `INSERT INTO stores (id, password_hash, created_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, id, passwordHash, s.now())
	return wrapf(err, "add store %s", id)
}

// Credentials returns the password hash of a store (ErrNotFound if unknown).
func (s *DB) Credentials(ctx context.Context, id string) (string, error) {
	var h string
	err := s.readRow(ctx, `SELECT password_hash FROM stores WHERE id = ?`, []any{id}, &h)
	return h, wrapf(err, "credentials of store %s", id) // h is "" when err is set
}

// ListStores returns every store with its streams and latest status.
func (s *DB) ListStores(ctx context.Context) ([]StoreInfo, error) {
	infos, err := s.loadStores(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list stores: %w", err)
	}
	return infos, nil
}

// GetStore returns one store (ErrNotFound if unknown).
func (s *DB) GetStore(ctx context.Context, id string) (StoreInfo, error) {
	infos, err := s.loadStores(ctx, id)
	if err == nil && len(infos) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return StoreInfo{}, fmt.Errorf("get store %s: %w", id, err)
	}
	return infos[0], nil
}

// loadStores reads one store (id != "") or all, in one snapshot.
func (s *DB) loadStores(ctx context.Context, id string) ([]StoreInfo, error) {
	var infos []StoreInfo
	idx := map[string]int{}
	byStore := func(col string) (string, []any) { return filter([][2]string{{col, id}}) }
	err := s.read(ctx, func(t tx) error {
		where, args := byStore("id")
		rs, err := t.query(ctx, `SELECT id, created_at FROM stores`+where+` ORDER BY id`, args...)
		if infos, err = scanAll(rs, err, func(r rows, si *StoreInfo) error {
			si.Streams = []Stream{}
			return r.Scan(&si.ID, scanTime{&si.CreatedAt})
		}); err != nil {
			return err
		}
		for i, si := range infos {
			idx[si.ID] = i
		}
		where, args = byStore("store")
		rs, err = t.query(ctx, `SELECT store, epoch, applied_through, updated_at FROM streams`+where+` ORDER BY id`, args...)
		if err := each(rs, err, func(r rows) error {
			var store string
			var st Stream
			err := r.Scan(&store, &st.Epoch, &st.AppliedThrough, scanTime{&st.UpdatedAt})
			if i, ok := idx[store]; ok && err == nil {
				infos[i].Streams = append(infos[i].Streams, st)
				// Progress is contiguous from seq 1, so it counts the stream's records.
				infos[i].Records += int64(st.AppliedThrough)
			}
			return err
		}); err != nil {
			return err
		}
		rs, err = t.query(ctx, `SELECT store, body, at FROM status`+where, args...)
		return each(rs, err, func(r rows) error {
			var store string
			var body []byte
			var at time.Time
			if err := r.Scan(&store, &body, scanTime{&at}); err != nil {
				return err
			}
			st, err := decode[protocol.Status](body, "status")
			if i, ok := idx[store]; ok && err == nil {
				infos[i].Status, infos[i].StatusAt = &st, at
			}
			return err
		})
	})
	return infos, err
}

// PutStatus keeps the latest status of an agent; an older status (by at) than the one kept is
// ignored. The store must exist (ErrNotFound).
func (s *DB) PutStatus(ctx context.Context, st protocol.Status, at time.Time) error {
	body, err := json.Marshal(st)
	if err == nil {
		err = s.write(ctx, func(t tx) error {
			if err := mustStore(ctx, t, st.Store); err != nil {
				return err
			}
			_, err := t.exec(ctx, `INSERT INTO status (store, body, at) VALUES (?, ?, ?)
				ON CONFLICT (store) DO UPDATE SET body = excluded.body, at = excluded.at WHERE excluded.at >= status.at`,
				st.Store, body, s.ts(at))
			return err
		})
	}
	return wrapf(err, "put status of %s", st.Store)
}

// Records lists applied records of a store in seq order after afterSeq, within epoch or, when
// epoch is "", the store's latest epoch; at most limit (1000 when limit <= 0).
func (s *DB) Records(ctx context.Context, store, epoch string, afterSeq uint64, limit int) ([]protocol.Record, error) {
	var out []protocol.Record
	err := s.read(ctx, func(t tx) error {
		if err := mustStore(ctx, t, store); err != nil {
			return err
		}
		if epoch == "" {
			err := t.queryRow(ctx, `SELECT epoch FROM streams WHERE store = ? ORDER BY id DESC LIMIT 1`, store).Scan(&epoch)
			if errors.Is(err, sql.ErrNoRows) {
				out = []protocol.Record{}
				return nil
			}
			if err != nil {
				return fmt.Errorf("latest epoch: %w", err)
			}
		}
		rs, err := t.query(ctx, `SELECT body FROM records WHERE store = ? AND epoch = ? AND seq > ? ORDER BY seq LIMIT ?`,
			store, epoch, int64(min(afterSeq, 1<<63-1)), limitOr(limit, defaultRecordsLimit))
		out, err = scanAll(rs, err, scanRecord)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("records of %s/%s: %w", store, epoch, err)
	}
	return out, nil
}

// Day summarises a business day of a store.
func (s *DB) Day(ctx context.Context, store, businessDate string) (Day, error) {
	var drs []dayRow
	err := s.read(ctx, func(t tx) error {
		if err := mustStore(ctx, t, store); err != nil {
			return err
		}
		rs, err := t.query(ctx, `SELECT r.terminal, r.kind, r.receipt, r.total
			FROM records r JOIN streams s ON s.store = r.store AND s.epoch = r.epoch
			WHERE r.store = ? AND r.business_date = ? ORDER BY s.id, r.seq`, store, businessDate)
		drs, err = scanAll(rs, err, func(r rows, d *dayRow) error {
			return r.Scan(&d.terminal, &d.kind, &d.receipt, &d.total)
		})
		return err
	})
	if err != nil {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, err)
	}
	return buildDay(store, businessDate, drs), nil
}

func scanRecord(r rows, rec *protocol.Record) error {
	var body []byte
	if err := r.Scan(&body); err != nil {
		return err
	}
	v, err := decode[protocol.Record](body, "record")
	*rec = v
	return err
}

// decode reads a stored JSON body.
func decode[T any](body []byte, what string) (T, error) {
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		return v, fmt.Errorf("decode stored %s: %w", what, err)
	}
	return v, nil
}

// --- exceptions ---

// RaiseException creates an open exception unless one with the same (store, reason, key)
// exists; it reports whether it created one.
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

// raise is RaiseException inside the caller's transaction, at time now.
func (s *DB) raise(ctx context.Context, t tx, e Exception, now any) (bool, error) {
	n, err := t.exec(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store, reason, key) DO NOTHING`,
		e.Store, e.Reason, e.Key, e.Detail, e.State, now, now)
	return n > 0, err
}

const exceptionCols = `id, store, reason, key, detail, state, created_at, updated_at, updated_by, comment`

func exceptionDest(e *Exception) []any {
	return []any{&e.ID, &e.Store, &e.Reason, &e.Key, &e.Detail, &e.State,
		scanTime{&e.CreatedAt}, scanTime{&e.UpdatedAt}, &e.UpdatedBy, &e.Comment}
}

// Exceptions lists exceptions matching f, newest first (at most 1000 when f.Limit <= 0).
func (s *DB) Exceptions(ctx context.Context, f ExceptionFilter) ([]Exception, error) {
	where, args := filter([][2]string{{"store", f.Store}, {"reason", f.Reason}, {"state", f.State}})
	where, args = inStores(where, args, "store", f.Stores)
	var out []Exception
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT `+exceptionCols+` FROM exceptions`+where+` ORDER BY id DESC LIMIT ?`,
			append(args, limitOr(f.Limit, defaultExceptionsLimit))...)
		out, err = scanAll(rs, err, func(r rows, e *Exception) error { return r.Scan(exceptionDest(e)...) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	return out, nil
}

// Exception returns one exception by id (ErrNotFound if unknown).
func (s *DB) Exception(ctx context.Context, id int64) (Exception, error) {
	var e Exception
	if err := s.readRow(ctx, `SELECT `+exceptionCols+` FROM exceptions WHERE id = ?`, []any{id}, exceptionDest(&e)...); err != nil {
		return e, fmt.Errorf("exception %d: %w", id, err)
	}
	return e, nil
}

// UpdateException changes an exception's state and records who did it and why; it returns the
// updated exception (ErrNotFound for an unknown id).
func (s *DB) UpdateException(ctx context.Context, id int64, state, by, comment string) (Exception, error) {
	var e Exception
	err := fmt.Errorf("unknown state %q", state)
	if validState(state) {
		err = s.write(ctx, func(t tx) error {
			n, err := t.exec(ctx, `UPDATE exceptions SET state = ?, updated_at = ?, updated_by = ?, comment = ? WHERE id = ?`,
				state, s.now(), by, comment, id)
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

// normException fills defaults and checks an exception before it is raised.
func normException(e *Exception, now time.Time) error {
	if e.Reason == "" {
		return fmt.Errorf("raise exception: empty reason")
	}
	if e.State == "" {
		e.State = StateOpen
	}
	if !validState(e.State) {
		return fmt.Errorf("raise exception: unknown state %q", e.State)
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	e.CreatedAt = normTime(e.CreatedAt)
	e.UpdatedAt = e.CreatedAt
	return nil
}

func validState(s string) bool {
	return s == StateOpen || s == StateAcknowledged || s == StateResolved || s == StateReposted
}

// --- agent commands and closes ---

// AddCommand records a command before it is published (ErrExists for a known id).
func (s *DB) AddCommand(ctx context.Context, store string, c protocol.Command) error {
	body, err := json.Marshal(c)
	if err == nil {
		err = s.insertNew(ctx, `INSERT INTO commands (id, store, body, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, c.ID, store, body, s.now())
	}
	return wrapf(err, "add command %s", c.ID)
}

// PutCommandResult stores an agent's result for a command it was sent; results for unknown ids
// or another store are ignored (false). Storing the same result again is harmless.
func (s *DB) PutCommandResult(ctx context.Context, store string, r protocol.CommandResult) (bool, error) {
	body, err := json.Marshal(r)
	var n int64
	if err == nil {
		n, err = s.exec(ctx, `UPDATE commands SET result = ?, result_at = ? WHERE id = ? AND store = ? AND result IS DISTINCT FROM ?`,
			body, s.now(), r.ID, store, body)
	}
	if err != nil {
		return false, fmt.Errorf("put command result %s: %w", r.ID, err)
	}
	return n > 0, nil
}

// Command returns a command sent to an agent and its result, if any.
func (s *DB) Command(ctx context.Context, id string) (CommandRecord, error) {
	var c CommandRecord
	var body, result []byte
	err := s.readRow(ctx, `SELECT store, body, created_at, result, result_at FROM commands WHERE id = ?`, []any{id},
		&c.Store, &body, scanTime{&c.CreatedAt}, &result, scanTime{&c.ResultAt})
	if err == nil {
		err = json.Unmarshal(body, &c.Command)
	}
	if err == nil && len(result) > 0 {
		c.Result = new(protocol.CommandResult)
		err = json.Unmarshal(result, c.Result)
	}
	if err != nil {
		return c, fmt.Errorf("command %s: %w", id, err)
	}
	return c, nil
}

// PutClose keeps the latest close of a store-day.
func (s *DB) PutClose(ctx context.Context, c CloseRecord) error {
	if c.ClosedAt.IsZero() {
		c.ClosedAt = time.Now()
	}
	_, err := s.exec(ctx, `INSERT INTO closes (store, business_date, state, body, closed_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (store, business_date) DO UPDATE SET state = excluded.state, body = excluded.body, closed_at = excluded.closed_at`,
		c.Store, c.BusinessDate, c.State, c.Body, s.ts(c.ClosedAt))
	return wrapf(err, "put close %s/%s", c.Store, c.BusinessDate)
}

// GetClose returns the latest close of a store-day (ErrNotFound when it was never closed).
func (s *DB) GetClose(ctx context.Context, store, businessDate string) (CloseRecord, error) {
	c := CloseRecord{Store: store, BusinessDate: businessDate}
	if err := s.readRow(ctx, `SELECT state, body, closed_at FROM closes WHERE store = ? AND business_date = ?`,
		[]any{store, businessDate}, &c.State, &c.Body, scanTime{&c.ClosedAt}); err != nil {
		return c, fmt.Errorf("close %s/%s: %w", store, businessDate, err)
	}
	return c, nil
}
