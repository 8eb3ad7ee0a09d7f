package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lanebridge/lanebridge/protocol"
)

// Postgres is the Store for several hub replicas sharing one PostgreSQL database. It is safe
// for concurrent use by goroutines and by processes: ApplyBatch locks the stream row
// (SELECT ... FOR UPDATE) for the whole transaction, so writers of one (store, epoch)
// serialise, and schema migration runs under a transaction-scoped advisory lock.
type Postgres struct {
	pool   *pgxpool.Pool
	schema string

	noPostings atomic.Bool // SetPostings(false): nothing is enqueued
}

var _ Store = (*Postgres)(nil)

// pgMigrateLock is the advisory lock key held while the schema is created or migrated
// ("lanebrid" in ASCII).
const pgMigrateLock int64 = 0x6c616e6562726964

var pgMigrations = []string{
	// 1: initial schema.
	`CREATE TABLE stores (
		id            text PRIMARY KEY,
		password_hash text NOT NULL,
		created_at    timestamptz NOT NULL
	);
	CREATE TABLE streams (
		id              bigserial PRIMARY KEY,
		store           text NOT NULL REFERENCES stores(id),
		epoch           text NOT NULL,
		applied_through bigint NOT NULL DEFAULT 0,
		created_at      timestamptz NOT NULL,
		updated_at      timestamptz NOT NULL,
		UNIQUE (store, epoch)
	);
	CREATE TABLE records (
		store         text NOT NULL,
		epoch         text NOT NULL,
		seq           bigint NOT NULL,
		kind          text NOT NULL,
		terminal      text NOT NULL,
		receipt       text NOT NULL,
		business_date text NOT NULL,
		total         bigint NOT NULL,
		hash          text NOT NULL,
		body          jsonb NOT NULL,
		applied_at    timestamptz NOT NULL,
		PRIMARY KEY (store, epoch, seq)
	);
	CREATE INDEX records_day ON records (store, business_date);
	CREATE TABLE status (
		store text PRIMARY KEY REFERENCES stores(id),
		body  jsonb NOT NULL,
		at    timestamptz NOT NULL
	);
	CREATE TABLE exceptions (
		id         bigserial PRIMARY KEY,
		store      text NOT NULL,
		reason     text NOT NULL,
		key        text NOT NULL,
		detail     text NOT NULL,
		state      text NOT NULL,
		created_at timestamptz NOT NULL,
		updated_at timestamptz NOT NULL,
		UNIQUE (store, reason, key)
	);
	CREATE INDEX exceptions_state ON exceptions (state, id);`,
	// 2: ERP outbox, agent commands, daily closes, exception lifecycle.
	`CREATE TABLE postings (
		id            bigserial PRIMARY KEY,
		key           text NOT NULL UNIQUE,
		store         text NOT NULL,
		terminal      text NOT NULL,
		business_date text NOT NULL,
		receipt       text NOT NULL,
		kind          text NOT NULL,
		epoch         text NOT NULL,
		seq           bigint NOT NULL,
		content_hash  text NOT NULL,
		total         bigint NOT NULL,
		state         text NOT NULL,
		attempts      integer NOT NULL DEFAULT 0,
		next_at       timestamptz NOT NULL,
		lease_owner   text NOT NULL DEFAULT '',
		lease_until   timestamptz NOT NULL DEFAULT 'epoch',
		ref           text NOT NULL DEFAULT '',
		last_error    text NOT NULL DEFAULT '',
		created_at    timestamptz NOT NULL,
		updated_at    timestamptz NOT NULL,
		posted_at     timestamptz
	);
	CREATE INDEX postings_due ON postings (state, next_at);
	CREATE INDEX postings_day ON postings (store, business_date);
	CREATE TABLE commands (
		id         text PRIMARY KEY,
		store      text NOT NULL,
		body       jsonb NOT NULL,
		created_at timestamptz NOT NULL,
		result     jsonb,
		result_at  timestamptz
	);
	CREATE TABLE closes (
		store         text NOT NULL,
		business_date text NOT NULL,
		state         text NOT NULL,
		body          jsonb NOT NULL,
		closed_at     timestamptz NOT NULL,
		PRIMARY KEY (store, business_date)
	);
	ALTER TABLE exceptions ADD COLUMN updated_by text NOT NULL DEFAULT '';
	ALTER TABLE exceptions ADD COLUMN comment text NOT NULL DEFAULT '';`,
	// 3: inventory push: the ERP's stock as pulled, per-store published items and versions.
	`CREATE TABLE erp_items (
		sku         text PRIMARY KEY,
		description text NOT NULL,
		price       bigint NOT NULL,
		tax_code    text NOT NULL,
		status      text NOT NULL
	);
	CREATE TABLE erp_onhand (
		store   text NOT NULL,
		sku     text NOT NULL,
		on_hand text NOT NULL,
		pulled_at timestamptz NOT NULL,
		PRIMARY KEY (store, sku)
	);
	CREATE TABLE inventory_versions (
		store           text PRIMARY KEY REFERENCES stores(id),
		version         bigint NOT NULL,
		epoch           text NOT NULL,
		applied_through bigint NOT NULL,
		items           integer NOT NULL,
		updated_at      timestamptz NOT NULL
	);
	CREATE TABLE inventory_items (
		store       text NOT NULL,
		sku         text NOT NULL,
		description text NOT NULL,
		price       bigint NOT NULL,
		tax_code    text NOT NULL,
		status      text NOT NULL,
		on_hand     text NOT NULL,
		available   text NOT NULL,
		version     bigint NOT NULL,
		PRIMARY KEY (store, sku)
	);
	CREATE INDEX postings_open ON postings (store, state);`,
}

