package spool

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	bolt "go.etcd.io/bbolt"
)

// filledSpool creates a closed spool with n records and returns its epoch and the number of
// bytes bbolt uses (the file may be longer: bbolt grows it in chunks).
func filledSpool(t *testing.T, path string, n int) (epoch string, used int64) {
	t.Helper()
	s, err := Open(path, Options{Store: testStore})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]protocol.Record, 100)
	for i := 0; i < n; i += len(recs) {
		for j := range recs {
			recs[j] = sale("t1", i+j+1)
		}
		mustCommit(t, s, Capture{Source: "t1", Records: recs, Offset: []byte("o")})
	}
	epoch = s.Epoch()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return epoch, used
}

// filePageSize is the bbolt page size of the file at path (a spool's is pageSize; an older
// spool's the OS page size).
func filePageSize(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.Info().PageSize
}

func TestOpenMovesCorruptFileAside(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, path string, used int64)
	}{
		{"garbage in the middle", func(t *testing.T, path string, used int64) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			junk := make([]byte, used/3)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range junk {
				junk[i] = byte(r.Uint32())
			}
			if _, err := f.WriteAt(junk, used/3); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string, used int64) {
			if err := os.Truncate(path, used/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated to less than a page", func(t *testing.T, path string, used int64) {
			if err := os.Truncate(path, 1000); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty", func(t *testing.T, path string, used int64) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"both meta pages overwritten", func(t *testing.T, path string, used int64) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ps := filePageSize(t, path)
			for i := 16; i < 2*ps; i++ { // keep page headers, ruin the metas
				b[i] ^= 0x5a
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"one flipped digit in a record", func(t *testing.T, path string, used int64) {
			// bbolt does not checksum data pages: only the record hash can catch this.
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Freed pages may hold stale copies of the record: change every copy.
			old, repl := []byte(`"receipt":"1234"`), []byte(`"receipt":"1235"`)
			if !bytes.Contains(b, old) {
				t.Fatal("receipt 1234 not found in the file")
			}
			b = bytes.ReplaceAll(b, old, repl)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "spool.db")
			oldEpoch, used := filledSpool(t, path, 2000)
			tt.corrupt(t, path, used)
			corrupted, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			s, err := Open(path, Options{Store: testStore})
			if err != nil {
				t.Fatalf("Open of a corrupt file: %v", err)
			}
			st := s.Stats()
			if st.Epoch == oldEpoch || len(st.Epoch) != 32 || st.LastSeq != 0 {
				t.Fatalf("new spool: epoch %q (old %q), last seq %d", st.Epoch, oldEpoch, st.LastSeq)
			}
			if len(st.Alarms) != 1 || !strings.Contains(st.Alarms[0], "corrupt") {
				t.Fatalf("Alarms = %q, want one corruption alarm", st.Alarms)
			}
			t.Logf("alarm: %s", st.Alarms[0])
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) != 1 {
				t.Fatalf("files moved aside: %v, want one", aside)
			}
			kept, err := os.ReadFile(aside[0])
			if err != nil || !bytes.Equal(kept, corrupted) {
				t.Fatalf("the file moved aside does not hold the corrupt bytes (err %v)", err)
			}
			if _, err := s.Commit(t.Context(), Capture{Source: "t1", Records: []protocol.Record{sale("t1", 1)}}); err != nil {
				t.Fatalf("Commit on the new spool: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			// A restart keeps the new spool and keeps alarming while the corrupt file is there.
			s2 := openTest(t, path, Options{})
			st2 := s2.Stats()
			if st2.Epoch != st.Epoch || st2.LastSeq != 1 {
				t.Fatalf("after restart: epoch %q last seq %d, want %q 1", st2.Epoch, st2.LastSeq, st.Epoch)
			}
			if len(st2.Alarms) != 1 || !strings.Contains(st2.Alarms[0], aside[0]) {
				t.Fatalf("after restart Alarms = %q, want the kept corrupt file", st2.Alarms)
			}
		})
	}
}

func TestOpenTimesOutOnHeldLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	filledSpool(t, path, 100)
	held, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		open func() (*Spool, error)
	}{
		{"Open", func() (*Spool, error) {
			return Open(path, Options{Store: testStore, OpenTimeout: 200 * time.Millisecond})
		}},
		{"OpenReadOnly", func() (*Spool, error) { return OpenReadOnly(path, Options{OpenTimeout: 200 * time.Millisecond}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := tt.open()
			if err == nil {
				_ = s.Close()
				t.Fatal("opened a spool whose lock is held")
			}
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("err = %v, want ErrLocked", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v to give up", d)
			}
		})
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Fatalf("a locked file was moved aside: %v", aside)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path, Options{})
	if s.LastSeq() != 100 {
		t.Fatalf("LastSeq = %d after the lock was released, want 100", s.LastSeq())
	}
}

func TestOpenReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	if _, err := OpenReadOnly(path, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReadOnly of a missing file = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("OpenReadOnly created the file")
	}
	epoch, _ := filledSpool(t, path, 100)

	s := openTest(t, path, Options{})
	if _, err := OpenReadOnly(path, Options{OpenTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenReadOnly while the agent runs = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := OpenReadOnly(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if st := ro.Stats(); st.Epoch != epoch || st.LastSeq != 100 || st.Backlog != 100 || st.OldestUnsent.IsZero() {
		t.Fatalf("read-only Stats = %+v", st)
	}
	if _, err := ro.Commit(t.Context(), Capture{Source: "t1", Records: []protocol.Record{sale("t1", 1)}}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Commit on read-only = %v, want ErrReadOnly", err)
	}
	if err := ro.Ack(epoch, 1); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Ack on read-only = %v, want ErrReadOnly", err)
	}
	if recs, err := ro.Read(99, 10); err != nil || len(recs) != 2 {
		t.Fatalf("Read on read-only = %d records, %v", len(recs), err)
	}
}
