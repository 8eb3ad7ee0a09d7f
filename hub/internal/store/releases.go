package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// Release is a published agent binary: the signed manifest exactly as the publisher made it
// and the name of the binary's file in the hub's releases directory (its sha256).
type Release struct {
	ID          int64                   `json:"id"`
	Version     string                  `json:"version"`
	OS          string                  `json:"os"`
	Arch        string                  `json:"arch"`
	Channel     string                  `json:"channel"`
	SHA256      string                  `json:"sha256"`
	Size        int64                   `json:"size"`
	MinFrom     string                  `json:"min_from,omitempty"`
	Manifest    protocol.SignedManifest `json:"-"`
	File        string                  `json:"-"`
	Expires     time.Time               `json:"expires"`
	PublishedAt time.Time               `json:"published_at"`
	PublishedBy string                  `json:"published_by"`
}

const releaseCols = `id, version, os, arch, channel, sha256, size, min_from, manifest_body, manifest_signature, file, expires, published_at, published_by FROM releases`

func releaseDest(r *Release) []any {
	return []any{&r.ID, &r.Version, &r.OS, &r.Arch, &r.Channel, &r.SHA256, &r.Size, &r.MinFrom, &r.Manifest.Body, &r.Manifest.Signature,
		&r.File, scanTime{&r.Expires}, scanTime{&r.PublishedAt}, &r.PublishedBy}
}

// AddRelease records a published release and returns its id; ErrExists when the version is
// already published for that os, arch and channel.
func (s *DB) AddRelease(ctx context.Context, r Release) (int64, error) {
	if r.PublishedAt.IsZero() {
		r.PublishedAt = clock.Now()
	}
	var id int64
	err := s.write(ctx, func(t tx) error {
		err := t.queryRow(ctx, `INSERT INTO releases (version, os, arch, channel, sha256, size, min_from, manifest_body, manifest_signature,
			file, expires, published_at, published_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (version, os, arch, channel) DO NOTHING RETURNING id`,
			r.Version, r.OS, r.Arch, r.Channel, r.SHA256, r.Size, r.MinFrom, r.Manifest.Body, r.Manifest.Signature, r.File,
			s.ts(r.Expires), s.ts(r.PublishedAt), r.PublishedBy).Scan(&id)
		if isNoRows(err) {
			return ErrExists
		}
		return err
	})
	return id, wrapf(err, "add release %s %s/%s %s", r.Version, r.OS, r.Arch, r.Channel)
}

// Releases lists the published releases, newest first; version "" for every version.
func (s *DB) Releases(ctx context.Context, version string) ([]Release, error) {
	var out []Release
	err := s.read(ctx, func(t tx) error {
		where, args := filter([][2]string{{"version", version}})
		rs, err := t.query(ctx, `SELECT `+releaseCols+where+` ORDER BY id DESC`, args...)
		out, err = scanAll(rs, err, func(r rows, rel *Release) error { return r.Scan(releaseDest(rel)...) })
		return err
	})
	return out, wrapf(err, "list releases")
}

// Release returns one release by id (ErrNotFound if unknown).
func (s *DB) Release(ctx context.Context, id int64) (Release, error) {
	var r Release
	err := s.readRow(ctx, `SELECT `+releaseCols+` WHERE id = ?`, []any{id}, releaseDest(&r)...)
	return r, wrapf(err, "release %d", id)
}

// Rollout states.
const (
	RolloutRunning = "running"
	RolloutPaused  = "paused"
	RolloutHalted  = "halted"  // stopped by itself: failures crossed max_failures
	RolloutAborted = "aborted" // stopped by a person
	RolloutDone    = "done"
)

// ErrRolloutState is returned for a change a rollout's state does not allow (resume a done
// rollout, start one while another runs).
var ErrRolloutState = errors.New("not allowed in the rollout's state")