// OpenPostgres connects to the database at url (a pgx connection string; a search_path
// runtime parameter in it is honoured) and creates or migrates the schema.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	return OpenPostgresSchema(ctx, url, "")
}

// OpenPostgresSchema is OpenPostgres with every table in the named schema, which is created
// if needed. An empty schema uses the connection's search_path.
func OpenPostgresSchema(ctx context.Context, url, schema string) (*Postgres, error) {
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
	p := &Postgres{pool: pool, schema: schema}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) migrate(ctx context.Context) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate postgres store: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrateLock); err != nil {
		return fmt.Errorf("migrate postgres store: lock: %w", err)
	}
	if p.schema != "" {
		id := pgx.Identifier{p.schema}.Sanitize()
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+id); err != nil {
			return fmt.Errorf("migrate postgres store: create schema %s: %w", p.schema, err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+id); err != nil {
			return fmt.Errorf("migrate postgres store: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("migrate postgres store: %w", err)
	}
	var v int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("migrate postgres store: read version: %w", err)
	}
	if v > len(pgMigrations) {
		return fmt.Errorf("migrate postgres store: schema version %d is newer than this program's %d", v, len(pgMigrations))
	}
	for i := v; i < len(pgMigrations); i++ {
		if _, err := tx.Exec(ctx, pgMigrations[i]); err != nil {
			return fmt.Errorf("migrate postgres store to version %d: %w", i+1, err)
		}
	}
	if v < len(pgMigrations) {
		if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
			return fmt.Errorf("migrate postgres store: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, len(pgMigrations)); err != nil {
			return fmt.Errorf("migrate postgres store: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate postgres store: commit: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

type pgQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func pgStoreExists(ctx context.Context, q pgQuerier, id string) (bool, error) {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM stores WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ApplyBatch implements Store.
func (p *Postgres) ApplyBatch(ctx context.Context, store, epoch string, recs []protocol.Record) (ApplyResult, error) {
	var res ApplyResult
	if err := checkBatch(store, epoch, recs); err != nil {
		return res, fmt.Errorf("apply batch %s/%s: %w", store, epoch, err)
	}
	bodies, err := marshalBodies(recs)
	if err != nil {
		return res, fmt.Errorf("apply batch %s/%s: %w", store, epoch, err)
	}
	res, err = p.applyBatch(ctx, store, epoch, recs, bodies)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply batch %s/%s: %w", store, epoch, err)
	}
	return res, nil
}

func (p *Postgres) applyBatch(ctx context.Context, store, epoch string, recs []protocol.Record, bodies [][]byte) (ApplyResult, error) {
	var res ApplyResult
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	now := time.Now().UTC()
	if len(recs) > 0 {
		// Creates the stream row only for a known store; a concurrent creator makes this wait
		// for its commit and then do nothing.
		if _, err := tx.Exec(ctx, `INSERT INTO streams (store, epoch, applied_through, created_at, updated_at)
			SELECT $1, $2, 0, $3, $3 WHERE EXISTS (SELECT 1 FROM stores WHERE id = $1)
			ON CONFLICT (store, epoch) DO NOTHING`, store, epoch, now); err != nil {
			return res, fmt.Errorf("create stream: %w", err)
		}
	}
	var progress uint64
	err = tx.QueryRow(ctx, `SELECT applied_through FROM streams WHERE store = $1 AND epoch = $2 FOR UPDATE`, store, epoch).Scan(&progress)
	if errors.Is(err, pgx.ErrNoRows) {
		ok, err := pgStoreExists(ctx, tx, store)
		if err != nil {
			return res, fmt.Errorf("look up store: %w", err)
		}
		if !ok {
			return res, fmt.Errorf("store %s: %w", store, ErrNotFound)
		}
		return res, nil // empty batch of an unknown stream
	}
	if err != nil {
		return res, fmt.Errorf("lock stream: %w", err)
	}
	res.AppliedThrough = progress
	if len(recs) == 0 {
		return res, nil
	}

	stored := map[uint64]string{}
	if first := recs[0].Seq; first <= progress {
		last := min(recs[len(recs)-1].Seq, progress)
		rows, err := tx.Query(ctx, `SELECT seq, hash FROM records WHERE store = $1 AND epoch = $2 AND seq BETWEEN $3 AND $4`,
			store, epoch, first, last)
		if err != nil {
			return res, fmt.Errorf("read stored hashes: %w", err)
		}
		var seq uint64
		var h string
		if _, err := pgx.ForEachRow(rows, []any{&seq, &h}, func() error { stored[seq] = h; return nil }); err != nil {
			return res, fmt.Errorf("read stored hashes: %w", err)
		}
	}
	pl, err := planApply(epoch, recs, progress, stored)
	if err != nil {
		return res, err
	}
	res.Duplicates = pl.duplicates
	res.Conflicts = len(pl.conflicts)
	res.ResendFrom = pl.resendFrom
	for _, c := range pl.conflicts {
		e := conflictException(store, epoch, c)
		if _, err := tx.Exec(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (store, reason, key) DO NOTHING`,
			e.Store, e.Reason, e.Key, e.Detail, e.State, now); err != nil {
			return res, fmt.Errorf("raise hash conflict for seq %d: %w", c.seq, err)
		}
	}
	if pl.insertFrom < len(recs) {
		run := recs[pl.insertFrom:]
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"records"},
			[]string{"store", "epoch", "seq", "kind", "terminal", "receipt", "business_date", "total", "hash", "body", "applied_at"},
			pgx.CopyFromSlice(len(run), func(i int) ([]any, error) {
				r := &run[i]
				return []any{store, epoch, int64(r.Seq), string(r.Kind), r.Terminal, r.Receipt, r.BusinessDate,
					r.Total, r.Hash, bodies[pl.insertFrom+i], now}, nil
			}))
		if err != nil {
			return res, fmt.Errorf("insert seq %d..%d: %w", run[0].Seq, run[len(run)-1].Seq, err)
		}
		if n != int64(len(run)) {
			return res, fmt.Errorf("insert seq %d..%d: copied %d rows, want %d", run[0].Seq, run[len(run)-1].Seq, n, len(run))
		}
		if err := p.enqueue(ctx, tx, run, now); err != nil {
			return res, err
		}
		res.Applied = len(run)
		res.AppliedThrough = run[len(run)-1].Seq
		if _, err := tx.Exec(ctx, `UPDATE streams SET applied_through = $1, updated_at = $2 WHERE store = $3 AND epoch = $4`,
			int64(res.AppliedThrough), now, store, epoch); err != nil {
			return res, fmt.Errorf("update progress: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return ApplyResult{}, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// AddStore implements Store.
func (p *Postgres) AddStore(ctx context.Context, id, passwordHash string) error {
	if err := protocol.ValidateStoreID(id); err != nil {
		return fmt.Errorf("add store: %w", err)
	}
	tag, err := p.pool.Exec(ctx, `INSERT INTO stores (id, password_hash, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, id, passwordHash, normTime(time.Now()))
	if err != nil {
		return fmt.Errorf("add store %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("add store %s: %w", id, ErrExists)
	}
	return nil
}

// Credentials implements Store.
func (p *Postgres) Credentials(ctx context.Context, id string) (string, error) {
	var h string
	err := p.pool.QueryRow(ctx, `SELECT password_hash FROM stores WHERE id = $1`, id).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("credentials of store %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("credentials of store %s: %w", id, err)
	}
	return h, nil
}

// ListStores implements Store.
func (p *Postgres) ListStores(ctx context.Context) ([]StoreInfo, error) {
	infos, err := p.loadStores(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list stores: %w", err)
	}
	return infos, nil
}

// GetStore implements Store.
func (p *Postgres) GetStore(ctx context.Context, id string) (StoreInfo, error) {
	infos, err := p.loadStores(ctx, id)
	if err != nil {
		return StoreInfo{}, fmt.Errorf("get store %s: %w", id, err)
	}
	if len(infos) == 0 {
		return StoreInfo{}, fmt.Errorf("get store %s: %w", id, ErrNotFound)
	}
	return infos[0], nil
}

func (p *Postgres) readTx(ctx context.Context) (pgx.Tx, error) {
	return p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
}

func (p *Postgres) loadStores(ctx context.Context, id string) ([]StoreInfo, error) {
	tx, err := p.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	// $1 = '' selects every store.
	var infos []StoreInfo
	idx := map[string]int{}
	rows, err := tx.Query(ctx, `SELECT id, created_at FROM stores WHERE $1 = '' OR id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	var si StoreInfo
	if _, err := pgx.ForEachRow(rows, []any{&si.ID, &si.CreatedAt}, func() error {
		idx[si.ID] = len(infos)
		infos = append(infos, StoreInfo{ID: si.ID, CreatedAt: si.CreatedAt.UTC(), Streams: []Stream{}})
		return nil
	}); err != nil {
		return nil, err
	}

	rows, err = tx.Query(ctx, `SELECT store, epoch, applied_through, updated_at FROM streams WHERE $1 = '' OR store = $1 ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	var store string
	var st Stream
	if _, err := pgx.ForEachRow(rows, []any{&store, &st.Epoch, &st.AppliedThrough, &st.UpdatedAt}, func() error {
		if i, ok := idx[store]; ok {
			s := st
			s.UpdatedAt = s.UpdatedAt.UTC()
			infos[i].Streams = append(infos[i].Streams, s)
			// Progress is contiguous from seq 1, so it counts the stream's records.
			infos[i].Records += int64(s.AppliedThrough)
		}
		return nil
	}); err != nil {
		return nil, err
	}

	rows, err = tx.Query(ctx, `SELECT store, body, at FROM status WHERE $1 = '' OR store = $1`, id)
	if err != nil {
		return nil, err
	}
	var body []byte
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&store, &body, &at}, func() error {
		s, err := decodeStatus(body)
		if err != nil {
			return err
		}
		if i, ok := idx[store]; ok {
			infos[i].Status, infos[i].StatusAt = s, at.UTC()
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return infos, nil
}

// PutStatus implements Store. An older status (by at) than the one kept is ignored.
func (p *Postgres) PutStatus(ctx context.Context, st protocol.Status, at time.Time) error {
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("put status of %s: %w", st.Store, err)
	}
	tag, err := p.pool.Exec(ctx, `INSERT INTO status (store, body, at)
		SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM stores WHERE id = $1)
		ON CONFLICT (store) DO UPDATE SET body = excluded.body, at = excluded.at WHERE excluded.at >= status.at`,
		st.Store, body, normTime(at))
	if err != nil {
		return fmt.Errorf("put status of %s: %w", st.Store, err)
	}
	if tag.RowsAffected() == 0 {
		ok, err := pgStoreExists(ctx, p.pool, st.Store)
		if err != nil {
			return fmt.Errorf("put status of %s: %w", st.Store, err)
		}
		if !ok {
			return fmt.Errorf("put status of %s: %w", st.Store, ErrNotFound)
		}
	}
	return nil
}

// Records implements Store. A limit <= 0 means 1000.
func (p *Postgres) Records(ctx context.Context, store, epoch string, afterSeq uint64, limit int) ([]protocol.Record, error) {
	if limit <= 0 {
		limit = defaultRecordsLimit
	}
	tx, err := p.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("records of %s: %w", store, err)
	}
	defer tx.Rollback(ctx)
	ok, err := pgStoreExists(ctx, tx, store)
	if err != nil {
		return nil, fmt.Errorf("records of %s: %w", store, err)
	}
	if !ok {
		return nil, fmt.Errorf("records of %s: %w", store, ErrNotFound)
	}
	if epoch == "" {
		err := tx.QueryRow(ctx, `SELECT epoch FROM streams WHERE store = $1 ORDER BY id DESC LIMIT 1`, store).Scan(&epoch)
		if errors.Is(err, pgx.ErrNoRows) {
			return []protocol.Record{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("records of %s: latest epoch: %w", store, err)
		}
	}
	rows, err := tx.Query(ctx, `SELECT body FROM records WHERE store = $1 AND epoch = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		store, epoch, int64(min(afterSeq, 1<<63-1)), limit)
	if err != nil {
		return nil, fmt.Errorf("records of %s/%s: %w", store, epoch, err)
	}
	out := []protocol.Record{}
	var body []byte
	if _, err := pgx.ForEachRow(rows, []any{&body}, func() error {
		r, err := decodeRecord(body)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("records of %s/%s: %w", store, epoch, err)
	}
	return out, nil
}

// Day implements Store.
func (p *Postgres) Day(ctx context.Context, store, businessDate string) (Day, error) {
	tx, err := p.readTx(ctx)
	if err != nil {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, err)
	}
	defer tx.Rollback(ctx)
	ok, err := pgStoreExists(ctx, tx, store)
	if err != nil {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, err)
	}
	if !ok {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, ErrNotFound)
	}
	rows, err := tx.Query(ctx, `SELECT r.terminal, r.kind, r.receipt, r.total
		FROM records r JOIN streams s ON s.store = r.store AND s.epoch = r.epoch
		WHERE r.store = $1 AND r.business_date = $2 ORDER BY s.id, r.seq`, store, businessDate)
	if err != nil {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, err)
	}
	var drs []dayRow
	var dr dayRow
	if _, err := pgx.ForEachRow(rows, []any{&dr.terminal, &dr.kind, &dr.receipt, &dr.total}, func() error {
		drs = append(drs, dr)
		return nil
	}); err != nil {
		return Day{}, fmt.Errorf("day %s of %s: %w", businessDate, store, err)
	}
	return buildDay(store, businessDate, drs), nil
}

// RaiseException implements Store.
func (p *Postgres) RaiseException(ctx context.Context, e Exception) (bool, error) {
	if err := normException(&e, time.Now()); err != nil {
		return false, err
	}
	tag, err := p.pool.Exec(ctx, `INSERT INTO exceptions (store, reason, key, detail, state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (store, reason, key) DO NOTHING`,
		e.Store, e.Reason, e.Key, e.Detail, e.State, e.CreatedAt, e.UpdatedAt)
	if err != nil {
		return false, fmt.Errorf("raise exception %s/%s/%s: %w", e.Store, e.Reason, e.Key, err)
	}
	return tag.RowsAffected() > 0, nil
}

// Exceptions implements Store: newest first. A limit <= 0 means 1000.
func (p *Postgres) Exceptions(ctx context.Context, f ExceptionFilter) ([]Exception, error) {
	q := `SELECT id, store, reason, key, detail, state, created_at, updated_at, updated_by, comment FROM exceptions`
	var conds []string
	var args []any
	for _, c := range []struct{ col, val string }{{"store", f.Store}, {"reason", f.Reason}, {"state", f.State}} {
		if c.val != "" {
			args = append(args, c.val)
			conds = append(conds, fmt.Sprintf("%s = $%d", c.col, len(args)))
		}
	}
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultExceptionsLimit
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	out := []Exception{}
	var e Exception
	if _, err := pgx.ForEachRow(rows, []any{&e.ID, &e.Store, &e.Reason, &e.Key, &e.Detail, &e.State, &e.CreatedAt, &e.UpdatedAt, &e.UpdatedBy, &e.Comment}, func() error {
		x := e
		x.CreatedAt, x.UpdatedAt = x.CreatedAt.UTC(), x.UpdatedAt.UTC()
		out = append(out, x)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	return out, nil
}

// SetExceptionState moves an exception to open, acknowledged or resolved (ErrNotFound for an
// unknown id).
func (p *Postgres) SetExceptionState(ctx context.Context, id int64, state string) error {
	if !validState(state) {
		return fmt.Errorf("set exception %d state: unknown state %q", id, state)
	}
	tag, err := p.pool.Exec(ctx, `UPDATE exceptions SET state = $1, updated_at = $2 WHERE id = $3`, state, normTime(time.Now()), id)
	if err != nil {
		return fmt.Errorf("set exception %d state: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set exception %d state: %w", id, ErrNotFound)
	}
	return nil
}
