package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"slices"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// AddStore registers a store with the hash of its MQTT password (ErrExists if present); it is
// EnrollStore without a Mosquitto hash.
func (s *DB) AddStore(ctx context.Context, id, passwordHash string) error {
	return s.EnrollStore(ctx, id, passwordHash, "")
}

// EnrollStore registers a store with the hashes of its MQTT password (creds.Hash and
// creds.MosquittoHash), or enrols a removed store again; ErrExists if it is enrolled.
func (s *DB) EnrollStore(ctx context.Context, id, passwordHash, mosquittoHash string) error {
	if err := protocol.ValidateStoreID(id); err != nil {
		return fmt.Errorf("add store: %w", err)
	}
	err := s.insertNew(ctx, `INSERT INTO stores (id, password_hash, mosquitto_hash, created_at, credentials_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET password_hash = excluded.password_hash, mosquitto_hash = excluded.mosquitto_hash,
		previous_hash = '', state = 'active', credentials_at = excluded.credentials_at WHERE stores.state = 'removed'`,
		id, passwordHash, mosquittoHash, s.now(), s.now())
	return wrapf(err, "add store %s", id)
}

// Store states (StoreInfo.State, Credential.State).
const (
	StoreActive   = "active"
	StoreDisabled = "disabled" // credentials kept, refused until enabled again
	StoreRemoved  = "removed"  // records kept, credentials gone; EnrollStore may enrol it again
)

// Credential is what the hub keeps of a store's MQTT password: hashes only.
type Credential struct {
	Store         string
	State         string
	Hash          string    // the current password (creds.Hash)
	PreviousHash  string    // the password before the last rotation, accepted before PreviousUntil
	PreviousUntil time.Time // zero: no previous password
	MosquittoHash string    // the current password for a Mosquitto password_file; "" if never made
}

// Valid returns the password hashes accepted at now: none unless the store is active.
func (c Credential) Valid(now time.Time) []string {
	switch {
	case c.State != StoreActive || c.Hash == "":
		return nil
	case c.PreviousHash != "" && now.Before(c.PreviousUntil):
		return []string{c.Hash, c.PreviousHash}
	}
	return []string{c.Hash}
}

const credentialCols = `id, state, password_hash, previous_hash, previous_until, mosquitto_hash FROM stores`

func credentialDest(c *Credential) []any {
	return []any{&c.Store, &c.State, &c.Hash, &c.PreviousHash, scanTime{&c.PreviousUntil}, &c.MosquittoHash}
}

// Credentials returns a store's credentials (ErrNotFound if unknown).
func (s *DB) Credentials(ctx context.Context, id string) (Credential, error) {
	var c Credential
	err := s.readRow(ctx, `SELECT `+credentialCols+` WHERE id = ?`, []any{id}, credentialDest(&c)...)
	return c, wrapf(err, "credentials of store %s", id)
}

// AllCredentials returns the credentials of every store, by id.
func (s *DB) AllCredentials(ctx context.Context) ([]Credential, error) {
	var out []Credential
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT `+credentialCols+` ORDER BY id`)
		out, err = scanAll(rs, err, func(r rows, c *Credential) error { return r.Scan(credentialDest(c)...) })
		return err
	})
	return out, wrapf(err, "list credentials")
}

// CredentialsChanged returns the stores whose credentials changed after since, or whose
// previous password stopped being valid after since: those whose connections to recheck.
func (s *DB) CredentialsChanged(ctx context.Context, since time.Time) ([]string, error) {
	var out []string
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT id FROM stores WHERE credentials_at > ? OR (previous_until > ? AND previous_until <= ?) ORDER BY id`,
			s.ts(since), s.ts(since), s.now())
		out, err = scanAll(rs, err, scanString)
		return err
	})
	return out, wrapf(err, "changed credentials")
}

// RotateCredentials replaces a store's password hashes; the old password stays valid for
// grace (none when grace <= 0). ErrNotFound for an unknown or removed store.
func (s *DB) RotateCredentials(ctx context.Context, id, passwordHash, mosquittoHash string, grace time.Duration) error {
	return wrapf(s.updateStore(ctx, id, `password_hash = ?, mosquitto_hash = ?, previous_hash = password_hash, previous_until = ?`,
		passwordHash, mosquittoHash, s.ts(clock.Now().Add(max(grace, 0)))), "rotate credentials of %s", id)
}

// RevokePreviousCredentials ends the grace of a store's previous password now.
func (s *DB) RevokePreviousCredentials(ctx context.Context, id string) error {
	return wrapf(s.updateStore(ctx, id, `previous_hash = '', previous_until = ?`, s.ts(time.Unix(0, 0))), "revoke previous credentials of %s", id)
}

// SetStoreState disables, enables or removes a store; removing clears its credentials and
// keeps its records. ErrNotFound for an unknown or removed store.
func (s *DB) SetStoreState(ctx context.Context, id, state string) error {
	var err error
	switch state {
	case StoreActive, StoreDisabled:
		err = s.updateStore(ctx, id, `state = ?`, state)
	case StoreRemoved:
		err = s.updateStore(ctx, id, `state = ?, password_hash = '', previous_hash = '', mosquitto_hash = ''`, state)
	default:
		err = fmt.Errorf("unknown store state %q", state)
	}
	return wrapf(err, "set store %s %s", id, state)
}

