package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/lanebridge/lanebridge/protocol"
)

// SQLite is the embedded Store: one database file in WAL mode with synchronous=FULL, so a
// returned ApplyBatch is on disk. It is safe for concurrent use, and several processes (the
// hub and the `stores add` CLI) may open the same file: every write transaction starts with
// BEGIN IMMEDIATE and waits up to the busy timeout for another process's writer.
//
// Within one process all writes go through a single connection (database/sql queues callers),
// reads through a small pool of their own; WAL lets them run alongside the writer.
type SQLite struct {
	path string
	w    *sql.DB // one connection, BEGIN IMMEDIATE
	r    *sql.DB // readers

	noPostings atomic.Bool // SetPostings(false): nothing is enqueued
}

var _ Store = (*SQLite)(nil)

// sqliteBusyTimeout is how long a write waits for another process's write transaction.
const sqliteBusyTimeout = 10 * time.Second

var sqliteMigrations = []string{
	// 1: initial schema. Times are UTC microseconds since the Unix epoch.
	`CREATE TABLE stores (
		id            TEXT PRIMARY KEY,
		password_hash TEXT NOT NULL,
		created_at    INTEGER NOT NULL
	);
	CREATE TABLE streams (
		id              INTEGER PRIMARY KEY,
		store           TEXT NOT NULL REFERENCES stores(id),
		epoch           TEXT NOT NULL,
		applied_through INTEGER NOT NULL DEFAULT 0,
		created_at      INTEGER NOT NULL,
		updated_at      INTEGER NOT NULL,
		UNIQUE (store, epoch)
	);
	CREATE TABLE records (
		store         TEXT NOT NULL,
		epoch         TEXT NOT NULL,
		seq           INTEGER NOT NULL,
		kind          TEXT NOT NULL,
		terminal      TEXT NOT NULL,
		receipt       TEXT NOT NULL,
		business_date TEXT NOT NULL,
		total         INTEGER NOT NULL,
		hash          TEXT NOT NULL,
		body          TEXT NOT NULL,
		applied_at    INTEGER NOT NULL,
		PRIMARY KEY (store, epoch, seq)
	) WITHOUT ROWID;
	CREATE INDEX records_day ON records (store, business_date);
	CREATE TABLE status (
		store TEXT PRIMARY KEY REFERENCES stores(id),
		body  TEXT NOT NULL,
		at    INTEGER NOT NULL
	);
	CREATE TABLE exceptions (
		id         INTEGER PRIMARY KEY,
		store      TEXT NOT NULL,
		reason     TEXT NOT NULL,
		key        TEXT NOT NULL,
		detail     TEXT NOT NULL,
		state      TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		UNIQUE (store, reason, key)
	);
	CREATE INDEX exceptions_state ON exceptions (state, id);`,
	// 2: ERP outbox, agent commands, daily closes, exception lifecycle.
	`CREATE TABLE postings (
		id            INTEGER PRIMARY KEY,
		key           TEXT NOT NULL UNIQUE,
		store         TEXT NOT NULL,
		terminal      TEXT NOT NULL,
		business_date TEXT NOT NULL,
		receipt       TEXT NOT NULL,
		kind          TEXT NOT NULL,
		epoch         TEXT NOT NULL,
		seq           INTEGER NOT NULL,
		content_hash  TEXT NOT NULL,
		total         INTEGER NOT NULL,
		state         TEXT NOT NULL,
		attempts      INTEGER NOT NULL DEFAULT 0,
		next_at       INTEGER NOT NULL,
		lease_owner   TEXT NOT NULL DEFAULT '',
		lease_until   INTEGER NOT NULL DEFAULT 0,
		ref           TEXT NOT NULL DEFAULT '',
		last_error    TEXT NOT NULL DEFAULT '',
		created_at    INTEGER NOT NULL,
		updated_at    INTEGER NOT NULL,
		posted_at     INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX postings_due ON postings (state, next_at);
	CREATE INDEX postings_day ON postings (store, business_date);
	CREATE TABLE commands (
		id         TEXT PRIMARY KEY,
		store      TEXT NOT NULL,
		body       TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		result     TEXT NOT NULL DEFAULT '',
		result_at  INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE closes (
		store         TEXT NOT NULL,
		business_date TEXT NOT NULL,
		state         TEXT NOT NULL,
		body          TEXT NOT NULL,
		closed_at     INTEGER NOT NULL,
		PRIMARY KEY (store, business_date)
	);
	ALTER TABLE exceptions ADD COLUMN updated_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE exceptions ADD COLUMN comment TEXT NOT NULL DEFAULT '';`,
	// 3: inventory push: the ERP's stock as pulled, per-store published items and versions.
	`CREATE TABLE erp_items (
		sku         TEXT PRIMARY KEY,
		description TEXT NOT NULL,
		price       INTEGER NOT NULL,
		tax_code    TEXT NOT NULL,
		status      TEXT NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE erp_onhand (
		store   TEXT NOT NULL,
		sku     TEXT NOT NULL,
		on_hand TEXT NOT NULL,
		pulled_at INTEGER NOT NULL,
		PRIMARY KEY (store, sku)
	) WITHOUT ROWID;
	CREATE TABLE inventory_versions (
		store           TEXT PRIMARY KEY REFERENCES stores(id),
		version         INTEGER NOT NULL,
		epoch           TEXT NOT NULL,
		applied_through INTEGER NOT NULL,
		items           INTEGER NOT NULL,
		updated_at      INTEGER NOT NULL
	);
	CREATE TABLE inventory_items (
		store       TEXT NOT NULL,
		sku         TEXT NOT NULL,
		description TEXT NOT NULL,
		price       INTEGER NOT NULL,
		tax_code    TEXT NOT NULL,
		status      TEXT NOT NULL,
		on_hand     TEXT NOT NULL,
		available   TEXT NOT NULL,
		version     INTEGER NOT NULL,
		PRIMARY KEY (store, sku)
	) WITHOUT ROWID;
	CREATE INDEX postings_open ON postings (store, state);`,
}

