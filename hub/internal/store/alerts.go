package store

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// Alert states.
const (
	AlertOpen    = "open"
	AlertCleared = "cleared"
)

// Alert is a raised condition of a store or one of its terminals (Terminal "" for the store).
type Alert struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	State     string    `json:"state"`
	Store     string    `json:"store"`
	Terminal  string    `json:"terminal"`
	Since     time.Time `json:"since"`
	ClearedAt time.Time `json:"cleared_at"` // zero (null) while open
	Detail    string    `json:"detail"`
	// Threshold is the rule that raised it, for people ("60m inside trading hours").
	Threshold string `json:"threshold"`
	// LastEvaluated is when the evaluator last found the condition.
	LastEvaluated time.Time `json:"-"`
}

// MarshalJSON writes cleared_at as null while the alert is open.
func (a Alert) MarshalJSON() ([]byte, error) {
	type plain Alert
	var cleared *time.Time
	if !a.ClearedAt.IsZero() {
		cleared = &a.ClearedAt
	}
	return json.Marshal(struct {
		plain
		ClearedAt *time.Time `json:"cleared_at"`
	}{plain(a), cleared})
}

// AlertFilter selects alerts: State "" for all, Stores nil for every store (an empty list for
// none), BeforeID > 0 for the next page, at most Limit (1000 when <= 0), newest first.
type AlertFilter struct {
	State    string
	Store    string
	Stores   []string
	BeforeID int64
	Limit    int
}

// SetStoreSchedule sets a store's trading hours and time zone ("" for the hub's defaults);
// the caller validates them. ErrNotFound for an unknown or removed store.
func (s *DB) SetStoreSchedule(ctx context.Context, id, tradingHours, timeZone string) error {
	n, err := s.exec(ctx, `UPDATE stores SET trading_hours = ?, time_zone = ? WHERE id = ? AND state <> 'removed'`,
		protocol.SafeText(tradingHours), protocol.SafeText(timeZone), id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return wrapf(err, "set trading hours of store %s", id)
}

// RaiseAlert opens an alert of (a.Kind, a.Store, a.Terminal) since a.Since, or, while one is
// open, updates its detail, threshold and last evaluation. It reports whether it opened one.
func (s *DB) RaiseAlert(ctx context.Context, a Alert) (opened bool, err error) {
	if a.LastEvaluated.IsZero() {
		a.LastEvaluated = clock.Now()
	}
	update := func(t tx) (int64, error) {
		return t.exec(ctx, `UPDATE alerts SET detail = ?, threshold = ?, last_evaluated = ?
			WHERE kind = ? AND store = ? AND terminal = ? AND state = 'open'`,
			protocol.Excerpt(a.Detail), a.Threshold, s.ts(a.LastEvaluated), a.Kind, a.Store, a.Terminal)
	}
	err = s.write(ctx, func(t tx) error {
		n, err := update(t)
		if err != nil || n > 0 {
			return err
		}
		// A concurrent raiser (another replica) may insert first: then this one updates it.
		n, err = t.exec(ctx, `INSERT INTO alerts (kind, store, terminal, state, since, detail, threshold, last_evaluated)
			VALUES (?, ?, ?, 'open', ?, ?, ?, ?) ON CONFLICT (kind, store, terminal) WHERE state = 'open' DO NOTHING`,
			a.Kind, a.Store, a.Terminal, s.ts(a.Since), protocol.Excerpt(a.Detail), a.Threshold, s.ts(a.LastEvaluated))
		if opened = n == 1; err == nil && !opened {
			_, err = update(t)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("raise alert %s/%s/%s: %w", a.Kind, a.Store, a.Terminal, err)
	}
	return opened, nil
}

// ClearAlert clears the open alert of (kind, store, terminal) at at and returns it; ok false
// when none was open.
func (s *DB) ClearAlert(ctx context.Context, kind, storeID, terminal string, at time.Time) (a Alert, ok bool, err error) {
	err = s.write(ctx, func(t tx) error {
		rs, err := t.query(ctx, `UPDATE alerts SET state = 'cleared', cleared_at = ?
			WHERE kind = ? AND store = ? AND terminal = ? AND state = 'open' RETURNING `+alertCols,
			s.ts(at), kind, storeID, terminal)
		list, err := scanAll(rs, err, scanAlert)
		if len(list) > 0 {
			a, ok = list[0], true
		}
		return err
	})
	return a, ok, wrapf(err, "clear alert %s/%s/%s", kind, storeID, terminal)
}

const alertCols = `id, kind, state, store, terminal, since, cleared_at, detail, threshold, last_evaluated`

func scanAlert(r rows, a *Alert) error {
	return r.Scan(&a.ID, &a.Kind, &a.State, &a.Store, &a.Terminal, scanTime{&a.Since}, scanTime{&a.ClearedAt},
		&a.Detail, &a.Threshold, scanTime{&a.LastEvaluated})
}

// Alerts lists alerts matching f, newest first.
func (s *DB) Alerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	where, args := filter([][2]string{{"state", f.State}, {"store", f.Store}})
	if f.BeforeID > 0 {
		where, args = and(where, "id < ?"), append(args, f.BeforeID)
	}
	where, args = inStores(where, args, "store", f.Stores)
	var out []Alert
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT `+alertCols+` FROM alerts`+where+` ORDER BY id DESC LIMIT ?`,
			append(args, limitOr(f.Limit, defaultExceptionsLimit))...)
		out, err = scanAll(rs, err, scanAlert)
		return err
	})
	return out, wrapf(err, "list alerts")
}

// PruneAlerts deletes the alerts cleared before before and returns how many.
func (s *DB) PruneAlerts(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.exec(ctx, `DELETE FROM alerts WHERE state = 'cleared' AND cleared_at < ?`, s.ts(before))
	return n, wrapf(err, "prune alerts")
}
