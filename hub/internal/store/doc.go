// Package store is the hub's durable store: store credentials, applied records and their
// per-stream progress, agent status, exceptions, the ERP outbox, agent commands, day closes, and
// for the inventory push the ERP's stock as last pulled and the item state last published to
// each store with its version, and the chart data (per store and metric, minute and hour
// buckets of sum, count, max and last; series.go). One type, [DB], runs on SQLite (the embedded default,
// modernc.org/sqlite, WAL with synchronous=FULL) or PostgreSQL (pgx, for several hub replicas
// on one database); the contract suites run every case on both.
//
// # One implementation over a small seam
//
// The orchestration (the exactly-once apply, the outbox and its leases, the compare-and-set of
// inventory versions) and the SQL text are written once. What differs sits in engine.go:
//
//   - engine and tx: how transactions open and statements run. SQLite goes through
//     database/sql with one writer connection (BEGIN IMMEDIATE: writers of several processes
//     queue on the busy timeout) and a pool of WAL readers; PostgreSQL through native pgx (faster
//     than its database/sql adapter, and the only way to COPY). Statements use ? placeholders,
//     renumbered $1… for PostgreSQL; "no row" is sql.ErrNoRows on both; bulk inserts are COPY on
//     PostgreSQL and prepared multi-row INSERTs on SQLite.
//   - dialect: the row lock (FOR UPDATE; empty on SQLite, whose writer is alone), the claim (FOR
//     UPDATE SKIP LOCKED), the column types of the migration files ({{time}}, {{id}}, …) and the
//     encoding of time arguments (UTC microseconds on SQLite, timestamptz on PostgreSQL). Times
//     read back through one scanner that takes both, and NULL, 0 or the Unix epoch as "not set".
//
// Upserts (INSERT … ON CONFLICT), RETURNING, IS DISTINCT FROM and IN lists are the same text on
// both engines.
//
// Why this shape: Grafana's SQL store writes queries once (xorm) with a Dialect for types and
// the clauses that differ and migrations recorded in a log table; River keeps a thin executor
// per driver (queries generated per engine) with embedded migrations; goose confines dialects
// to its version table. An ORM would hide the row locks and COPY the exactly-once core relies
// on, and queries generated per engine (sqlc) leave the orchestration written twice — the drift
// this package had. So: queries and orchestration once, as Grafana does, over River's kind of
// thin executor on each engine's native driver.
//
// # Write path
//
// Records arrive in group commits (ApplyBatches, group.go): each batch is checked against its
// stream's progress in a savepoint of its own, then the new records of every batch are
// inserted together — one multi-row INSERT per table on SQLite (chunks of 128 rows, then
// powers of two, so a handful of statement texts serve every size), COPY into records and one
// INSERT … SELECT FROM unnest per other table on PostgreSQL — and the day summaries are summed
// in memory per store-day and upserted once per row touched. SQLite's writer keeps the
// statements it runs in more than one transaction prepared across transactions (stmtCache);
// pgx caches prepared statements per connection by itself. SQLite's WAL is checkpointed by a
// checkpointer beside the writer, not inside its commits (checkpointer.go).
//
// # Migrations
//
// migrations/NNNN_name.sql, embedded, numbered from 1 without gaps and written once with the
// dialect's macros, run in order in one transaction (under an advisory lock on PostgreSQL, so
// replicas starting together migrate once); each applied version is a row of schema_version.
// A database newer than this hub knows is refused ([ErrSchemaTooNew]); an older one is
// upgraded. Databases written by the previous hub (schema 3) are kept in testdata/v3 and
// migrated by the tests.
//
// # Interfaces
//
// This package declares none: each consumer declares the methods it uses next to itself, and
// hub/internal/app checks at compile time that *DB satisfies them.
package store