// OpenSQLite opens (creating if needed) the database file at path and migrates its schema.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite store %q: need a plain file path", path)
	}
	pragmas := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)", sqliteBusyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", path+"?"+pragmas+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &SQLite{path: path, w: w}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s.r = r
	if err := r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite store %s for reading: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) migrate(ctx context.Context) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("open sqlite store %s: read journal mode: %w", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("open sqlite store %s: journal mode is %q, want wal", s.path, mode)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate sqlite store %s: %w", s.path, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate sqlite store %s: %w", s.path, err)
	}
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("migrate sqlite store %s: read version: %w", s.path, err)
	}
	if v > len(sqliteMigrations) {
		return fmt.Errorf("migrate sqlite store %s: schema version %d is newer than this program's %d", s.path, v, len(sqliteMigrations))
	}
	for i := v; i < len(sqliteMigrations); i++ {
		if _, err := tx.ExecContext(ctx, sqliteMigrations[i]); err != nil {
			return fmt.Errorf("migrate sqlite store %s to version %d: %w", s.path, i+1, err)
		}
	}
	if v < len(sqliteMigrations) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
			return fmt.Errorf("migrate sqlite store %s: %w", s.path, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, len(sqliteMigrations)); err != nil {
			return fmt.Errorf("migrate sqlite store %s: %w", s.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate sqlite store %s: commit: %w", s.path, err)
	}
	return nil
}

// Close closes both connection pools.
func (s *SQLite) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite store %s: %w", s.path, err)
	}
	return nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

type sqlQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func sqliteStoreExists(ctx context.Context, q sqlQuerier, id string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM stores WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ApplyBatch implements Store.
func (s *SQLite) ApplyBatch(ctx context.Context, store, epoch string, recs []protocol.Record) (ApplyResult, error) {
	var res ApplyResult
	if err := checkBatch(store, epoch, recs); err != nil {
		return res, fmt.Errorf("apply batch %s/%s: %w", store, epoch, err)
	}
	bodies, err := marshalBodies(recs)
	if err != nil {
		return res, fmt.Errorf("apply batch %s/%s: %w", store, epoch, err)
	}
	res, err = s.applyBatch(ctx, store, epoch, recs, bodies)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply batch %s/%s: %w", store, epoch, err)
	}
	return res, nil
}