// Rollout is a release version rolled out in waves to the stores it matched when it started.
type Rollout struct {
	ID      int64  `json:"id"`
	Version string `json:"version"`
	// OS, Arch and Channel narrow the rollout ("" : any).
	OS          string    `json:"os,omitempty"`
	Arch        string    `json:"arch,omitempty"`
	Channel     string    `json:"channel,omitempty"`
	MaxFailures string    `json:"max_failures"` // "5%" or a count
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	Wave        int       `json:"wave"` // the current wave (0-based)
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`

	Waves  []Wave         `json:"waves"`
	Stores []RolloutStore `json:"stores,omitempty"`
}

// Wave is one step of a rollout: Stores is the cumulative number of the rollout's stores the
// wave reaches (its Target, "10%", of them).
type Wave struct {
	Wave       int       `json:"wave"`
	Target     string    `json:"target"`
	Stores     int       `json:"stores"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Per-store rollout states, beside the agent's own protocol.Update* states.
const (
	StorePending = "pending" // not yet sent (waiting for its wave, window, backlog or connection)
	StoreSent    = "sent"    // command published, nothing reported yet
	StoreTimeout = "timeout" // no outcome within rollouts.store_timeout
	StoreSkipped = "skipped" // disabled or removed since the rollout started
)

// RolloutStore is one store's state in a rollout.
type RolloutStore struct {
	Store       string `json:"store"`
	Wave        int    `json:"wave"`
	Release     int64  `json:"release"`
	State       string `json:"state"`
	FromVersion string `json:"from_version,omitempty"`
	CommandID   string `json:"command_id,omitempty"`
	// Tries counts the commands (ids) offered; Attempts the sends of the current one.
	Tries     int       `json:"tries"`
	Attempts  int       `json:"attempts"`
	SentAt    time.Time `json:"sent_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
	Detail    string    `json:"detail,omitempty"`
}

// AddRollout records a rollout with its waves and stores (state running, wave 0) and returns
// its id; ErrRolloutState while another rollout is running or paused.
func (s *DB) AddRollout(ctx context.Context, ro Rollout, stores []RolloutStore) (int64, error) {
	now := clock.Now()
	var id int64
	err := s.write(ctx, func(t tx) error {
		var n int
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM rollouts WHERE state IN ('running', 'paused')`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: another rollout is running or paused; finish, abort or wait for it", ErrRolloutState)
		}
		if err := t.queryRow(ctx, `INSERT INTO rollouts (version, os, arch, channel, max_failures, state, wave, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING id`, ro.Version, ro.OS, ro.Arch, ro.Channel, ro.MaxFailures, RolloutRunning,
			ro.CreatedBy, s.ts(now), s.ts(now)).Scan(&id); err != nil {
			return err
		}
		for _, w := range ro.Waves {
			started := time.Time{}
			if w.Wave == 0 {
				started = now
			}
			if _, err := t.exec(ctx, `INSERT INTO rollout_waves (rollout, wave, target, stores, started_at) VALUES (?, ?, ?, ?, ?)`,
				id, w.Wave, w.Target, w.Stores, s.ts(started)); err != nil {
				return err
			}
		}
		for _, rs := range stores {
			if _, err := t.exec(ctx, `INSERT INTO rollout_stores (rollout, store, wave, release, state, from_version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				id, rs.Store, rs.Wave, rs.Release, StorePending, rs.FromVersion, s.ts(now)); err != nil {
				return err
			}
		}
		return nil
	})
	return id, wrapf(err, "add rollout of %s", ro.Version)
}

const rolloutCols = `id, version, os, arch, channel, max_failures, state, reason, wave, created_by, created_at, updated_at FROM rollouts`

func rolloutDest(r *Rollout) []any {
	return []any{&r.ID, &r.Version, &r.OS, &r.Arch, &r.Channel, &r.MaxFailures, &r.State, &r.Reason, &r.Wave, &r.CreatedBy,
		scanTime{&r.CreatedAt}, scanTime{&r.UpdatedAt}}
}

// Rollouts lists rollouts newest first with their waves (not their stores); state "" for all.
func (s *DB) Rollouts(ctx context.Context, state string) ([]Rollout, error) {
	var out []Rollout
	err := s.read(ctx, func(t tx) error {
		where, args := filter([][2]string{{"state", state}})
		rs, err := t.query(ctx, `SELECT `+rolloutCols+where+` ORDER BY id DESC`, args...)
		if out, err = scanAll(rs, err, func(r rows, ro *Rollout) error { return r.Scan(rolloutDest(ro)...) }); err != nil {
			return err
		}
		for i := range out {
			if out[i].Waves, err = readWaves(ctx, t, out[i].ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, wrapf(err, "list rollouts")
}

// Rollout returns a rollout with its waves and stores (ErrNotFound if unknown).
func (s *DB) Rollout(ctx context.Context, id int64) (Rollout, error) {
	var ro Rollout
	err := s.read(ctx, func(t tx) error {
		if err := t.queryRow(ctx, `SELECT `+rolloutCols+` WHERE id = ?`, id).Scan(rolloutDest(&ro)...); err != nil {
			if isNoRows(err) {
				return ErrNotFound
			}
			return err
		}
		var err error
		if ro.Waves, err = readWaves(ctx, t, id); err != nil {
			return err
		}
		rs, err := t.query(ctx, `SELECT store, wave, release, state, from_version, command_id, tries, attempts, sent_at, updated_at, detail
			FROM rollout_stores WHERE rollout = ? ORDER BY wave, store`, id)
		ro.Stores, err = scanAll(rs, err, func(r rows, x *RolloutStore) error {
			return r.Scan(&x.Store, &x.Wave, &x.Release, &x.State, &x.FromVersion, &x.CommandID, &x.Tries, &x.Attempts, scanTime{&x.SentAt},
				scanTime{&x.UpdatedAt}, &x.Detail)
		})
		return err
	})
	return ro, wrapf(err, "rollout %d", id)
}

func readWaves(ctx context.Context, t tx, id int64) ([]Wave, error) {
	rs, err := t.query(ctx, `SELECT wave, target, stores, started_at, finished_at FROM rollout_waves WHERE rollout = ? ORDER BY wave`, id)
	return scanAll(rs, err, func(r rows, w *Wave) error {
		return r.Scan(&w.Wave, &w.Target, &w.Stores, scanTime{&w.StartedAt}, scanTime{&w.FinishedAt})
	})
}

// SetRolloutState moves a rollout from one of the states from to state, with a reason;
// ErrNotFound for an unknown rollout, ErrRolloutState when it is in none of from.
func (s *DB) SetRolloutState(ctx context.Context, id int64, from []string, state, reason string) error {
	err := s.write(ctx, func(t tx) error {
		var cur string
		if err := t.queryRow(ctx, `SELECT state FROM rollouts WHERE id = ?`+s.d.forUpdate, id).Scan(&cur); err != nil {
			if isNoRows(err) {
				return ErrNotFound
			}
			return err
		}
		ok := false
		for _, f := range from {
			ok = ok || f == cur
		}
		if !ok {
			return fmt.Errorf("%w: rollout %d is %s", ErrRolloutState, id, cur)
		}
		if _, err := t.exec(ctx, `UPDATE rollouts SET state = ?, reason = ?, updated_at = ? WHERE id = ?`, state, reason, s.now(), id); err != nil {
			return err
		}
		if state != RolloutDone {
			return nil
		}
		// The last wave ends with the rollout.
		_, err := t.exec(ctx, `UPDATE rollout_waves SET finished_at = ? WHERE rollout = ? AND wave = (SELECT wave FROM rollouts WHERE id = ?)`, s.now(), id, id)
		return err
	})
	return wrapf(err, "rollout %d %s", id, state)
}

// AdvanceRollout finishes wave from at and starts wave from+1 (when there is one); it does
// nothing (false) unless the rollout is running at wave from.
func (s *DB) AdvanceRollout(ctx context.Context, id int64, from int, at time.Time) (bool, error) {
	var moved bool
	err := s.write(ctx, func(t tx) error {
		n, err := t.exec(ctx, `UPDATE rollouts SET wave = ?, updated_at = ? WHERE id = ? AND wave = ? AND state = 'running'`,
			from+1, s.ts(at), id, from)
		if err != nil || n == 0 {
			return err
		}
		moved = true
		if _, err := t.exec(ctx, `UPDATE rollout_waves SET finished_at = ? WHERE rollout = ? AND wave = ?`, s.ts(at), id, from); err != nil {
			return err
		}
		_, err = t.exec(ctx, `UPDATE rollout_waves SET started_at = ? WHERE rollout = ? AND wave = ?`, s.ts(at), id, from+1)
		return err
	})
	return moved, wrapf(err, "advance rollout %d", id)
}

// PutRolloutStore saves a store's state in a rollout (ErrNotFound if it is not in it).
func (s *DB) PutRolloutStore(ctx context.Context, id int64, rs RolloutStore) error {
	if rs.UpdatedAt.IsZero() {
		rs.UpdatedAt = clock.Now()
	}
	n, err := s.exec(ctx, `UPDATE rollout_stores SET state = ?, command_id = ?, tries = ?, attempts = ?, sent_at = ?, updated_at = ?, detail = ?
		WHERE rollout = ? AND store = ?`, rs.State, rs.CommandID, rs.Tries, rs.Attempts, s.ts(rs.SentAt), s.ts(rs.UpdatedAt),
		capBytes(rs.Detail, 1024), id, rs.Store)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return wrapf(err, "rollout %d store %s", id, rs.Store)
}

// SetStoreMaintenance sets a store's maintenance window ("" for rollouts.maintenance_window);
// the caller validates it. ErrNotFound for an unknown or removed store.
func (s *DB) SetStoreMaintenance(ctx context.Context, id, spec string) error {
	n, err := s.exec(ctx, `UPDATE stores SET maintenance = ? WHERE id = ? AND state <> 'removed'`, spec, id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return wrapf(err, "set maintenance window of %s", id)
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// ClaimLease takes or renews the lease called name for owner until now+ttl; false when
// another owner holds it unexpired. Hub replicas use it so that one steps the rollouts.
func (s *DB) ClaimLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	n, err := s.exec(ctx, `INSERT INTO rollout_lease (name, owner, until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE rollout_lease.owner = excluded.owner OR rollout_lease.until < ?`, name, owner, s.ts(now.Add(ttl)), s.ts(now))
	return n > 0, wrapf(err, "claim lease %s", name)
}
