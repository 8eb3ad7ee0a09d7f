package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// runEnrollConfigContract covers enrolment tokens (one use, expiry, credentials rotated in the
// same transaction, disabled stores) and config pushes (versions, supersede, reports).
func runEnrollConfigContract(t *testing.T, open func(t *testing.T) *DB) {
	ctx := context.Background()
	t.Run("enrolment token is used once and rotates the password", func(t *testing.T) {
		s := open(t)
		if err := s.EnrollStore(ctx, "a", "h1", "$7$m1"); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := s.AddEnrollToken(ctx, "nope", "x", now.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("token for unknown store: %v", err)
		}
		if err := s.AddEnrollToken(ctx, "a", "tok1", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.AddEnrollToken(ctx, "a", "tok-old", now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemEnrollToken(ctx, "unknown", "ip", now, "h2", "$7$m2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown token: %v", err)
		}
		if _, err := s.RedeemEnrollToken(ctx, "tok-old", "ip", now, "h2", "$7$m2"); !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("expired token: %v", err)
		}
		if c, _ := s.Credentials(ctx, "a"); c.Hash != "h1" {
			t.Fatalf("expired token changed the password: %+v", c)
		}
		id, err := s.RedeemEnrollToken(ctx, "tok1", "ip", now, "h2", "$7$m2")
		if err != nil || id != "a" {
			t.Fatalf("redeem = %q, %v", id, err)
		}
		c, _ := s.Credentials(ctx, "a")
		if c.Hash != "h2" || c.MosquittoHash != "$7$m2" || len(c.Valid(time.Now())) != 1 {
			t.Fatalf("after redeem: %+v (the old password must stop at once)", c)
		}
		if _, err := s.RedeemEnrollToken(ctx, "tok1", "ip", now, "h3", "$7$m3"); !errors.Is(err, ErrTokenUsed) {
			t.Fatalf("second use: %v", err)
		}
		if c, _ := s.Credentials(ctx, "a"); c.Hash != "h2" {
			t.Fatalf("second use changed the password: %+v", c)
		}
	})
	t.Run("a disabled store's token is refused and kept", func(t *testing.T) {
		s := open(t)
		mustAddStore(t, s, "b")
		if err := s.AddEnrollToken(ctx, "b", "tok", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.SetStoreState(ctx, "b", StoreDisabled); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemEnrollToken(ctx, "tok", "ip", time.Now(), "h", "m"); !errors.Is(err, ErrStoreNotActive) {
			t.Fatalf("disabled: %v", err)
		}
		if err := s.SetStoreState(ctx, "b", StoreActive); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemEnrollToken(ctx, "tok", "ip", time.Now(), "h", "m"); err != nil {
			t.Fatalf("after enable: %v", err)
		}
	})
	t.Run("config pushes: versions, supersede, reports", func(t *testing.T) {
		s := open(t)
		mustAddStore(t, s, "a")
		mustAddStore(t, s, "b")
		if _, err := s.NextConfigVersion(ctx, "zz"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown store: %v", err)
		}
		exp := time.Now().Add(time.Hour)
		for i, p := range []ConfigPush{{Store: "a", Version: 1, CommandID: "c1"}, {Store: "a", Version: 2, CommandID: "c2"}, {Store: "b", Version: 1, CommandID: "c3"}} {
			v, err := s.NextConfigVersion(ctx, p.Store)
			if err != nil || v != p.Version {
				t.Fatalf("%d: next = %d, %v", i, v, err)
			}
			p.Overrides, p.Manifest, p.ExpiresAt = "log: {level: debug}\n", `{"body":"{}","signature":"s"}`, exp
			if err := s.AddConfigPush(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddConfigPush(ctx, ConfigPush{Store: "a", Version: 2, CommandID: "c9", ExpiresAt: exp}); !errors.Is(err, ErrExists) {
			t.Fatalf("replayed version: %v", err)
		}
		if err := s.AddConfigPush(ctx, ConfigPush{Store: "b", Version: 2, CommandID: "c1", ExpiresAt: exp}); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate command id: %v", err)
		}
		pend, err := s.PendingConfigPushes(ctx, time.Now())
		if err != nil || len(pend) != 2 || pend[0].CommandID != "c2" || pend[1].CommandID != "c3" || pend[0].Manifest == "" {
			t.Fatalf("pending = %+v, %v", pend, err)
		}
		if pend, _ := s.PendingConfigPushes(ctx, exp.Add(time.Second)); len(pend) != 0 {
			t.Fatalf("expired pushes pending: %+v", pend)
		}
		if ok, err := s.PutConfigReport(ctx, "a", 2, "applied", ""); !ok || err != nil {
			t.Fatalf("report = %v, %v", ok, err)
		}
		if ok, _ := s.PutConfigReport(ctx, "a", 2, "applied", ""); ok {
			t.Fatal("the same report counted as a change")
		}
		if ok, _ := s.PutConfigReport(ctx, "a", 7, "applied", ""); ok {
			t.Fatal("a report for an unknown version was stored")
		}
		all, err := s.ConfigPushes(ctx, "a")
		if err != nil || len(all) != 2 || all[0].State != ConfigSuperseded || all[1].State != "applied" || all[1].ReportedAt.IsZero() {
			t.Fatalf("pushes of a = %+v, %v", all, err)
		}
		if all, _ := s.ConfigPushes(ctx, ""); len(all) != 3 {
			t.Fatalf("all pushes = %d", len(all))
		}
	})
}

func TestSQLiteEnrollConfigContract(t *testing.T) {
	runEnrollConfigContract(t, func(t *testing.T) *DB { return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")) })
}

func TestPostgresEnrollConfigContract(t *testing.T) {
	runEnrollConfigContract(t, func(t *testing.T) *DB { return openPostgresT(t, pgSchema(t)) })
}
