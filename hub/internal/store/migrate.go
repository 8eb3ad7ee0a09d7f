package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Migrations (doc.go): migrations/NNNN_name.sql, embedded.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned by Open when the database was migrated by a newer hub.
var ErrSchemaTooNew = errors.New("database schema is newer than this hub")

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order, checked for numbering.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []migration
	for i, path := range names {
		name, ok := strings.CutPrefix(path, fmt.Sprintf("migrations/%04d_", i+1))
		b, err := migrationFiles.ReadFile(path)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: want number %04d (%v)", path, i+1, err)
		}
		out = append(out, migration{version: i + 1, name: strings.TrimSuffix(name, ".sql"), sql: string(b)})
	}
	return out, nil
}

// migrate brings the schema to the latest version in one transaction.
func (s *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	t, err := s.e.begin(ctx, true)
	if err != nil {
		return err
	}
	defer t.rollback(ctx)
	if err := s.e.prepareMigration(ctx, t); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := t.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("read version: %w", err)
	}
	if v > len(ms) {
		return fmt.Errorf("%w: the database is at version %d, this hub knows versions up to %d; run the newer hub that wrote it, or restore a backup taken before it ran",
			ErrSchemaTooNew, v, len(ms))
	}
	for _, m := range ms[v:] {
		if _, err := t.exec(ctx, s.d.ddl.Replace(m.sql)); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		if m.version == 13 { // day summaries: backfilled from the records already stored
			if err := s.rebuildSummaries(ctx, t); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		if m.version == 14 { // availability: computed from the postings and on-hand already stored
			if err := s.rebuildAvailability(ctx, t); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		if _, err := t.exec(ctx, `INSERT INTO schema_version (version) VALUES (?)`, m.version); err != nil {
			return fmt.Errorf("migration %d (%s): record: %w", m.version, m.name, err)
		}
	}
	return t.commit(ctx)
}
