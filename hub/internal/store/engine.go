package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// engine opens transactions on one database: the seam doc.go describes.
type engine interface {
	// begin starts a write transaction (SQLite: BEGIN IMMEDIATE on the single writer;
	// PostgreSQL: read committed) or a read-only snapshot (SQLite: a WAL reader; PostgreSQL:
	// repeatable read, read only).
	begin(ctx context.Context, write bool) (tx, error)
	// prepareMigration runs first in the migration transaction: PostgreSQL takes an advisory
	// lock (replicas starting together migrate one at a time) and creates the schema.
	prepareMigration(ctx context.Context, t tx) error
	close() error
}

// tx is one transaction: seven methods, one per kind of statement the store runs (it is the
// engine seam, not a consumer's view). Statements use ? placeholders, renumbered on PostgreSQL.
type tx interface {
	exec(ctx context.Context, q string, args ...any) (rowsAffected int64, err error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	// queryRow's Scan returns sql.ErrNoRows when nothing matched, on both engines.
	queryRow(ctx context.Context, q string, args ...any) row
	// insert adds many rows: COPY on PostgreSQL, prepared multi-row INSERTs on SQLite.
	insert(ctx context.Context, table string, cols []string, rows [][]any) error
	// insertNew adds the rows that do not conflict on column conflict and returns the first
	// column (a string) of those it added: one INSERT … SELECT FROM unnest on PostgreSQL,
	// multi-row INSERTs on SQLite.
	insertNew(ctx context.Context, table string, cols []string, rows [][]any, conflict string) ([]string, error)
	commit(ctx context.Context) error
	rollback(ctx context.Context)
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type row interface{ Scan(dest ...any) error }

// dialect is the SQL text that differs.
type dialect struct {
	// forUpdate locks the rows a write transaction read (a stream's progress, a posting, an
	// inventory version) until it ends. Empty on SQLite: its writer is already alone.
	forUpdate string
	// skipLocked is forUpdate for claims: rows another replica holds are passed over.
	skipLocked string
	// recordsByDay names the records table for a query of one store-day. Without statistics
	// SQLite's planner prefers the primary key's (store) prefix to records_day (store,
	// business_date) and reads the store's whole history; PostgreSQL plans from statistics.
	recordsByDay string
	// ddl expands the macros of the migration files: {{id}} (auto-numbered primary key),
	// {{time}} (a timestamp column), {{epoch}} (the zero timestamp as a default), {{json}} and
	// {{rowid}} (SQLite's WITHOUT ROWID for tables keyed by their primary key).
	ddl *strings.Replacer
	// ts encodes a time as a statement argument: UTC microseconds on SQLite, timestamptz on
	// PostgreSQL. Columns read back through scanTime.
	ts func(time.Time) any
}

var sqliteDialect = dialect{
	recordsByDay: "records r INDEXED BY records_day",
	ddl: strings.NewReplacer("{{id}}", "INTEGER PRIMARY KEY", "{{time}}", "INTEGER", "{{epoch}}", "0",
		"{{json}}", "TEXT", "{{rowid}}", "WITHOUT ROWID"),
	ts: func(t time.Time) any { return t.UnixMicro() },
}

var postgresDialect = dialect{
	forUpdate:    " FOR UPDATE",
	skipLocked:   " FOR UPDATE SKIP LOCKED",
	recordsByDay: "records r",
	ddl: strings.NewReplacer("{{id}}", "bigserial PRIMARY KEY", "{{time}}", "timestamptz", "{{epoch}}", "'epoch'",
		"{{json}}", "jsonb", "{{rowid}}", ""),
	ts: func(t time.Time) any { return normTime(t) },
}

// scanTime reads a time column of either engine into *t. NULL, 0 and the Unix epoch read as
// the zero time: the columns use them for "not yet".
type scanTime struct{ t *time.Time }

func (s scanTime) Scan(v any) error {
	*s.t = time.Time{}
	switch x := v.(type) {
	case nil:
	case int64:
		if x != 0 {
			*s.t = time.UnixMicro(x).UTC()
		}
	case time.Time:
		if !x.Equal(time.Unix(0, 0)) {
			*s.t = x.UTC()
		}
	default:
		return fmt.Errorf("scan time: unexpected %T", v)
	}
	return nil
}

// --- SQLite (modernc.org/sqlite through database/sql) ---

type sqliteEngine struct {
	path  string
	w     *sql.DB // one connection: every write transaction, BEGIN IMMEDIATE
	r     *sql.DB // readers; WAL lets them run beside the writer
	ck    *checkpointer
	cache stmtCache
}

func (e *sqliteEngine) begin(ctx context.Context, write bool) (tx, error) {
	db, o := e.r, &sql.TxOptions{ReadOnly: true}
	var c *stmtCache
	var ck *checkpointer
	if write {
		db, o, c, ck = e.w, nil, &e.cache, e.ck
	}
	t, err := db.BeginTx(ctx, o)
	return &sqliteTx{Tx: t, stmts: map[string]*sql.Stmt{}, cache: c, db: db, ck: ck}, err
}

// stmtCache keeps the statements the writer runs again and again prepared on its connection
// across transactions (SQLite parses a 50-row INSERT in about the time it takes to run it).
// A statement is prepared on the DB when a second transaction runs it, after that transaction
// ended: preparing on the DB needs the writer's one connection, which a transaction holds. It
// holds at most stmtCacheSize statements and is safe for concurrent use.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	seen  map[string]bool // run by one transaction; forgotten when it grows past stmtSeenSize
}

const (
	stmtCacheSize = 512
	stmtSeenSize  = 4096
)

func (c *stmtCache) get(q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[q]
}

// ran notes that a transaction ran q unprepared; it returns true when q should now be
// prepared for the next ones.
func (c *stmtCache) ran(q string) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.stmts) >= stmtCacheSize {
		return false
	}
	if c.seen == nil || len(c.seen) >= stmtSeenSize {
		c.seen = map[string]bool{}
	}
	if c.seen[q] {
		delete(c.seen, q)
		return true
	}
	c.seen[q] = true
	return false
}

