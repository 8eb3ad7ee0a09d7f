package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// ErrCorruptDatabase means the SQLite file exists but is not a sound database: empty
// (truncated), not SQLite, or failing SQLite's quick_check. The hub refuses to start on it and
// never writes to it: the hub's database is the record of what every store delivered, so
// starting empty, or moving it aside and starting empty, would silently forget acknowledged
// sales. The operator restores it from a backup (or removes it to start a new hub on purpose).
var ErrCorruptDatabase = errors.New("hub database is corrupt")

// quickCheckMaxBytes bounds the file size for which Open runs PRAGMA quick_check (its cost
// grows with the file); larger files get the header check only.
const quickCheckMaxBytes = 1 << 30

var sqliteMagic = []byte("SQLite format 3\x00")

// checkSQLiteHeader checks, before SQLite touches it, that an existing file at path is an
// SQLite database: not empty, with the SQLite header. A missing file is fine (a new hub).
func checkSQLiteHeader(path string) (exists bool, size int64, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if fi.Size() == 0 {
		return true, 0, corruptDB(path, "the file is empty (truncated)")
	}
	f, err := os.Open(path)
	if err != nil {
		return true, 0, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	defer f.Close()
	hdr := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(f, hdr); err != nil || !bytes.Equal(hdr, sqliteMagic) {
		return true, fi.Size(), corruptDB(path, fmt.Sprintf("no SQLite header (first bytes %q)", hdr))
	}
	return true, fi.Size(), nil
}

// quickCheck runs PRAGMA quick_check on db (the file at path) and returns ErrCorruptDatabase
// with its first findings unless it says ok.
func quickCheck(ctx context.Context, db *sql.DB, path string) error {
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check(5)")
	if err != nil {
		return corruptDB(path, "quick_check: "+err.Error())
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return corruptDB(path, "quick_check: "+err.Error())
		}
		found = append(found, s)
	}
	if err := rows.Err(); err != nil {
		return corruptDB(path, "quick_check: "+err.Error())
	}
	if len(found) != 1 || found[0] != "ok" {
		return corruptDB(path, "quick_check: "+strings.Join(found, "; "))
	}
	return nil
}

func corruptDB(path, why string) error {
	return fmt.Errorf("%w: %s: %s; the hub will not start on it, nor start empty: stop it, restore %s from a backup "+
		"(or move it away to start a new hub on purpose: every store must then be enrolled again)", ErrCorruptDatabase, path, why, path)
}
