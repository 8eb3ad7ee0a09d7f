package boltfile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketData = []byte("data")
	bucketMeta = []byte("meta")
	keyInit    = []byte("init")
)

// testOptions: Init writes a marker, Check verifies that every value of bucket data ends with
// the SHA-256 of the rest (a file's own invariant, like the spool's record hashes).
func testOptions() Options {
	return Options{
		Name:    "test",
		Timeout: time.Second,
		Init: func(tx *bolt.Tx) error {
			m, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			return m.Put(keyInit, []byte("1"))
		},
		Check: func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketData)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if len(v) < sha256.Size {
					return fmt.Errorf("value %q too short", k)
				}
				body, sum := v[:len(v)-sha256.Size], v[len(v)-sha256.Size:]
				if h := sha256.Sum256(body); !bytes.Equal(h[:], sum) {
					return fmt.Errorf("value %q: hash mismatch", k)
				}
				return nil
			})
		},
		Restart: "a new test file was started",
	}
}

func value(i int) []byte {
	body := bytes.Repeat([]byte(fmt.Sprintf("value %05d;", i)), 8)
	h := sha256.Sum256(body)
	return append(body, h[:]...)
}

const nKeys = 2000

// filled writes a file through Open with nKeys hashed values (several leaf pages under a
// branch page) and closes it. It returns the bytes bbolt uses.
func filled(t *testing.T, path string) (used int64) {
	t.Helper()
	f, err := Open(path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	err = f.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketData)
		if err != nil {
			return err
		}
		for i := range nKeys {
			if err := b.Put([]byte(fmt.Sprintf("k%05d", i)), value(i)); err != nil {
				return err
			}
		}
		used = tx.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.DB.Close(); err != nil {
		t.Fatal(err)
	}
	return used
}

// pageOf returns the offset and size of a page of bucket data of the given type ("leaf" or
// "branch") in the middle of the file.
func pageOf(t *testing.T, path, typ string) (off, size int64) {
	t.Helper()
	db, err := bolt.Open(path, FileMode, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ids []int
	err = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p == nil {
				return nil
			}
			if p.Type == typ {
				ids = append(ids, id)
			}
		}
	})
	if err != nil || len(ids) == 0 {
		t.Fatalf("no %s page (err %v)", typ, err)
	}
	ps := int64(db.Info().PageSize)
	return int64(ids[len(ids)/2]) * ps, ps
}

func xorRange(t *testing.T, path string, off, n int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := off; i < off+n && i < int64(len(b)); i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpenMovesCorruptFileAside(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, path string, used int64)
		want    string // in what the check found
	}{
		{"truncated", func(t *testing.T, path string, used int64) {
			if err := os.Truncate(path, used/2); err != nil {
				t.Fatal(err)
			}
		}, "file is corrupt"},
		{"truncated to less than a page", func(t *testing.T, path string, used int64) {
			if err := os.Truncate(path, 1000); err != nil {
				t.Fatal(err)
			}
		}, "corrupt"},
		{"zero-length", func(t *testing.T, path string, used int64) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}, "empty"},
		{"not a bbolt file", func(t *testing.T, path string, used int64) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("store: S1\nterminals: []\n"), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "corrupt"},
		{"both meta pages overwritten", func(t *testing.T, path string, used int64) {
			xorRange(t, path, 16, 2*int64(os.Getpagesize())-16) // page headers kept
		}, "corrupt"},
		{"bytes flipped in a leaf page", func(t *testing.T, path string, used int64) {
			off, n := pageOf(t, path, "leaf")
			xorRange(t, path, off, n)
		}, "corrupt"},
		{"bytes flipped in a branch page", func(t *testing.T, path string, used int64) {
			off, n := pageOf(t, path, "branch")
			xorRange(t, path, off, n)
		}, "corrupt"},
		{"a value changed: the file's own check", func(t *testing.T, path string, used int64) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			old := []byte("value 01234;")
			if !bytes.Contains(b, old) {
				t.Fatal("value 01234 not in the file")
			}
			if err := os.WriteFile(path, bytes.ReplaceAll(b, old, []byte("value 01235;")), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "hash mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "test.db")
			used := filled(t, path)
			tt.corrupt(t, path, used)
			corrupted, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			f, err := Open(path, testOptions())
			if err != nil {
				t.Fatalf("Open of a corrupt file: %v", err)
			}
			if f.Moved == nil || !f.Created || len(f.Kept) != 0 {
				t.Fatalf("Open: moved %+v, created %v, kept %v; want moved, created, none kept", f.Moved, f.Created, f.Kept)
			}
			if !errors.Is(f.Moved.Err, ErrCorrupt) {
				t.Fatalf("Moved.Err = %v, want ErrCorrupt", f.Moved.Err)
			}
			msg := f.Moved.Message
			t.Logf("alarm: %s", msg)
			if !strings.Contains(msg, "test file was corrupt") || !strings.Contains(msg, f.Moved.MovedTo) ||
				!strings.Contains(msg, "a new test file was started") || !strings.Contains(f.Moved.Err.Error(), tt.want) {
				t.Fatalf("alarm %q: want the name, where it went, the restart and %q", msg, tt.want)
			}
			if !strings.HasPrefix(f.Moved.MovedTo, path+".corrupt-") {
				t.Fatalf("moved to %s", f.Moved.MovedTo)
			}
			kept, err := os.ReadFile(f.Moved.MovedTo)
			if err != nil || !bytes.Equal(kept, corrupted) {
				t.Fatalf("the file moved aside does not hold the corrupt bytes (err %v)", err)
			}
			err = f.DB.View(func(tx *bolt.Tx) error {
				if tx.Bucket(bucketData) != nil || tx.Bucket(bucketMeta).Get(keyInit) == nil {
					return errors.New("the new file is not a fresh one made by Init")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte("k"), []byte("v")) }); err != nil {
				t.Fatalf("write to the new file: %v", err)
			}
			f.DB.Close()

			// A restart keeps the new file and keeps alarming while the corrupt one is there.
			f2, err := Open(path, testOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer f2.DB.Close()
			if f2.Moved != nil || f2.Created || len(f2.Kept) != 1 || f2.Kept[0].MovedTo != f.Moved.MovedTo {
				t.Fatalf("after restart: moved %+v, created %v, kept %+v; want only the kept file", f2.Moved, f2.Created, f2.Kept)
			}
			if a := f2.Alarms(); len(a) != 1 || !strings.Contains(a[0], f.Moved.MovedTo) {
				t.Fatalf("after restart Alarms = %q", a)
			}
		})
	}
}

func TestOpenHealthyAndNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	f, err := Open(path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !f.Created || f.Moved != nil || len(f.Alarms()) != 0 {
		t.Fatalf("new file: created %v, alarms %q", f.Created, f.Alarms())
	}
	f.DB.Close()
	if _, err := os.Stat(path + ".new"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}

	filled(t, path) // Open of the healthy file inside, then nKeys values
	f, err = Open(path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer f.DB.Close()
	if f.Created || f.Moved != nil || len(f.Alarms()) != 0 {
		t.Fatalf("healthy file: created %v, alarms %q", f.Created, f.Alarms())
	}
	if err := f.DB.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketData).Stats().KeyN; n != nKeys {
			return fmt.Errorf("%d keys, want %d", n, nKeys)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Fatalf("a healthy file was moved aside: %v", aside)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	filled(t, path)
	held, err := bolt.Open(path, FileMode, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 200 * time.Millisecond
	tests := []struct {
		name string
		open func() error
	}{
		{"Open", func() error {
			o := testOptions()
			o.Timeout = timeout
			f, err := Open(path, o)
			if err == nil {
				f.DB.Close()
			}
			return err
		}},
		{"OpenReadOnly", func() error {
			db, err := OpenReadOnly(path, timeout)
			if err == nil {
				db.Close()
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := tt.open()
			d := time.Since(start)
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("err = %v, want ErrLocked", err)
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "lanebridge-agent") {
				t.Fatalf("error %q does not name the file and the probable holder", msg)
			}
			if d < timeout/2 || d > timeout+2*time.Second { // bbolt polls the lock every 50ms
				t.Fatalf("gave up after %v, want about %v", d, timeout)
			}
		})
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Fatalf("a locked file was moved aside: %v", aside)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, testOptions())
	if err != nil {
		t.Fatalf("Open after the lock was released: %v", err)
	}
	f.DB.Close()
}

func TestOpenReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	if _, err := OpenReadOnly(path, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReadOnly of a missing file = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("OpenReadOnly created the file")
	}
	filled(t, path)
	r1, err := OpenReadOnly(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := OpenReadOnly(path, 0) // readers share the lock
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	r2.Close()
}

func TestOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, testOptions()); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("Open of a directory = %v", err)
	}
}

// TestVerifyAndDeepCheckMaxBytes: past DeepCheckMaxBytes Open skips the page walk and bbolt's
// tx.Check, so a damaged branch page that only they read goes unseen at Open; Verify runs
// them, reports the damage and changes nothing; below the limit Open moves the file aside.
func TestVerifyAndDeepCheckMaxBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	filled(t, path)
	if err := Verify(path, testOptions()); err != nil {
		t.Fatalf("Verify of a sound file: %v", err)
	}
	off, n := pageOf(t, path, "branch")
	xorRange(t, path, off, n)
	damaged, _ := os.ReadFile(path)

	shallow := testOptions()
	shallow.Check = nil // reads nothing of the data: only the deep check would
	shallow.DeepCheckMaxBytes = 1
	f, err := Open(path, shallow)
	if err != nil {
		t.Fatal(err)
	}
	if f.Moved != nil {
		t.Fatalf("shallow Open moved the file aside: %v", f.Moved.Err)
	}
	if err := f.DB.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Verify(path, shallow); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of a damaged branch page = %v, want ErrCorrupt", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, damaged) {
		t.Fatal("Verify changed the file")
	}
	if err := Verify(filepath.Join(t.TempDir(), "missing.db"), shallow); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Verify of a missing file = %v", err)
	}
	deep := testOptions()
	deep.Check = nil
	f, err = Open(path, deep)
	if err != nil {
		t.Fatal(err)
	}
	defer f.DB.Close()
	if f.Moved == nil {
		t.Fatal("the whole check at Open did not find the damaged branch page")
	}
}