// prepare prepares qs on db (outside any transaction of it) and keeps them. A statement that
// does not prepare is left out: the next transaction runs it unprepared and meets the error.
func (c *stmtCache) prepare(ctx context.Context, db *sql.DB, qs []string) {
	for _, q := range qs {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.stmts == nil {
			c.stmts = map[string]*sql.Stmt{}
		}
		if c.stmts[q] == nil && len(c.stmts) < stmtCacheSize {
			c.stmts[q], st = st, nil
		}
		c.mu.Unlock()
		if st != nil {
			_ = st.Close()
		}
	}
}

func (e *sqliteEngine) prepareMigration(ctx context.Context, t tx) error {
	var mode string
	err := t.queryRow(ctx, "PRAGMA journal_mode").Scan(&mode)
	if err == nil && !strings.EqualFold(mode, "wal") {
		err = fmt.Errorf("%q, want wal", mode)
	}
	return wrapf(err, "journal mode")
}

func (e *sqliteEngine) close() error {
	var errs []error
	if e.ck != nil {
		errs = append(errs, e.ck.close())
	}
	if e.r != nil {
		errs = append(errs, e.r.Close())
	}
	return errors.Join(append(errs, e.w.Close())...)
}

type sqliteTx struct {
	*sql.Tx
	stmts map[string]*sql.Stmt // statements of this transaction, closed with it
	cache *stmtCache           // the writer's statements (nil in a read transaction)
	db    *sql.DB
	ck    *checkpointer // the writer's (nil in a read transaction)
	later []string      // statements to prepare into cache when the transaction ends
}

// stmt is q prepared for this transaction: from the writer's cache when it holds q, else
// prepared here (and, the second time a transaction needs it, into the cache afterwards).
func (t *sqliteTx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st := t.stmts[q]; st != nil {
		return st, nil
	}
	var st *sql.Stmt
	if p := t.cache.get(q); p != nil {
		st = t.StmtContext(ctx, p) // reuses p's statement on the writer's one connection
	} else {
		var err error
		if st, err = t.PrepareContext(ctx, q); err != nil {
			return nil, err
		}
		if t.cache.ran(q) {
			t.later = append(t.later, q)
		}
	}
	t.stmts[q] = st
	return st, nil
}

