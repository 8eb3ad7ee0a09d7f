package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// runCredentialsContract covers the credential lifecycle: enrol with a Mosquitto hash, rotate
// with and without grace, revoke, disable/enable, remove and re-enrol, change tracking, secrets.
func runCredentialsContract(t *testing.T, open func(t *testing.T) *DB) {
	ctx := context.Background()
	valid := func(t *testing.T, s *DB, id string) []string {
		t.Helper()
		c, err := s.Credentials(ctx, id)
		if err != nil {
			t.Fatalf("Credentials(%s): %v", id, err)
		}
		return c.Valid(time.Now())
	}
	changed := func(t *testing.T, s *DB, since time.Time) []string {
		t.Helper()
		ids, err := s.CredentialsChanged(ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s *DB)
	}{
		{"rotate keeps the old password for the grace only", func(t *testing.T, s *DB) {
			if err := s.EnrollStore(ctx, "a", "h1", "$7$m1"); err != nil {
				t.Fatal(err)
			}
			mustAddStore(t, s, "b")
			if c, _ := s.Credentials(ctx, "a"); c.MosquittoHash != "$7$m1" || !c.PreviousUntil.IsZero() {
				t.Fatalf("Credentials(a) = %+v", c)
			}
			if err := s.RotateCredentials(ctx, "a", "h2", "$7$m2", time.Hour); err != nil {
				t.Fatal(err)
			}
			if got := valid(t, s, "a"); !slices.Equal(got, []string{"h2", "h1"}) {
				t.Fatalf("valid after rotate with grace = %v", got)
			}
			if c, _ := s.Credentials(ctx, "a"); c.MosquittoHash != "$7$m2" {
				t.Fatalf("mosquitto hash after rotate = %q", c.MosquittoHash)
			}
			if err := s.RevokePreviousCredentials(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			if got := valid(t, s, "a"); !slices.Equal(got, []string{"h2"}) {
				t.Fatalf("valid after revoke = %v", got)
			}
			if err := s.RotateCredentials(ctx, "a", "h3", "", 0); err != nil {
				t.Fatal(err)
			}
			if got := valid(t, s, "a"); !slices.Equal(got, []string{"h3"}) {
				t.Fatalf("valid after rotate without grace = %v", got)
			}
			if got := valid(t, s, "b"); !slices.Equal(got, []string{"hash-of-b"}) {
				t.Fatalf("b touched: %v", got)
			}
			if err := s.RotateCredentials(ctx, "zz", "h", "", 0); !errors.Is(err, ErrNotFound) {
				t.Fatalf("rotate unknown = %v", err)
			}
		}},
		{"disable, enable, remove, enrol again", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "a")
			mustApply(t, s, "a", "e1", recs("a", "e1", 1, 3))
			for _, step := range []struct {
				state string
				want  []string
			}{{StoreDisabled, nil}, {StoreActive, []string{"hash-of-a"}}, {StoreRemoved, nil}} {
				if err := s.SetStoreState(ctx, "a", step.state); err != nil {
					t.Fatal(err)
				}
				if got := valid(t, s, "a"); !slices.Equal(got, step.want) {
					t.Fatalf("valid after %s = %v, want %v", step.state, got, step.want)
				}
				if info, err := s.GetStore(ctx, "a"); err != nil || info.State != step.state || info.Records != 3 {
					t.Fatalf("GetStore after %s = %+v, %v", step.state, info, err)
				}
			}
			if c, _ := s.Credentials(ctx, "a"); c.Hash != "" || c.MosquittoHash != "" {
				t.Fatalf("removed store keeps credentials: %+v", c)
			}
			for _, st := range []string{StoreActive, StoreDisabled} {
				if err := s.SetStoreState(ctx, "a", st); !errors.Is(err, ErrNotFound) {
					t.Fatalf("SetStoreState(removed, %s) = %v, want ErrNotFound", st, err)
				}
			}
			if err := s.SetStoreState(ctx, "a", "bogus"); err == nil {
				t.Fatal("unknown state accepted")
			}
			if err := s.EnrollStore(ctx, "a", "new", "$7$n"); err != nil {
				t.Fatalf("enrol removed store again: %v", err)
			}
			if got := valid(t, s, "a"); !slices.Equal(got, []string{"new"}) {
				t.Fatalf("valid after enrolling again = %v", got)
			}
			if err := s.EnrollStore(ctx, "a", "x", ""); !errors.Is(err, ErrExists) {
				t.Fatalf("enrol active store = %v, want ErrExists", err)
			}
			all, err := s.AllCredentials(ctx)
			if err != nil || len(all) != 1 || all[0].Store != "a" || all[0].MosquittoHash != "$7$n" {
				t.Fatalf("AllCredentials = %+v, %v", all, err)
			}
		}},
		{"changes are tracked", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "a")
			mustAddStore(t, s, "b")
			t0 := time.Now()
			time.Sleep(2 * time.Millisecond) // timestamps have microsecond resolution
			if got := changed(t, s, t0); len(got) != 0 {
				t.Fatalf("changed with no change = %v", got)
			}
			if err := s.SetStoreState(ctx, "b", StoreDisabled); err != nil {
				t.Fatal(err)
			}
			if got := changed(t, s, t0); !slices.Equal(got, []string{"b"}) {
				t.Fatalf("changed after disable = %v", got)
			}
			// A grace still running is no change; one running out counts when it ends.
			if err := s.RotateCredentials(ctx, "a", "h2", "", time.Hour); err != nil {
				t.Fatal(err)
			}
			// t1 must fall inside b's grace, so the grace is long enough for a loaded machine
			// (20 ms used to end before t1 now and then, and then nothing changed after t1).
			if err := s.RotateCredentials(ctx, "b", "h2", "", time.Second); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
			t1 := time.Now()
			deadline := time.Now().Add(5 * time.Second)
			for got := changed(t, s, t1); !slices.Equal(got, []string{"b"}); got = changed(t, s, t1) {
				if len(got) > 0 || time.Now().After(deadline) {
					t.Fatalf("changed after b's grace ended = %v, want [b]", got)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}},
		{"secrets are minted once", func(t *testing.T, s *DB) {
			v, err := s.EnsureSecret(ctx, "probe", "one")
			if err != nil || v != "one" {
				t.Fatalf("EnsureSecret = %q, %v", v, err)
			}
			if v, err := s.EnsureSecret(ctx, "probe", "two"); err != nil || v != "one" {
				t.Fatalf("EnsureSecret again = %q, %v; want the first", v, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

func TestSQLiteCredentialsContract(t *testing.T) {
	runCredentialsContract(t, func(t *testing.T) *DB { return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")) })
}

func TestPostgresCredentialsContract(t *testing.T) {
	runCredentialsContract(t, func(t *testing.T) *DB { return openPostgresT(t, pgSchema(t)) })
}
