package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Config push states (ConfigPush.State): pending until the agent reports; the agent's
// protocol.Config* states after; superseded when a newer push to the store came first.
const (
	ConfigPending    = "pending"
	ConfigSuperseded = "superseded"
)

// ConfigPush is a signed configuration push to one store.
type ConfigPush struct {
	Store      string    `json:"store"`
	Version    uint64    `json:"version"`
	CommandID  string    `json:"command_id"`
	Overrides  string    `json:"overrides"`
	Manifest   string    `json:"-"` // protocol.SignedManifest JSON, relayed unchanged
	State      string    `json:"state"`
	Detail     string    `json:"detail,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	ReportedAt time.Time `json:"reported_at,omitzero"`
}

// NextConfigVersion returns the version the next push to store takes: one more than the
// highest so far (1 for the first). ErrNotFound for an unknown store.
func (s *DB) NextConfigVersion(ctx context.Context, store string) (uint64, error) {
	var v int64
	err := s.read(ctx, func(t tx) error {
		if err := mustStore(ctx, t, store); err != nil {
			return err
		}
		return t.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM config_pushes WHERE store = ?`, store).Scan(&v)
	})
	return uint64(v) + 1, wrapf(err, "next config version of %s", store)
}

// AddConfigPush stores a push (ErrExists when its version or command id is taken: another push
// came first; sign again with NextConfigVersion) and marks older pending pushes superseded.
func (s *DB) AddConfigPush(ctx context.Context, p ConfigPush) error {
	err := s.write(ctx, func(t tx) error {
		if err := mustStore(ctx, t, p.Store); err != nil {
			return err
		}
		var max int64
		if err := t.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM config_pushes WHERE store = ?`, p.Store).Scan(&max); err != nil {
			return err
		}
		if uint64(max) >= p.Version {
			return fmt.Errorf("version %d: store has version %d: %w", p.Version, max, ErrExists)
		}
		n, err := t.exec(ctx, `INSERT INTO config_pushes (store, version, command_id, overrides, manifest, state, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			p.Store, int64(p.Version), p.CommandID, p.Overrides, p.Manifest, ConfigPending, s.now(), s.ts(p.ExpiresAt))
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrExists
		}
		_, err = t.exec(ctx, `UPDATE config_pushes SET state = ? WHERE store = ? AND version < ? AND state = ?`,
			ConfigSuperseded, p.Store, int64(p.Version), ConfigPending)
		return err
	})
	return wrapf(err, "add config push %s v%d", p.Store, p.Version)
}

const configPushCols = `store, version, command_id, overrides, manifest, state, detail, created_at, expires_at, reported_at FROM config_pushes`

func scanConfigPush(r rows, p *ConfigPush) error {
	var v int64
	err := r.Scan(&p.Store, &v, &p.CommandID, &p.Overrides, &p.Manifest, &p.State, &p.Detail,
		scanTime{&p.CreatedAt}, scanTime{&p.ExpiresAt}, scanTime{&p.ReportedAt})
	p.Version = uint64(v)
	return err
}

// ConfigPushes lists the pushes of store ("" every store), by store and version.
func (s *DB) ConfigPushes(ctx context.Context, store string) ([]ConfigPush, error) {
	var out []ConfigPush
	err := s.read(ctx, func(t tx) error {
		where, args := filter([][2]string{{"store", store}})
		rs, err := t.query(ctx, `SELECT `+configPushCols+where+` ORDER BY store, version`, args...)
		out, err = scanAll(rs, err, scanConfigPush)
		return err
	})
	return out, wrapf(err, "list config pushes")
}

// PendingConfigPushes lists the pushes waiting for their agent's report that have not expired
// at now (at most one per store: a newer push supersedes).
func (s *DB) PendingConfigPushes(ctx context.Context, now time.Time) ([]ConfigPush, error) {
	var out []ConfigPush
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT `+configPushCols+` WHERE state = ? AND expires_at > ? ORDER BY store, version`,
			ConfigPending, s.ts(now))
		out, err = scanAll(rs, err, scanConfigPush)
		return err
	})
	return out, wrapf(err, "pending config pushes")
}

// PutConfigReport records an agent's report on the push of its version (state and detail);
// reports for unknown versions are ignored (false), as is a report that changes nothing.
func (s *DB) PutConfigReport(ctx context.Context, store string, version uint64, state, detail string) (bool, error) {
	var changed bool
	err := s.write(ctx, func(t tx) error {
		var cur, curDetail string
		err := t.queryRow(ctx, `SELECT state, detail FROM config_pushes WHERE store = ? AND version = ?`, store, int64(version)).Scan(&cur, &curDetail)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil || (cur == state && curDetail == detail) {
			return err
		}
		_, err = t.exec(ctx, `UPDATE config_pushes SET state = ?, detail = ?, reported_at = ? WHERE store = ? AND version = ?`,
			state, capBytes(detail, MaxAuditDetail), s.now(), store, int64(version))
		changed = err == nil
		return err
	})
	return changed, wrapf(err, "config report %s v%d", store, version)
}