func (t *sqliteTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if t.cache == nil {
		res, err = t.ExecContext(ctx, q, args...)
	} else {
		var st *sql.Stmt
		if st, err = t.stmt(ctx, q); err == nil {
			res, err = st.ExecContext(ctx, args...)
		}
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *sqliteTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	var r *sql.Rows
	var err error
	if t.cache == nil {
		r, err = t.QueryContext(ctx, q, args...)
	} else {
		var st *sql.Stmt
		if st, err = t.stmt(ctx, q); err == nil {
			r, err = st.QueryContext(ctx, args...)
		}
	}
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (t *sqliteTx) queryRow(ctx context.Context, q string, args ...any) row {
	if t.cache == nil {
		return t.QueryRowContext(ctx, q, args...)
	}
	st, err := t.stmt(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// sqliteInsertChunk is how many rows one INSERT carries at most (at most 14 columns here, far
// below SQLite's 32766 parameters); see chunkAt.
const sqliteInsertChunk = 128

func (t *sqliteTx) insert(ctx context.Context, table string, cols []string, rs [][]any) error {
	_, err := t.insertChunks(ctx, table, cols, rs, "")
	return err
}

func (t *sqliteTx) insertNew(ctx context.Context, table string, cols []string, rs [][]any, conflict string) ([]string, error) {
	return t.insertChunks(ctx, table, cols, rs, " ON CONFLICT ("+conflict+") DO NOTHING RETURNING "+cols[0])
}

// insertChunks runs multi-row INSERTs (with tail appended) and returns what they return.
func (t *sqliteTx) insertChunks(ctx context.Context, table string, cols []string, rs [][]any, tail string) ([]string, error) {
	var out []string
	args := make([]any, 0, len(cols)*sqliteInsertChunk)
	for off, n := 0, 0; off < len(rs); off += n {
		n = chunkAt(off, len(rs), sqliteInsertChunk)
		chunk := rs[off : off+n]
		q := insertSQL(table, cols, len(chunk)) + tail
		st, err := t.stmt(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("insert into %s: prepare: %w", table, err)
		}
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r...)
		}
		r, err := st.QueryContext(ctx, args...)
		var got []string
		if r != nil {
			got, err = scanAll(sqlRows{r}, err, scanString)
		}
		if err != nil {
			return nil, fmt.Errorf("insert into %s: %w", table, err)
		}
		out = append(out, got...)
	}
	return out, nil
}

func (t *sqliteTx) commit(ctx context.Context) error {
	err := t.Commit()
	if err == nil && t.ck != nil {
		t.ck.committed(ctx, t.db)
	}
	t.prepareLater(ctx)
	return err
}

func (t *sqliteTx) rollback(ctx context.Context) {
	if t.Rollback() == nil {
		t.prepareLater(ctx)
	}
}

// prepareLater prepares into the cache what this transaction ran twice-seen, now that the
// writer's connection is free.
func (t *sqliteTx) prepareLater(ctx context.Context) {
	if len(t.later) > 0 {
		qs := t.later
		t.later = nil
		t.cache.prepare(context.WithoutCancel(ctx), t.db, qs)
	}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// --- PostgreSQL (pgx, native) ---

// pgMigrateLock is the advisory lock key held while the schema is created or migrated
// ("lanebrid" in ASCII).
const pgMigrateLock int64 = 0x6c616e6562726964

type pgEngine struct {
	pool   *pgxpool.Pool
	schema string
}

func (e *pgEngine) begin(ctx context.Context, write bool) (tx, error) {
	o := pgx.TxOptions{}
	if !write {
		o = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	}
	t, err := e.pool.BeginTx(ctx, o)
	if err != nil {
		return nil, err
	}
	return pgTx{t}, nil
}

func (e *pgEngine) prepareMigration(ctx context.Context, t tx) error {
	if _, err := t.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, pgMigrateLock); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if e.schema == "" {
		return nil
	}
	id := pgx.Identifier{e.schema}.Sanitize()
	if _, err := t.exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+id); err != nil {
		return fmt.Errorf("create schema %s: %w", e.schema, err)
	}
	_, err := t.exec(ctx, `SET LOCAL search_path TO `+id)
	return err
}

func (e *pgEngine) close() error { e.pool.Close(); return nil }

type pgTx struct{ t pgx.Tx }

func (t pgTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := t.t.Exec(ctx, rebind(q), args...)
	return tag.RowsAffected(), err
}

func (t pgTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	return t.t.Query(ctx, rebind(q), args...)
}

func (t pgTx) queryRow(ctx context.Context, q string, args ...any) row {
	return pgRow{t.t.QueryRow(ctx, rebind(q), args...)}
}

func (t pgTx) insert(ctx context.Context, table string, cols []string, rs [][]any) error {
	if len(rs) == 0 {
		return nil
	}
	_, err := t.t.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rs))
	return wrapf(err, "copy into %s", table)
}

