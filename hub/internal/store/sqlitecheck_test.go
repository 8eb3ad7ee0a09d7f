package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenSQLiteRefusesCorruptFile: a hub database that was truncated, overwritten or damaged
// is refused at open with ErrCorruptDatabase and left byte for byte as it was; it is never
// migrated into a new empty database (which is what an empty file silently became before).
func TestOpenSQLiteRefusesCorruptFile(t *testing.T) {
	ctx := context.Background()
	good := filepath.Join(t.TempDir(), "hub.db")
	db, err := OpenSQLite(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	sound, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if len(sound) < 8*page {
		t.Fatalf("fixture database is only %d bytes", len(sound))
	}
	for _, tt := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"truncated to zero", func(b []byte) []byte { return nil }},
		{"truncated to half", func(b []byte) []byte { return b[:len(b)/2/page*page] }},
		{"header overwritten", func(b []byte) []byte { copy(b, "not a database at all"); return b }},
		{"page headers flipped", func(b []byte) []byte {
			for p := page; p < len(b); p += 2 * page {
				for i := p; i < p+16; i++ {
					b[i] ^= 0xff
				}
			}
			return b
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hub.db")
			bad := tt.damage(append([]byte(nil), sound...))
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := OpenSQLite(ctx, path)
			if err == nil {
				db.Close()
				t.Fatalf("OpenSQLite opened a damaged database (%s)", tt.name)
			}
			if !errors.Is(err, ErrCorruptDatabase) {
				t.Fatalf("OpenSQLite: %v, want ErrCorruptDatabase", err)
			}
			t.Logf("%s: %v", tt.name, err)
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, bad) {
				t.Fatalf("the damaged file was changed by the failed open (%d bytes, was %d)", len(after), len(bad))
			}
		})
	}
	// The sound file still opens.
	db, err = OpenSQLite(ctx, good)
	if err != nil {
		t.Fatalf("the sound database: %v", err)
	}
	db.Close()
}
