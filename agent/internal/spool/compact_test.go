package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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

const compactChildEnv = "LANEBRIDGE_SPOOL_COMPACT_CHILD"

// TestCompactChild is not a test of its own: TestCompactKill9 runs the test binary with this
// test selected and kills it while it compacts and commits.
func TestCompactChild(t *testing.T) {
	path := os.Getenv(compactChildEnv)
	if path == "" {
		t.Skip("helper process for TestCompactKill9")
	}
	s, err := Open(path, Options{Store: testStore})
	if err != nil {
		fmt.Printf("open error %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("ready %d\n", s.LastSeq())
	go func() {
		for i := 0; ; i++ {
			out, err := s.Commit(context.Background(), Capture{Source: "T9", Records: []protocol.Record{sale("T9", i)}, Offset: []byte(strconv.Itoa(i))})
			if err != nil {
				fmt.Printf("commit error %v\n", err)
				os.Exit(2)
			}
			fmt.Printf("C %d\n", out[0].Seq)
		}
	}()
	for {
		if _, err := s.Compact(true); err != nil {
			fmt.Printf("compact error %v\n", err)
			os.Exit(2)
		}
		fmt.Println("compacted")
	}
}

// TestCompactKill9 SIGKILLs a child that compacts its spool over and over while it commits, at
// random moments (before, during and after the rename): after each kill the spool opens
// without an alarm, with every record the child was told was captured, and checks sound.
func TestCompactKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL semantics are Unix")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	path := filepath.Join(t.TempDir(), "spool.db")
	_, epoch := genSpool(t, path, 20000, 15000, time.Now())
	compactions := 0
	for round := range 6 {
		var stdout, stderr syncBuffer
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompactChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), compactChildEnv+"="+path)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(stdout.String(), "ready") {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("round %d: child not ready; stdout %q stderr %q", round, stdout.String(), stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(100+r.IntN(1500)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		out := stdout.String()
		if strings.Contains(out, "error") {
			t.Fatalf("round %d: child failed: %s", round, out)
		}
		var maxSeq uint64
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "C" {
				n, _ := strconv.ParseUint(f[1], 10, 64)
				maxSeq = max(maxSeq, n)
			}
		}
		compactions += strings.Count(out, "compacted\n")
		rep, err := Check(path, Options{})
		if err != nil || rep.Problem != nil {
			t.Fatalf("round %d: Check after the kill = %+v, %v", round, rep, err)
		}
		s, err := Open(path, Options{Store: testStore})
		if err != nil {
			t.Fatal(err)
		}
		st := s.Stats()
		if st.Epoch != epoch || st.LastSeq < maxSeq || len(st.Alarms) != 0 {
			_ = s.Close()
			t.Fatalf("round %d: after the kill %+v; the child had captured through %d", round, st, maxSeq)
		}
		if _, err := os.Stat(compactPath(path)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("round %d: stale compaction copy kept after Open", round)
		}
		_ = s.Close()
		t.Logf("round %d: captured through %d, last seq %d, rep %d records", round, maxSeq, st.LastSeq, rep.Records)
	}
	if compactions == 0 {
		t.Fatal("no compaction finished in any round: the kills proved nothing about the rename")
	}
	t.Logf("%d compactions finished across the rounds", compactions)
}
