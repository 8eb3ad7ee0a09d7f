package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Enrolment token errors (RedeemEnrollToken).
var (
	ErrTokenUsed      = errors.New("enrolment token already used")
	ErrTokenExpired   = errors.New("enrolment token expired")
	ErrStoreNotActive = errors.New("store is disabled or removed")
)

// AddEnrollToken keeps the hash of a one-time enrolment token for an enrolled store (not
// removed), valid until expires. ErrNotFound for an unknown or removed store.
func (s *DB) AddEnrollToken(ctx context.Context, store, hash string, expires time.Time) error {
	err := s.write(ctx, func(t tx) error {
		var state string
		err := t.queryRow(ctx, `SELECT state FROM stores WHERE id = ?`, store).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && state == StoreRemoved) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = t.exec(ctx, `INSERT INTO enroll_tokens (hash, store, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			hash, store, s.now(), s.ts(expires))
		return err
	})
	return wrapf(err, "add enrolment token for %s", store)
}

// RedeemEnrollToken uses the token with hash once, at now, from the client address from: in one
// transaction it marks the token used and gives its store the new password hashes (the
// previous password stops at once). It returns the store; ErrNotFound for an unknown token,
// ErrTokenUsed, ErrTokenExpired, or ErrStoreNotActive for a disabled or removed store (the
// token is then not used up).
func (s *DB) RedeemEnrollToken(ctx context.Context, hash, from string, now time.Time, passwordHash, mosquittoHash string) (string, error) {
	var store string
	err := s.write(ctx, func(t tx) error {
		var expires, used time.Time
		err := t.queryRow(ctx, `SELECT store, expires_at, used_at FROM enroll_tokens WHERE hash = ?`+s.d.forUpdate, hash).
			Scan(&store, scanTime{&expires}, scanTime{&used})
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case !used.IsZero():
			return ErrTokenUsed
		case !now.Before(expires):
			return ErrTokenExpired
		}
		n, err := t.exec(ctx, `UPDATE stores SET password_hash = ?, mosquitto_hash = ?, previous_hash = '', previous_until = ?, credentials_at = ?
			WHERE id = ? AND state = 'active'`, passwordHash, mosquittoHash, s.ts(time.Unix(0, 0)), s.ts(now), store)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrStoreNotActive
		}
		n, err = t.exec(ctx, `UPDATE enroll_tokens SET used_at = ?, used_from = ? WHERE hash = ? AND used_at = ?`,
			s.ts(now), from, hash, s.ts(time.Unix(0, 0)))
		if err == nil && n == 0 {
			err = ErrTokenUsed // a concurrent redeem won
		}
		return err
	})
	if err != nil {
		return store, fmt.Errorf("redeem enrolment token: %w", err)
	}
	return store, nil
}
