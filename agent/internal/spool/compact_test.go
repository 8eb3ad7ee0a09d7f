package spool

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// TestPurgeCompacts: purging most of a spool frees pages that bbolt keeps in the file; Purge
// then compacts it into a new file, which holds every remaining record, sound, and takes new
// captures and acks, before and after a restart.
func TestPurgeCompacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	clock := newTestClock()
	const n, acked = 20000, 18000
	genSpool(t, path, n, acked, clock.Now().Add(-48*time.Hour))
	before, _ := os.Stat(path)
	s := openTest(t, path, Options{Retention: 24 * time.Hour, Now: clock.Now})
	purged, err := s.Purge()
	if err != nil || purged != acked {
		t.Fatalf("Purge = %d, %v; want %d", purged, err, acked)
	}
	after, _ := os.Stat(path)
	if after.Size()*3 > before.Size() {
		t.Fatalf("file %d bytes after purging %d of %d records, was %d: not compacted", after.Size(), acked, n, before.Size())
	}
	t.Logf("file %d → %d bytes", before.Size(), after.Size())
	if _, err := os.Stat(compactPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the compaction copy is left: %v", err)
	}
	recs := checkContiguous(t, s, acked+1, n)
	if len(recs) != n-acked {
		t.Fatalf("%d records after compaction, want %d", len(recs), n-acked)
	}
	if st := s.Stats(); st.LastSeq != n || st.LastAck != acked || len(st.Alarms) != 0 {
		t.Fatalf("Stats after compaction %+v", st)
	}
	got := mustCommit(t, s, Capture{Source: "T1", Records: []protocol.Record{sale("T1", 1)}, Offset: []byte("o2")})
	if got[0].Seq != n+1 {
		t.Fatalf("seq after compaction %d, want %d", got[0].Seq, n+1)
	}
	if err := s.Ack(s.Epoch(), n); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Compact(false); err != nil || r.Compacted {
		t.Fatalf("second Compact = %+v, %v; want nothing to do", r, err)
	}
	epoch := s.Epoch()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(path, Options{})
	if err != nil || rep.Problem != nil || rep.Records != n+1-acked || rep.LastAck != n {
		t.Fatalf("Check after compaction = %+v, %v", rep, err)
	}
	s2 := openTest(t, path, Options{})
	if st := s2.Stats(); st.Epoch != epoch || st.LastSeq != n+1 || st.LastAck != n || len(st.Alarms) != 0 {
		t.Fatalf("after restart %+v", st)
	}
	if off, err := s2.Offset("T1"); err != nil || string(off) != "o2" {
		t.Fatalf("offset after compaction %q, %v", off, err)
	}
}

// TestCompactStaleCopyAndDamage: a copy left by a compaction that crashed before its rename is
// deleted by Open and the file is used as it was; a compaction that meets a damaged record
// stops, leaves the file exactly as it was and raises an alarm.
func TestCompactStaleCopyAndDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	clock := newTestClock()
	genSpool(t, path, 2000, 2000, clock.Now().Add(-48*time.Hour))
	if err := os.WriteFile(compactPath(path), []byte("half a compaction"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path, Options{})
	if _, err := os.Stat(compactPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale copy kept: %v", err)
	}
	if st := s.Stats(); st.LastSeq != 2000 || len(st.Alarms) != 0 {
		t.Fatalf("Stats %+v", st)
	}
	_ = s.Close()

	flipReceipt(t, path, 1500) // acknowledged: Open of a big spool does not read it
	defer func(n uint64, b int64) { fullCheckAtOpen, deepCheckMaxBytes = n, b }(fullCheckAtOpen, deepCheckMaxBytes)
	fullCheckAtOpen, deepCheckMaxBytes = 100, 1
	orig, _ := os.ReadFile(path)
	s = openTest(t, path, Options{})
	if _, err := s.Compact(true); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "record 1500") {
		t.Fatalf("Compact over a damaged record = %v, want ErrCorrupt naming record 1500", err)
	}
	_ = s.Close()
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Fatal("a failed compaction changed the file")
	}
	s = openTest(t, path, Options{Retention: 24 * time.Hour, Now: clock.Now})
	if n, err := s.Purge(); err != nil || n != 2000 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	// 2000 records free less than compactMinFree: nothing to compact, no alarm.
	if st := s.Stats(); len(st.Alarms) != 0 {
		t.Fatalf("alarms %q", st.Alarms)
	}
}