func (s *SQLite) applyBatch(ctx context.Context, store, epoch string, recs []protocol.Record, bodies [][]byte) (ApplyResult, error) {
	var res ApplyResult
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	ok, err := sqliteStoreExists(ctx, tx, store)
	if err != nil {
		return res, fmt.Errorf("look up store: %w", err)
	}
	if !ok {
		return res, fmt.Errorf("store %s: %w", store, ErrNotFound)
	}
	now := micros(time.Now())
	if len(recs) > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO streams (store, epoch, applied_through, created_at, updated_at)
			VALUES (?, ?, 0, ?, ?) ON CONFLICT (store, epoch) DO NOTHING`, store, epoch, now, now); err != nil {
			return res, fmt.Errorf("create stream: %w", err)
		}
	}
	var p uint64
	err = tx.QueryRowContext(ctx, `SELECT applied_through FROM streams WHERE store = ? AND epoch = ?`, store, epoch).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return res, nil // empty batch of an unknown stream
	}
	if err != nil {
		return res, fmt.Errorf("read progress: %w", err)
	}
	res.AppliedThrough = p
	if len(recs) == 0 {
		return res, nil
	}

	stored := map[uint64]string{}
	if first := recs[0].Seq; first <= p {
		last := min(recs[len(recs)-1].Seq, p)
		rows, err := tx.QueryContext(ctx, `SELECT seq, hash FROM records WHERE store = ? AND epoch = ? AND seq BETWEEN ? AND ?`,
			store, epoch, first, last)
		if err != nil {
			return res, fmt.Errorf("read stored hashes: %w", err)
		}
		for rows.Next() {
			var seq uint64
			var h string
			if err := rows.Scan(&seq, &h); err != nil {
				rows.Close()
				return res, fmt.Errorf("read stored hashes: %w", err)
			}
			stored[seq] = h
		}
		if err := rows.Close(); err != nil {
			return res, fmt.Errorf("read stored hashes: %w", err)
		}
		if err := rows.Err(); err != nil {
			return res, fmt.Errorf("read stored hashes: %w", err)
		}
	}
	pl, err := planApply(epoch, recs, p, stored)
	if err != nil {
		return res, err
	}
	res.Duplicates = pl.duplicates
	res.Conflicts = len(pl.conflicts)
	res.ResendFrom = pl.resendFrom
	for _, c := range pl.conflicts {
		e := conflictException(store, epoch, c)
		if _, err := tx.ExecContext(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store, reason, key) DO NOTHING`,
			e.Store, e.Reason, e.Key, e.Detail, e.State, now, now); err != nil {
			return res, fmt.Errorf("raise hash conflict for seq %d: %w", c.seq, err)
		}
	}
	if pl.insertFrom < len(recs) {
		if err := sqliteInsertRecords(ctx, tx, store, epoch, recs[pl.insertFrom:], bodies[pl.insertFrom:], now); err != nil {
			return res, err
		}
		if err := s.enqueue(ctx, tx, recs[pl.insertFrom:], now); err != nil {
			return res, err
		}
		res.Applied = len(recs) - pl.insertFrom
		res.AppliedThrough = recs[len(recs)-1].Seq
		if _, err := tx.ExecContext(ctx, `UPDATE streams SET applied_through = ?, updated_at = ? WHERE store = ? AND epoch = ?`,
			res.AppliedThrough, now, store, epoch); err != nil {
			return res, fmt.Errorf("update progress: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return ApplyResult{}, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// sqliteInsertChunk is how many records one INSERT statement carries (11 parameters each, far
// below SQLite's limit of 32766); a batch is inserted with one prepared statement per size.
const sqliteInsertChunk = 50

const sqliteInsertHead = `INSERT INTO records
	(store, epoch, seq, kind, terminal, receipt, business_date, total, hash, body, applied_at) VALUES `

func sqliteInsertSQL(rows int) string {
	var b strings.Builder
	b.WriteString(sqliteInsertHead)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

// sqliteInsertRecords inserts a run of records with multi-row INSERTs prepared in tx.
func sqliteInsertRecords(ctx context.Context, tx *sql.Tx, store, epoch string, run []protocol.Record, bodies [][]byte, now int64) error {
	stmts := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	args := make([]any, 0, 11*sqliteInsertChunk)
	for off := 0; off < len(run); off += sqliteInsertChunk {
		chunk := run[off:min(off+sqliteInsertChunk, len(run))]
		st := stmts[len(chunk)]
		if st == nil {
			var err error
			if st, err = tx.PrepareContext(ctx, sqliteInsertSQL(len(chunk))); err != nil {
				return fmt.Errorf("prepare insert: %w", err)
			}
			stmts[len(chunk)] = st
		}
		args = args[:0]
		for i := range chunk {
			r := &chunk[i]
			args = append(args, store, epoch, r.Seq, string(r.Kind), r.Terminal, r.Receipt,
				r.BusinessDate, r.Total, r.Hash, bodies[off+i], now)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert seq %d..%d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, err)
		}
	}
	return nil
}

// AddStore implements Store.
func (s *SQLite) AddStore(ctx context.Context, id, passwordHash string) error {
	if err := protocol.ValidateStoreID(id); err != nil {
		return fmt.Errorf("add store: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO stores (id, password_hash, created_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, id, passwordHash, micros(time.Now()))
	if err != nil {
		return fmt.Errorf("add store %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("add store %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("add store %s: %w", id, ErrExists)
	}
	return nil
}

// Credentials implements Store.
func (s *SQLite) Credentials(ctx context.Context, id string) (string, error) {
	var h string
	err := s.r.QueryRowContext(ctx, `SELECT password_hash FROM stores WHERE id = ?`, id).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("credentials of store %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("credentials of store %s: %w", id, err)
	}
	return h, nil
}

// ListStores implements Store.
func (s *SQLite) ListStores(ctx context.Context) ([]StoreInfo, error) {
	infos, err := s.loadStores(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list stores: %w", err)
	}
	return infos, nil
}

// GetStore implements Store.
func (s *SQLite) GetStore(ctx context.Context, id string) (StoreInfo, error) {
	infos, err := s.loadStores(ctx, id)
	if err != nil {
		return StoreInfo{}, fmt.Errorf("get store %s: %w", id, err)
	}
	if len(infos) == 0 {
		return StoreInfo{}, fmt.Errorf("get store %s: %w", id, ErrNotFound)
	}
	return infos[0], nil
}

// loadStores reads one store (id != "") or all, in one read transaction.
func (s *SQLite) loadStores(ctx context.Context, id string) ([]StoreInfo, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	filter, args := "", []any{}
	if id != "" {
		filter, args = " WHERE store = ?", []any{id}
	}
	storeFilter := ""
	if id != "" {
		storeFilter = " WHERE id = ?"
	}

	var infos []StoreInfo
	idx := map[string]int{}
	rows, err := tx.QueryContext(ctx, `SELECT id, created_at FROM stores`+storeFilter+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var si StoreInfo
		var at int64
		if err := rows.Scan(&si.ID, &at); err != nil {
			rows.Close()
			return nil, err
		}
		si.CreatedAt = fromMicros(at)
		si.Streams = []Stream{}
		idx[si.ID] = len(infos)
		infos = append(infos, si)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}

	rows, err = tx.QueryContext(ctx, `SELECT store, epoch, applied_through, updated_at FROM streams`+filter+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var store string
		var st Stream
		var at int64
		if err := rows.Scan(&store, &st.Epoch, &st.AppliedThrough, &at); err != nil {
			rows.Close()
			return nil, err
		}
		st.UpdatedAt = fromMicros(at)
		if i, ok := idx[store]; ok {
			infos[i].Streams = append(infos[i].Streams, st)
			// Progress is contiguous from seq 1, so it counts the stream's records.
			infos[i].Records += int64(st.AppliedThrough)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}

	rows, err = tx.QueryContext(ctx, `SELECT store, body, at FROM status`+filter, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var store string
		var body []byte
		var at int64
		if err := rows.Scan(&store, &body, &at); err != nil {
			rows.Close()
			return nil, err
		}
		st, err := decodeStatus(body)
		if err != nil {
			rows.Close()
			return nil, err
		}
		if i, ok := idx[store]; ok {
			infos[i].Status, infos[i].StatusAt = st, fromMicros(at)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	return infos, nil
}

func closeRows(rows *sql.Rows) error {
	if err := rows.Close(); err != nil {
		return err
	}
	return rows.Err()
}

// PutStatus implements Store. An older status (by at) than the one kept is ignored.
func (s *SQLite) PutStatus(ctx context.Context, st protocol.Status, at time.Time) error {
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("put status of %s: %w", st.Store, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put status of %s: %w", st.Store, err)
	}
	defer tx.Rollback()
	ok, err := sqliteStoreExists(ctx, tx, st.Store)
	if err != nil {
		return fmt.Errorf("put status of %s: %w", st.Store, err)
	}
	if !ok {
		return fmt.Errorf("put status of %s: %w", st.Store, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO status (store, body, at) VALUES (?, ?, ?)
		ON CONFLICT (store) DO UPDATE SET body = excluded.body, at = excluded.at WHERE excluded.at >= status.at`,
		st.Store, body, micros(normTime(at))); err != nil {
		return fmt.Errorf("put status of %s: %w", st.Store, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put status of %s: commit: %w", st.Store, err)
	}
	return nil
}

// Records implements Store. A limit <= 0 means 1000.
func (s *SQLite) Records(ctx context.Context, store, epoch string, afterSeq uint64, limit int) ([]protocol.Record, error) {
	if limit <= 0 {
		limit = defaultRecordsLimit
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("records of %s: %w", store, err)
	}
	defer tx.Rollback()
	ok, err := sqliteStoreExists(ctx, tx, store)
	if err != nil {
		return nil, fmt.Errorf("records of %s: %w", store, err)
	}
	if !ok {
		return nil, fmt.Errorf("records of %s: %w", store, ErrNotFound)
	}
	if epoch == "" {
		err := tx.QueryRowContext(ctx, `SELECT epoch FROM streams WHERE store = ? ORDER BY id DESC LIMIT 1`, store).Scan(&epoch)
		if errors.Is(err, sql.ErrNoRows) {
			return []protocol.Record{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("records of %s: latest epoch: %w", store, err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT body FROM records WHERE store = ? AND epoch = ? AND seq > ? ORDER BY seq LIMIT ?`,
		store, epoch, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("records of %s/%s: %w", store, epoch, err)
	}
	out := []protocol.Record{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			rows.Close()
			return nil, fmt.Errorf("records of %s/%s: %w", store, epoch, err)
		}
		r, err := decodeRecord(body)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("records of %s/%s: %w", store, epoch, err)
		}
		out = append(out, r)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("records of %s/%s: %w", store, epoch, err)
	}
	return out, nil
}

// Day implements Store.
func (s *SQLite) Day(ctx context.Context, store, businessDate string) (Day, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, err)
	}
	defer tx.Rollback()
	ok, err := sqliteStoreExists(ctx, tx, store)
	if err != nil {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, err)
	}
	if !ok {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, ErrNotFound)
	}
	rows, err := tx.QueryContext(ctx, `SELECT r.terminal, r.kind, r.receipt, r.total
		FROM records r JOIN streams s ON s.store = r.store AND s.epoch = r.epoch
		WHERE r.store = ? AND r.business_date = ? ORDER BY s.id, r.seq`, store, businessDate)
	if err != nil {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, err)
	}
	var drs []dayRow
	for rows.Next() {
		var dr dayRow
		if err := rows.Scan(&dr.terminal, &dr.kind, &dr.receipt, &dr.total); err != nil {
			rows.Close()
			return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, err)
		}
		drs = append(drs, dr)
	}
	if err := closeRows(rows); err != nil {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, err)
	}
	return buildDay(store, businessDate, drs), nil
}

// RaiseException implements Store.
func (s *SQLite) RaiseException(ctx context.Context, e Exception) (bool, error) {
	if err := normException(&e, time.Now()); err != nil {
		return false, err
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store, reason, key) DO NOTHING`,
		e.Store, e.Reason, e.Key, e.Detail, e.State, micros(e.CreatedAt), micros(e.UpdatedAt))
	if err != nil {
		return false, fmt.Errorf("raise exception %s/%s/%s: %w", e.Store, e.Reason, e.Key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("raise exception %s/%s/%s: %w", e.Store, e.Reason, e.Key, err)
	}
	return n > 0, nil
}

// Exceptions implements Store: newest first. A limit <= 0 means 1000.
func (s *SQLite) Exceptions(ctx context.Context, f ExceptionFilter) ([]Exception, error) {
	q := `SELECT id, store, reason, key, detail, state, created_at, updated_at, updated_by, comment FROM exceptions`
	var conds []string
	var args []any
	for _, c := range []struct{ col, val string }{{"store", f.Store}, {"reason", f.Reason}, {"state", f.State}} {
		if c.val != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultExceptionsLimit
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	out := []Exception{}
	for rows.Next() {
		var e Exception
		var c, u int64
		if err := rows.Scan(&e.ID, &e.Store, &e.Reason, &e.Key, &e.Detail, &e.State, &c, &u, &e.UpdatedBy, &e.Comment); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list exceptions: %w", err)
		}
		e.CreatedAt, e.UpdatedAt = fromMicros(c), fromMicros(u)
		out = append(out, e)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	return out, nil
}

// SetExceptionState moves an exception to open, acknowledged or resolved (ErrNotFound for an
// unknown id).
func (s *SQLite) SetExceptionState(ctx context.Context, id int64, state string) error {
	if !validState(state) {
		return fmt.Errorf("set exception %d state: unknown state %q", id, state)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE exceptions SET state = ?, updated_at = ? WHERE id = ?`, state, micros(time.Now()), id)
	if err != nil {
		return fmt.Errorf("set exception %d state: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("set exception %d state: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("set exception %d state: %w", id, ErrNotFound)
	}
	return nil
}
