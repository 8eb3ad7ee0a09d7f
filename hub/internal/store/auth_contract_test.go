package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runAuthContract runs the operator, token, session, audit and store-scoping contract.
func runAuthContract(t *testing.T, open func(t *testing.T) *DB) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		run  func(t *testing.T, s *DB)
	}{
		{"operators", func(t *testing.T, s *DB) {
			ana := Operator{Name: "ana", Role: "operator", Stores: []string{"S001", "S,2"}, PasswordHash: "$argon2id$x"}
			if err := s.AddOperator(ctx, ana); err != nil {
				t.Fatal(err)
			}
			if err := s.AddOperator(ctx, ana); !errors.Is(err, ErrExists) {
				t.Fatalf("second AddOperator = %v, want ErrExists", err)
			}
			if err := s.AddOperator(ctx, Operator{Name: "bob", Role: "admin", PasswordHash: "h"}); err != nil {
				t.Fatal(err)
			}
			got, err := s.Operator(ctx, "ana")
			if err != nil || got.Role != "operator" || !slices.Equal(got.Stores, ana.Stores) || got.PasswordHash != ana.PasswordHash ||
				got.CreatedAt.IsZero() || !got.DisabledAt.IsZero() {
				t.Fatalf("Operator = %+v, %v", got, err)
			}
			if _, err := s.Operator(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown operator: %v", err)
			}
			list, err := s.Operators(ctx)
			if err != nil || len(list) != 2 || list[0].Name != "ana" || list[1].Stores != nil {
				t.Fatalf("Operators = %+v, %v", list, err)
			}
			if err := s.SetOperatorPassword(ctx, "ana", "new"); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Operator(ctx, "ana"); got.PasswordHash != "new" {
				t.Fatalf("password hash %q after SetOperatorPassword", got.PasswordHash)
			}
			if err := s.DisableOperator(ctx, "ana"); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Operator(ctx, "ana"); got.DisabledAt.IsZero() {
				t.Fatal("DisableOperator left the operator enabled")
			}
			for _, err := range []error{s.DisableOperator(ctx, "nobody"), s.SetOperatorPassword(ctx, "nobody", "x")} {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("change of unknown operator: %v", err)
				}
			}
		}},
		{"tokens", func(t *testing.T, s *DB) {
			k := APIToken{Name: "ci", Role: "viewer", Hash: "h1", Stores: []string{"S001"}, ExpiresAt: t0}
			if err := s.AddToken(ctx, k); err != nil {
				t.Fatal(err)
			}
			for _, dup := range []APIToken{{Name: "ci", Role: "viewer", Hash: "h2"}, {Name: "other", Role: "viewer", Hash: "h1"}} {
				if err := s.AddToken(ctx, dup); !errors.Is(err, ErrExists) {
					t.Fatalf("AddToken(%+v) = %v, want ErrExists", dup, err)
				}
			}
			got, err := s.TokenByHash(ctx, "h1")
			if err != nil || got.Name != "ci" || !got.ExpiresAt.Equal(t0) || !slices.Equal(got.Stores, k.Stores) {
				t.Fatalf("TokenByHash = %+v, %v", got, err)
			}
			if err := s.AddToken(ctx, APIToken{Name: "forever", Role: "admin", Hash: "h3"}); err != nil {
				t.Fatal(err)
			}
			if list, err := s.Tokens(ctx); err != nil || len(list) != 2 || !list[1].ExpiresAt.IsZero() {
				t.Fatalf("Tokens = %+v, %v", list, err)
			}
			if err := s.RevokeToken(ctx, "ci"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.TokenByHash(ctx, "h1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("revoked token found: %v", err)
			}
			if err := s.RevokeToken(ctx, "ci"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second revoke: %v", err)
			}
		}},
		{"sessions end with the operator", func(t *testing.T, s *DB) {
			if err := s.AddOperator(ctx, Operator{Name: "ana", Role: "viewer", PasswordHash: "h"}); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"s1", "s2", "s3"} {
				if err := s.AddSession(ctx, Session{IDHash: id, CSRFToken: "c" + id, CreatedAt: t0, SeenAt: t0, Operator: Operator{Name: "ana"}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.AddSession(ctx, Session{IDHash: "x", Operator: Operator{Name: "nobody"}}); err == nil {
				t.Fatal("session of an unknown operator stored")
			}
			if err := s.TouchSession(ctx, "s1", t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			se, err := s.Session(ctx, "s1")
			if err != nil || se.CSRFToken != "cs1" || !se.CreatedAt.Equal(t0) || !se.SeenAt.Equal(t0.Add(time.Minute)) || se.Operator.Role != "viewer" {
				t.Fatalf("Session = %+v, %v", se, err)
			}
			// Seen: s3 at t0, s1 at t0+1m, s2 at t0+1h; all created at t0.
			if err := s.TouchSession(ctx, "s2", t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				seen, created time.Time
				gone          string
			}{{t0.Add(time.Second), t0.Add(-time.Hour), "s3"}, {t0.Add(2 * time.Minute), t0.Add(-time.Hour), "s1"}, {t0, t0.Add(time.Second), "s2"}} {
				if n, err := s.PruneSessions(ctx, c.seen, c.created); err != nil || n != 1 {
					t.Fatalf("PruneSessions(%v, %v) = %d, %v; want %s only", c.seen, c.created, n, err, c.gone)
				}
				if _, err := s.Session(ctx, c.gone); !errors.Is(err, ErrNotFound) {
					t.Fatalf("%s not pruned: %v", c.gone, err)
				}
			}
			for _, id := range []string{"s1", "s2"} {
				if err := s.AddSession(ctx, Session{IDHash: id, CSRFToken: "c" + id, CreatedAt: t0, SeenAt: t0, Operator: Operator{Name: "ana"}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.DeleteSession(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Session(ctx, "s1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleted session: %v", err)
			}
			if err := s.SetOperatorPassword(ctx, "ana", "h2"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Session(ctx, "s2"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("session survived a password change: %v", err)
			}
			if err := s.AddSession(ctx, Session{IDHash: "s4", CreatedAt: t0, SeenAt: t0, Operator: Operator{Name: "ana"}}); err != nil {
				t.Fatal(err)
			}
			if err := s.DisableOperator(ctx, "ana"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Session(ctx, "s4"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("session survived DisableOperator: %v", err)
			}
		}},
		{"audit", func(t *testing.T, s *DB) {
			long := strings.Repeat("é", MaxAuditDetail)
			for i, a := range []string{"login", "login", "POST /api/v1/exceptions/{id}"} {
				if err := s.AddAudit(ctx, AuditEntry{At: t0.Add(time.Duration(i) * time.Second), Actor: "user:ana", Action: a,
					Target: "/x" + long, Detail: long, Remote: "192.0.2.1", Outcome: "ok"}); err != nil {
					t.Fatal(err)
				}
			}
			all, err := s.Audit(ctx, 0, 0)
			if err != nil || len(all) != 3 || all[0].Action != "POST /api/v1/exceptions/{id}" || !all[0].At.Equal(t0.Add(2*time.Second)) ||
				all[0].Remote != "192.0.2.1" || all[0].Outcome != "ok" {
				t.Fatalf("Audit = %+v, %v", all, err)
			}
			if d := all[0].Detail; len(d) > MaxAuditDetail || len(d) < MaxAuditDetail-1 || !strings.HasPrefix(long, d) {
				t.Fatalf("detail of %d bytes not capped on a rune boundary at %d", len(d), MaxAuditDetail)
			}
			if tg := all[0].Target; len(tg) > MaxAuditDetail || !strings.HasPrefix(tg, "/x") {
				t.Fatalf("target of %d bytes not capped", len(tg))
			}
			page, err := s.Audit(ctx, all[0].ID, 1)
			if err != nil || len(page) != 1 || page[0].ID != all[1].ID {
				t.Fatalf("Audit(before %d, 1) = %+v, %v", all[0].ID, page, err)
			}
		}},
		{"lists scoped to stores", func(t *testing.T, s *DB) {
			for _, id := range []string{"s1", "s2", "s3"} {
				mustAddStore(t, s, id)
				mustApply(t, s, id, "e1", recs(id, "e1", 1, 2))
				if _, err := s.RaiseException(ctx, Exception{Store: id, Reason: "gap", Key: "k"}); err != nil {
					t.Fatal(err)
				}
			}
			exc := func(f ExceptionFilter) []string {
				l, err := s.Exceptions(ctx, f)
				return storeIDs(t, l, err, func(e Exception) string { return e.Store })
			}
			pst := func(f PostingFilter) []string {
				l, err := s.Postings(ctx, f)
				return storeIDs(t, l, err, func(p Posting) string { return p.Store })
			}
			for _, c := range []struct {
				scope []string
				want  []string
			}{{nil, []string{"s1", "s2", "s3"}}, {[]string{"s1", "s3"}, []string{"s1", "s3"}}, {[]string{}, nil}} {
				if got := exc(ExceptionFilter{Stores: c.scope}); !slices.Equal(got, c.want) {
					t.Errorf("exceptions in %v: %v, want %v", c.scope, got, c.want)
				}
				if got := pst(PostingFilter{Stores: c.scope}); !slices.Equal(got, c.want) {
					t.Errorf("postings in %v: %v, want %v", c.scope, got, c.want)
				}
			}
			if got := exc(ExceptionFilter{Store: "s2", Stores: []string{"s1"}}); got != nil {
				t.Errorf("store outside the scope listed: %v", got)
			}
			ps, _ := s.Postings(ctx, PostingFilter{Store: "s2", Limit: 1})
			p, err := s.Posting(ctx, ps[0].ID)
			if err != nil || p.Store != "s2" || p.Key != ps[0].Key {
				t.Fatalf("Posting(%d) = %+v, %v", ps[0].ID, p, err)
			}
			if _, err := s.Posting(ctx, 1<<40); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown posting: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, open(t))
		})
	}
}

// storeIDs returns the sorted distinct stores of a list.
func storeIDs[T any](t *testing.T, l []T, err error, of func(T) string) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range l {
		ids = append(ids, of(v))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func TestSQLiteAuthContract(t *testing.T) {
	runAuthContract(t, func(t *testing.T) *DB {
		return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db"))
	})
}

func TestPostgresAuthContract(t *testing.T) {
	runAuthContract(t, func(t *testing.T) *DB {
		return openPostgresT(t, pgSchema(t))
	})
}
