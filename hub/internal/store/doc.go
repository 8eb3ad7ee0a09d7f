// Package store is the hub's durable store: store credentials, applied records and their
// per-stream progress, agent status, exceptions, the ERP outbox, agent commands, day closes and
// the inventory push. One type, [DB], runs on SQLite (the embedded default, modernc.org/sqlite,
// one file in WAL mode with synchronous=FULL) or on PostgreSQL (pgx, for several hub replicas
// on one database). The contract suites (contract_test.go, outbox_contract_test.go,
// inventory_contract_test.go) run every case on both.
//
// # One implementation over a small seam
//
// The orchestration — the exactly-once apply, the outbox, leases, the compare-and-set of
// inventory versions — and the SQL text are written once. What really differs between the two
// databases sits behind a seam of two parts (engine.go):
//
//   - engine and tx: how a transaction is opened and how statements run. SQLite goes through
//     database/sql with one writer connection (BEGIN IMMEDIATE, so writers of several processes
//     queue on the busy timeout) and a pool of WAL readers; PostgreSQL goes through pgx natively
//     (not its database/sql adapter: the native interface is faster and is the only one with
//     COPY). A tx runs statements written with ? placeholders (renumbered $1… for
//     PostgreSQL), maps "no row" to sql.ErrNoRows on both, and offers one bulk insert: COPY on
//     PostgreSQL, prepared multi-row INSERTs on SQLite.
//   - dialect: the few SQL fragments that differ — the row lock (FOR UPDATE, empty on SQLite
//     whose writer is alone), the claim (FOR UPDATE SKIP LOCKED), the types of the migration
//     files (macros such as {{time}} and {{id}}), and the encoding of times as arguments (UTC
//     microseconds on SQLite, timestamptz on PostgreSQL). Times read back through one scanner
//     that accepts both, and NULL, 0 or the Unix epoch as "not set".
//
// Everything else is the same text on both: upserts are INSERT … ON CONFLICT … DO UPDATE/
// NOTHING, INSERT … RETURNING, IS DISTINCT FROM, and IN lists; both engines have them.
//
// Why this shape. We read how projects that ship two SQL back ends keep them: Grafana's SQL
// store writes queries once (through xorm) and keeps a Dialect for types and the few clauses
// that differ, with migrations defined once and recorded in a log table; River keeps a driver
// interface with an executor per driver (its queries generated per engine), and embeds its
// migrations per driver; goose confines dialects to its version table. An ORM would hide the
// locking and the COPY path that the exactly-once core depends on, and generating the queries
// per engine (sqlc) leaves the orchestration written twice — the drift this package had. So
// the queries and the orchestration are written once, as in Grafana, and the seam is River's
// thin executor, over each engine's native driver.
//
// # Migrations
//
// migrations/NNNN_name.sql, embedded, numbered from 1 without gaps and written once with the
// dialect's macros, run in order inside one transaction (on PostgreSQL under an advisory lock,
// so replicas starting together migrate once); each applied version is a row of
// schema_version. A database at a version newer than this hub knows is refused with
// [ErrSchemaTooNew]; an older one is upgraded. Databases written by earlier hubs (schema 3, one
// implementation per engine) are kept in testdata/v3 and migrated by the tests.
//
// # Interfaces
//
// This package declares none: each consumer (ingest, web, posting, inventory, reconcile)
// declares the few methods it uses next to itself, and hub/internal/app checks at compile time
// that *DB satisfies them.
package store
