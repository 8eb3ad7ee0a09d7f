// Package storetest opens fresh hub stores for the tests of packages built on the store: SQLite
// in the test's temporary directory and PostgreSQL (LANEBRIDGE_TEST_PG_URL, default the local
// server) in a schema of its own, dropped when the test ends. Under -short the PostgreSQL run
// is skipped; otherwise an unreachable server fails the test (CI never skips it silently).
package storetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lanebridge/lanebridge/hub/internal/store"
)

var seq atomic.Int64

// Engines runs fn as subtests "sqlite" and "postgres", each on a fresh store.
func Engines(t *testing.T, fn func(t *testing.T, st *store.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("needs PostgreSQL (-short)")
		}
		url := os.Getenv("LANEBRIDGE_TEST_PG_URL")
		if url == "" {
			url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		}
		schema := fmt.Sprintf("lbt_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, seq.Add(1))
		st, err := store.OpenPostgresSchema(context.Background(), url, schema)
		if err != nil {
			t.Fatalf("PostgreSQL at LANEBRIDGE_TEST_PG_URL (or use -short): %v", err)
		}
		t.Cleanup(func() {
			st.Close()
			if c, err := pgx.Connect(context.Background(), url); err == nil {
				c.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
				c.Close(context.Background())
			}
		})
		fn(t, st)
	})
}