func (t pgTx) insertNew(ctx context.Context, table string, cols []string, rs [][]any, conflict string) ([]string, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	arrays, casts := make([]any, len(cols)), make([]string, len(cols))
	for j := range cols {
		switch rs[0][j].(type) {
		case string:
			arrays[j], casts[j] = column[string](rs, j), "text[]"
		case int64:
			arrays[j], casts[j] = column[int64](rs, j), "bigint[]"
		case time.Time:
			arrays[j], casts[j] = column[time.Time](rs, j), "timestamptz[]"
		default:
			return nil, fmt.Errorf("insert into %s: column %s holds %T", table, cols[j], rs[0][j])
		}
		casts[j] = "$" + strconv.Itoa(j+1) + "::" + casts[j]
	}
	r, err := t.t.Query(ctx, "INSERT INTO "+table+" ("+strings.Join(cols, ", ")+") SELECT * FROM unnest("+strings.Join(casts, ", ")+
		") ON CONFLICT ("+conflict+") DO NOTHING RETURNING "+cols[0], arrays...)
	return scanAll(r, err, scanString)
}

// column is column j of rs, whose values are all Ts.
func column[T any](rs [][]any, j int) []T {
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i], _ = r[j].(T)
	}
	return out
}

func (t pgTx) commit(ctx context.Context) error { return t.t.Commit(ctx) }

func (t pgTx) rollback(ctx context.Context) { _ = t.t.Rollback(ctx) }

type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return err
}

// rebind numbers the ? placeholders of q as PostgreSQL's $1, $2, … (our statements have no ?
// inside string literals).
func rebind(q string) string {
	if strings.IndexByte(q, '?') < 0 {
		return q
	}
	var b strings.Builder
	n := 0
	for _, part := range strings.SplitAfter(q, "?") {
		if p, ok := strings.CutSuffix(part, "?"); ok {
			n++
			part = p + "$" + strconv.Itoa(n)
		}
		b.WriteString(part)
	}
	return b.String()
}

// --- shared statement text ---

// chunkAt is the number of rows the multi-row statement at row off of n carries: full chunks
// of most (a power of two), then the rest in falling powers of two, so that a handful of
// statement texts, each prepared once per connection, serve every n.
func chunkAt(off, n, most int) int {
	if rest := n - off; rest < most {
		return 1 << (bits.Len(uint(rest)) - 1)
	}
	return most
}

// insertSQL is a multi-row INSERT of n rows.
func insertSQL(table string, cols []string, n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ")
	one := "(" + placeholders(len(cols)) + ")"
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	return b.String()
}

// placeholders is "?,?,…" for n values.
func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

// scanAll reads every row into a T with scan and closes rows.
func scanAll[T any](rs rows, err error, scan func(r rows, v *T) error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := []T{}
	for rs.Next() {
		var v T
		if err := scan(rs, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

func scanString(r rows, s *string) error { return r.Scan(s) }

// each calls fn for every row and closes rows.
func each(rs rows, err error, fn func(rows) error) error {
	_, err = scanAll(rs, err, func(r rows, _ *struct{}) error { return fn(r) })
	return err
}
