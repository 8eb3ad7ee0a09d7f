package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is the hub's store on SQLite or PostgreSQL. It is safe for concurrent use by goroutines
// and, on PostgreSQL, by several hub processes: writers of one stream serialise on its row
// lock, posting claims skip rows another replica holds, and migrations take an advisory lock.
// On SQLite several processes may open one file (the hub and the `stores add` CLI): every
// write transaction starts with BEGIN IMMEDIATE and waits up to the busy timeout.
type DB struct {
	name string // for errors: the file, or "postgres"
	e    engine
	d    dialect

	noPostings atomic.Bool // SetPostings(false): nothing is enqueued
	availHook  func()      // SetAvailabilityHook
}

// sqliteBusyTimeout is how long a write waits for another process's write transaction.
const sqliteBusyTimeout = 10 * time.Second

// OpenSQLite opens (creating if needed) the database file at path and migrates its schema. An
// existing file must be a sound database (not empty, an SQLite header, and PRAGMA quick_check
// ok on files up to 1 GiB), or OpenSQLite fails with ErrCorruptDatabase and leaves it as it is.
// The file is in WAL mode with synchronous=FULL, so a returned write is on disk. Within the
// process every write goes through one connection, reads through a small pool of their own.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite store %q: need a plain file path", path)
	}
	exists, size, err := checkSQLiteHeader(path)
	if err != nil {
		return nil, err
	}
	pragmas := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)", sqliteBusyTimeout.Milliseconds())
	// The writer's page cache (64 MiB, SQLite's default is 2 MiB) holds a whole group commit's
	// dirty pages: a smaller one spills them into the WAL mid-transaction, one write call per
	// page and the same page written again and again.
	// The writer does not checkpoint the WAL after its commits (wal_autocheckpoint 0): a
	// checkpointer of its own does, beside it (checkpointer.go).
	w, err := sql.Open("sqlite", path+"?"+pragmas+"&_pragma=journal_mode(WAL)&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(0)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	e := &sqliteEngine{path: path, w: w}
	s := &DB{name: path, e: e, d: sqliteDialect}
	if exists && size <= quickCheckMaxBytes {
		if err := quickCheck(ctx, w, path); err != nil {
			w.Close()
			return nil, err
		}
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: migrate: %w", path, err)
	}
	if e.r, err = sql.Open("sqlite", path+"?"+pragmas+"&_pragma=query_only(1)"); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s for reading: %w", path, err)
	}
	e.r.SetMaxOpenConns(4)
	e.r.SetMaxIdleConns(4)
	if err := e.r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite store %s for reading: %w", path, err)
	}
	if e.ck, err = startCheckpointer(ctx, path, pragmas); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return s, nil
}

// OpenPostgres connects to the database at url (a pgx connection string; a search_path
// runtime parameter in it is honoured) and creates or migrates the schema.
func OpenPostgres(ctx context.Context, url string) (*DB, error) {
	return OpenPostgresSchema(ctx, url, "")
}

// OpenPostgresSchema is OpenPostgres with every table in the named schema, which is created
// if needed. An empty schema uses the connection's search_path.
func OpenPostgresSchema(ctx context.Context, url, schema string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: parse url: %w", err)
	}
	if schema == "" {
		// A single schema named in the URL's search_path is created if missing.
		if sp := cfg.ConnConfig.RuntimeParams["search_path"]; sp != "" && !strings.ContainsAny(sp, ", \"") {
			schema = sp
		}
	}
	if schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s := &DB{name: "postgres", e: &pgEngine{pool: pool, schema: schema}, d: postgresDialect}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: migrate: %w", err)
	}
	return s, nil
}

// Close closes the database.
func (s *DB) Close() error {
	return wrapf(s.e.close(), "close store %s", s.name)
}

// SetPostings turns the ERP outbox on or off. With postings off (a hub without an ERP,
// erp.kind none) ApplyBatch and ApplyReplay store records and enqueue nothing, so no posting
// waits forever for an ERP that does not exist. Call it before the store is used; on by default.
func (s *DB) SetPostings(enabled bool) { s.noPostings.Store(!enabled) }

// write runs fn in a write transaction and commits it when fn returns nil.
func (s *DB) write(ctx context.Context, fn func(t tx) error) error {
	t, err := s.e.begin(ctx, true)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer t.rollback(ctx)
	m := &availMark{tx: t}
	if err := fn(m); err != nil {
		return err
	}
	if len(m.skus) > 0 {
		if err := s.bumpAvail(ctx, t, m.skus); err != nil {
			return err
		}
	}
	if err := t.commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if len(m.skus) > 0 && s.availHook != nil {
		s.availHook()
	}
	return nil
}

// exec runs one statement in its own write transaction; it returns the rows it touched.
func (s *DB) exec(ctx context.Context, q string, args ...any) (n int64, err error) {
	err = s.write(ctx, func(t tx) error {
		n, err = t.exec(ctx, q, args...)
		return err
	})
	return n, err
}

// insertNew is exec of an INSERT … ON CONFLICT DO NOTHING that must insert: ErrExists if not.
func (s *DB) insertNew(ctx context.Context, q string, args ...any) error {
	n, err := s.exec(ctx, q, args...)
	if err == nil && n == 0 {
		err = ErrExists
	}
	return err
}

// readRow scans one row of a read-only query into dest; ErrNotFound when there is none.
func (s *DB) readRow(ctx context.Context, q string, args []any, dest ...any) error {
	err := s.read(ctx, func(t tx) error { return t.queryRow(ctx, q, args...).Scan(dest...) })
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// read runs fn in a read-only snapshot.
func (s *DB) read(ctx context.Context, fn func(t tx) error) error {
	t, err := s.e.begin(ctx, false)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer t.rollback(ctx)
	return fn(t)
}

// ts and now are a time, and the current time, as statement arguments.
func (s *DB) ts(t time.Time) any { return s.d.ts(t) }
func (s *DB) now() any           { return s.d.ts(clock.Now()) }

// mustStore returns ErrNotFound (wrapped) unless the store exists.
func mustStore(ctx context.Context, t tx, id string) error {
	var n int
	if err := t.queryRow(ctx, `SELECT COUNT(*) FROM stores WHERE id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("look up store: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("store %s: %w", id, ErrNotFound)
	}
	return nil
}

// CheckDurable reports whether the PostgreSQL server would lose committed transactions in a
// crash: an error naming each setting that is off (fsync, synchronous_commit as this hub's
// connections see it). SQLite has nothing to check (the store never turns off its syncs).
func (s *DB) CheckDurable(ctx context.Context) error {
	if s.name != "postgres" {
		return nil
	}
	var bad []string
	for _, name := range []string{"fsync", "synchronous_commit"} {
		var v string
		if err := s.readRow(ctx, "SELECT current_setting('"+name+"')", nil, &v); err != nil {
			return fmt.Errorf("read postgres setting %s: %w", name, err)
		}
		if v == "off" {
			bad = append(bad, name+" = off")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("postgres is not durable (%s): an acknowledged record could vanish in a server crash; turn it on in postgresql.conf (or the role/URL options), or set store.allow_nondurable: true to run anyway", strings.Join(bad, ", "))
	}
	return nil
}