// updateStore applies set to a store that is not removed and marks its credentials changed.
func (s *DB) updateStore(ctx context.Context, id, set string, args ...any) error {
	n, err := s.exec(ctx, `UPDATE stores SET `+set+`, credentials_at = ? WHERE id = ? AND state <> 'removed'`,
		append(args, s.now(), id)...)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return err
}

// EnsureSecret returns the hub secret called name, storing value as it first.
func (s *DB) EnsureSecret(ctx context.Context, name, value string) (string, error) {
	var v string
	err := s.write(ctx, func(t tx) error {
		if _, err := t.exec(ctx, `INSERT INTO hub_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
			return err
		}
		return t.queryRow(ctx, `SELECT value FROM hub_secrets WHERE name = ?`, name).Scan(&v)
	})
	return v, wrapf(err, "hub secret %s", name)
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
		rs, err := t.query(ctx, `SELECT id, state, created_at, trading_hours, time_zone, maintenance FROM stores`+where+` ORDER BY id`, args...)
		if infos, err = scanAll(rs, err, func(r rows, si *StoreInfo) error {
			si.Streams = []Stream{}
			return r.Scan(&si.ID, &si.State, scanTime{&si.CreatedAt}, &si.TradingHours, &si.TimeZone, &si.Maintenance)
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

// statusClockStepBack: a kept status stamped this far after a new one was stamped by a hub
// clock since set back (statuses are stamped on receipt, so none arrives an hour out of
// order); the new one replaces it, or a hub whose clock went back days would keep a stale
// status for days.
const statusClockStepBack = time.Hour

// PutStatus keeps the latest status of an agent; an older status (by at) than the one kept is
// ignored, unless it is statusClockStepBack or more older (the hub's clock was set back). The
// store must exist (ErrNotFound). An agent's MQTT Will (offline, without a clock) carries no
// measurements: it marks the kept status offline and keeps its backlog, spool and
// arrival time, so that the store shows what was last known and since when.
func (s *DB) PutStatus(ctx context.Context, st protocol.Status, at time.Time) error {
	err := s.write(ctx, func(t tx) error {
		if err := mustStore(ctx, t, st.Store); err != nil {
			return err
		}
		if st.State == "offline" && st.Clock.IsZero() {
			var body []byte
			var prevAt time.Time
			err := t.queryRow(ctx, `SELECT body, at FROM status WHERE store = ?`, st.Store).Scan(&body, scanTime{&prevAt})
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if prev, derr := decode[protocol.Status](body, "status"); err == nil && derr == nil && !at.Before(prevAt) {
				prev.State, at = st.State, prevAt
				st = prev
			}
		}
		body, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = t.exec(ctx, `INSERT INTO status (store, body, at) VALUES (?, ?, ?)
			ON CONFLICT (store) DO UPDATE SET body = excluded.body, at = excluded.at WHERE excluded.at >= status.at OR status.at > ?`,
			st.Store, protocol.StorableJSON(body), s.ts(at), s.ts(at.Add(statusClockStepBack))) // an agent's text may hold NUL, which jsonb refuses
		return err
	})
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
		rs, err := t.query(ctx, s.d.dayRecordsSQL("r.terminal, r.kind, r.receipt, r.total"), store, businessDate)
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
		c.ClosedAt = clock.Now()
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

// DayState is a store-day the hub knows of, by its records or its close: how many records
// it holds and the state of its latest close ("" when never closed).
type DayState struct {
	Store        string    `json:"store"`
	BusinessDate string    `json:"business_date"`
	Records      int64     `json:"records"`
	Close        string    `json:"close_state,omitempty"`
	ClosedAt     time.Time `json:"closed_at,omitzero"`
}

// DayStates lists the store-days of business dates from..to (inclusive, YYYY-MM-DD) that
// have records or a close, of the given stores (nil: every store), ordered by store and date.
func (s *DB) DayStates(ctx context.Context, stores []string, from, to string) ([]DayState, error) {
	var out []DayState
	err := s.read(ctx, func(t tx) error {
		where, args := inStores(" WHERE business_date >= ? AND business_date <= ?", []any{from, to}, "store", stores)
		rs, err := t.query(ctx, `SELECT store, business_date, COUNT(*) FROM records`+where+` GROUP BY store, business_date`, args...)
		if out, err = scanAll(rs, err, func(r rows, d *DayState) error {
			return r.Scan(&d.Store, &d.BusinessDate, &d.Records)
		}); err != nil {
			return err
		}
		idx := map[[2]string]int{}
		for i, d := range out {
			idx[[2]string{d.Store, d.BusinessDate}] = i
		}
		rs, err = t.query(ctx, `SELECT store, business_date, state, closed_at FROM closes`+where, args...)
		return each(rs, err, func(r rows) error {
			var d DayState
			if err := r.Scan(&d.Store, &d.BusinessDate, &d.Close, scanTime{&d.ClosedAt}); err != nil {
				return err
			}
			if i, ok := idx[[2]string{d.Store, d.BusinessDate}]; ok {
				out[i].Close, out[i].ClosedAt = d.Close, d.ClosedAt
			} else {
				out = append(out, d)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("day states %s..%s: %w", from, to, err)
	}
	slices.SortFunc(out, func(a, b DayState) int {
		return cmp.Or(cmp.Compare(a.Store, b.Store), cmp.Compare(a.BusinessDate, b.BusinessDate))
	})
	return out, nil
}
