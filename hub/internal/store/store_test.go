package store

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lanebridge/lanebridge/protocol"
)

func openSQLiteT(t testing.TB, path string) *DB {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestSQLiteContract(t *testing.T) {
	runContract(t, func(t *testing.T) *DB {
		return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db"))
	})
}

// Two SQLite objects on one file stand for the hub and the `stores add` CLI: writes from both
// must serialise through BEGIN IMMEDIATE and the busy timeout, never fail with SQLITE_BUSY.
func TestSQLiteTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	a, b := openSQLiteT(t, path), openSQLiteT(t, path)
	mustAddStore(t, a, "s1")
	if err := b.AddStore(context.Background(), "s1", "x"); err == nil {
		t.Fatal("second handle re-added an existing store")
	}
	applyConcurrently(t, []*DB{a, b, a, b}, "s1", "e1", 200)
	checkContiguous(t, b, "s1", "e1", 200)
}

func TestSQLiteReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	mustAddStore(t, s, "s1")
	mustApply(t, s, "s1", "e1", recs("s1", "e1", 1, 10))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openSQLiteT(t, path)
	checkContiguous(t, s2, "s1", "e1", 10)
	var mode string
	var sync int
	if err := queryRowT(t, s2, "PRAGMA journal_mode", &mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := queryRowT(t, s2, "PRAGMA synchronous", &sync); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
}

func TestOpenSQLiteRejects(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "a?b"} {
		if s, err := OpenSQLite(context.Background(), p); err == nil {
			s.Close()
			t.Errorf("OpenSQLite(%q) succeeded", p)
		}
	}
}

// --- PostgreSQL ---

func pgURL() string {
	if u := os.Getenv("LANEBRIDGE_TEST_PG_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

var schemaSeq atomic.Int64

// pgSchema returns a fresh schema name dropped at cleanup. PostgreSQL being unreachable fails
// the test, except under -short where it skips.
func pgSchema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL())
	if err != nil {
		shown := "LANEBRIDGE_TEST_PG_URL"
		if u, perr := url.Parse(pgURL()); perr == nil {
			shown = u.Redacted()
		}
		if testing.Short() {
			t.Skipf("PostgreSQL unreachable at %s (-short): %v", shown, err)
		}
		t.Fatalf("PostgreSQL unreachable at %s (set LANEBRIDGE_TEST_PG_URL or use -short): %v", shown, err)
	}
	conn.Close(ctx)
	name := fmt.Sprintf("lbtest_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, schemaSeq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgURL())
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

func openPostgresT(t testing.TB, schema string) *DB {
	t.Helper()
	p, err := OpenPostgresSchema(context.Background(), pgURL(), schema)
	if err != nil {
		t.Fatalf("OpenPostgresSchema: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPostgresContract(t *testing.T) {
	runContract(t, func(t *testing.T) *DB {
		return openPostgresT(t, pgSchema(t))
	})
}

// Two pools on one schema stand for two hub replicas applying the same store.
func TestPostgresTwoReplicas(t *testing.T) {
	schema := pgSchema(t)
	a, b := openPostgresT(t, schema), openPostgresT(t, schema)
	mustAddStore(t, a, "s1")
	applyConcurrently(t, []*DB{a, b, a, b}, "s1", "e1", 200)
	checkContiguous(t, b, "s1", "e1", 200)
	// A conflict seen by both replicas still raises one exception.
	bad := recs("s1", "e1", 10, 10)
	bad[0].Total++
	bad[0].Seal()
	var wg sync.WaitGroup
	for _, s := range []*DB{a, b, a, b} {
		wg.Go(func() {
			res, err := s.ApplyBatch(context.Background(), "s1", "e1", bad)
			if err != nil || res.Conflicts != 1 {
				t.Errorf("ApplyBatch(conflict) = %+v, %v; want 1 conflict", res, err)
			}
		})
	}
	wg.Wait()
	ex, err := b.Exceptions(context.Background(), ExceptionFilter{Reason: ReasonHashConflict})
	if err != nil || len(ex) != 1 {
		t.Fatalf("Exceptions = %+v, %v; want exactly one", ex, err)
	}
}

// Several processes starting at once on an empty schema must all migrate it without error.
func TestPostgresConcurrentOpen(t *testing.T) {
	schema := pgSchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			p, err := OpenPostgresSchema(context.Background(), pgURL(), schema)
			if err != nil {
				errs <- err
				return
			}
			p.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent open: %v", err)
	}
	// search_path in the URL works as well as the schema argument.
	sep := "?"
	if strings.Contains(pgURL(), "?") {
		sep = "&"
	}
	p, err := OpenPostgres(context.Background(), pgURL()+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mustAddStore(t, p, "s1")
	q := openPostgresT(t, schema)
	if _, err := q.Credentials(context.Background(), "s1"); err != nil {
		t.Fatalf("store added through search_path URL not found through schema: %v", err)
	}
}

// --- benchmark ---

func BenchmarkApplyBatch(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchApply(b, openSQLiteT(b, filepath.Join(b.TempDir(), "hub.db")))
	})
	b.Run("postgres", func(b *testing.B) {
		benchApply(b, openPostgresT(b, pgSchema(b)))
	})
}

func benchApply(b *testing.B, s *DB) {
	const size = 500
	mustAddStore(b, s, "s1")
	ctx := context.Background()
	next := uint64(1)
	var batch []protocol.Record
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		batch = recs("s1", "e1", next, next+size-1)
		b.StartTimer()
		res, err := s.ApplyBatch(ctx, "s1", "e1", batch)
		if err != nil || res.Applied != size {
			b.Fatalf("ApplyBatch = %+v, %v", res, err)
		}
		next += size
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
}

// execT runs one statement (? placeholders) in a write transaction of s.
func execT(t testing.TB, s *DB, q string, args ...any) {
	t.Helper()
	if err := s.write(context.Background(), func(tx tx) error {
		_, err := tx.exec(context.Background(), q, args...)
		return err
	}); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// queryRowT reads one row on the writer connection of s (a SQLite pragma reads the
// connection's own settings) into dest.
func queryRowT(t testing.TB, s *DB, q string, dest ...any) error {
	t.Helper()
	tx, err := s.e.begin(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.rollback(context.Background())
	return tx.queryRow(context.Background(), q).Scan(dest...)
}
