package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// TestCorruptSpoolQuarantined: with the agent stopped, bytes are flipped in the middle of
// spool.db, inside a stored record. On start the agent moves the file aside (never starts empty
// silently), raises an alarm that reaches the hub as an agent_alarm exception, starts a new
// epoch and keeps capturing: the journal is read again from the start (its committed offset was
// in the quarantined file) and new sales follow, all exactly once in the new epoch.
func TestCorruptSpoolQuarantined(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S042"
	j1, j2 := filepath.Join(dir, "T1.jsonl"), filepath.Join(dir, "T2.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": j1, "T2": j2})
	const n1, n2 = 500, 300
	s1 := runSim(t, dir, j1, "T1", n1, 1000, 43)
	ag := startAgent(t, dir, store, cfg)
	<-s1.Done
	h.WaitRecords(t, store, n1, 60*time.Second)
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, j1)})
	recs := h.AllRecords(t, store)
	oldEpoch := recs[0].Epoch
	ag.Stop(t)

	spoolDB := filepath.Join(dir, "agent-"+store, "spool.db")
	victim := recs[n1/2]
	flipped := flipInRecord(t, spoolDB, victim)
	t.Logf("flipped a byte in %d stored copies of seq %d (receipt %s)", flipped, victim.Seq, victim.Receipt)

	ag = startAgent(t, dir, store, cfg)
	var st localAgentStatus
	eventually(t, 30*time.Second, "the agent's status after restart", func() (err error) {
		if ag.Exited() {
			t.Fatalf("the agent exited on a corrupt spool instead of quarantining it: %v", ag.Err)
		}
		st, err = localStatusOf(cfg)
		return err
	})
	aside, _ := filepath.Glob(spoolDB + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt spool moved aside to %v, want one spool.db.corrupt-* file", aside)
	}
	if st.Epoch == "" || st.Epoch == oldEpoch {
		t.Fatalf("epoch after quarantine %q, want a new one (old %s)", st.Epoch, oldEpoch)
	}
	if !hasAlarm(st.Alarms, "corrupt") {
		t.Fatalf("no corruption alarm in the agent's status: %q", st.Alarms)
	}
	exc := waitException(t, h, store, "agent_alarm", "corrupt")
	if !strings.Contains(exc.Detail, filepath.Base(aside[0])) {
		t.Errorf("the exception does not say where the file went: %q", exc.Detail)
	}

	s2 := runSim(t, dir, j2, "T2", n2, 300, 44)
	<-s2.Done
	h.WaitRecords(t, store, n1+n1+n2, 60*time.Second)
	verifyEpoch(t, h, store, oldEpoch, map[string]sim.Totals{"T1": readTotals(t, j1)})
	verifyEpoch(t, h, store, st.Epoch, map[string]sim.Totals{"T1": readTotals(t, j1), "T2": readTotals(t, j2)})
	// The business day still counts each receipt once: T1's sales were captured again under
	// the new epoch, with the same business keys.
	d, err := h.day(store, "2026-11-26")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, tot := range []sim.Totals{readTotals(t, j1), readTotals(t, j2)} {
		for k, v := range tot.Sum {
			want[string(k)] += v
		}
	}
	for _, k := range d.Kinds {
		if k.Total != want[k.Kind] {
			t.Errorf("day total of %s = %d, want %d (each receipt once)", k.Kind, k.Total, want[k.Kind])
		}
	}
	if d.Recaptured != int64(n1) {
		t.Errorf("day reports %d recaptured records, want %d", d.Recaptured, n1)
	}
	ag.Stop(t)
	checkLogs(t, dir)
}

// flipInRecord damages every stored copy of r's JSON in the spool file (bbolt copies pages on
// write, so older copies sit in free pages): one digit of its receipt number changes, so the
// record no longer matches its hash. It returns how many copies it changed.
func flipInRecord(t testing.TB, path string, r protocol.Record) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	needle := []byte(fmt.Sprintf(`"receipt":%q`, r.Receipt))
	n := 0
	for i := 0; ; {
		j := bytes.Index(b[i:], needle)
		if j < 0 {
			break
		}
		p := i + j + len(needle) - 2 // the receipt's last character
		b[p] ^= 0x01
		n++
		i = p + 1
	}
	if n == 0 {
		t.Fatalf("%s not found in %s: cannot aim the corruption", needle, path)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// verifyEpoch is verify restricted to one epoch: its records are there exactly once, seq is
// contiguous from 1, hashes are right and the totals match to the cent.
func verifyEpoch(t testing.TB, h *hub, store, epoch string, want map[string]sim.Totals) {
	t.Helper()
	var recs []protocol.Record
	var after uint64
	for {
		b, err := h.Get(fmt.Sprintf("/api/v1/stores/%s/records?epoch=%s&after_seq=%d&limit=5000", store, epoch, after))
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Records []protocol.Record `json:"records"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			if r.Epoch != epoch {
				t.Fatalf("asked for epoch %s, got a record of epoch %s", epoch, r.Epoch)
			}
		}
		recs = append(recs, page.Records...)
		if len(page.Records) < 5000 {
			break
		}
		after = page.Records[len(page.Records)-1].Seq
	}
	var n int64
	for _, w := range want {
		n += w.N
	}
	if int64(len(recs)) != n {
		t.Fatalf("store %s epoch %s: hub has %d records, want %d", store, epoch, len(recs), n)
	}
	seen := map[string]bool{}
	got := map[string]*sim.Totals{}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("epoch %s record %d has seq %d: seq not contiguous from 1", epoch, i, r.Seq)
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("epoch %s seq %d: %v", epoch, r.Seq, err)
		}
		key := r.Terminal + "/" + r.Receipt
		if seen[key] {
			t.Fatalf("epoch %s: receipt %s captured twice", epoch, key)
		}
		seen[key] = true
		if got[r.Terminal] == nil {
			got[r.Terminal] = &sim.Totals{}
		}
		got[r.Terminal].Add(r)
	}
	for term, w := range want {
		g := got[term]
		if g == nil || g.N != w.N {
			t.Fatalf("epoch %s terminal %s: got %v records, want %d", epoch, term, g, w.N)
		}
		for k, c := range w.Count {
			if g.Count[k] != c || g.Sum[k] != w.Sum[k] {
				t.Fatalf("epoch %s terminal %s kind %s: hub count %d sum %d, simulator count %d sum %d", epoch, term, k, g.Count[k], g.Sum[k], c, w.Sum[k])
			}
		}
	}
}

// TestCorruptHubDatabaseRefused: the hub's SQLite file truncated to nothing, and then with a
// page damaged, while the hub is stopped. The hub must not start, say why and how to fix it,
// and leave the file alone (before, an empty hub.db became a new empty hub, silently
// forgetting every store and record). Restored from the copy, it starts with every record.
func TestCorruptHubDatabaseRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store, n = "S065", 200
	j := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": j})
	ag := startAgent(t, dir, store, cfg)
	s := runSim(t, dir, j, "T1", n, 1000, 45)
	<-s.Done
	h.WaitRecords(t, store, n, 60*time.Second)
	ag.Stop(t)
	h.P.Stop(t)

	db := filepath.Join(dir, "hub", "hub.db")
	sound, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(db + "-wal"); len(m) > 0 {
		if fi, _ := os.Stat(m[0]); fi.Size() > 0 {
			t.Logf("hub.db-wal holds %d bytes after a clean stop", fi.Size())
		}
	}
	for _, c := range []struct {
		name string
		bad  []byte
	}{
		{"truncated to zero", nil},
		{"page damaged", func() []byte {
			b := append([]byte(nil), sound...)
			for p := 4096; p < len(b); p += 8192 {
				for i := p; i < p+16 && i < len(b); i++ {
					b[i] ^= 0xff
				}
			}
			return b
		}()},
	} {
		if err := os.WriteFile(db, c.bad, 0o600); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, "hub-corrupt.log")
		os.Remove(logPath)
		p := start(t, "lanebridge-hub", logPath, "serve", "--data", filepath.Join(dir, "hub"), "--http", h.HTTP, "--mqtt", h.MQTT)
		select {
		case <-p.Done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the hub kept running on a corrupt database", c.name)
		}
		if p.Err == nil {
			t.Fatalf("%s: the hub exited 0 on a corrupt database", c.name)
		}
		if countInFile(logPath, "hub database is corrupt") == 0 || countInFile(logPath, "restore") == 0 {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s: the hub's message does not say the database is corrupt and how to fix it:\n%s", c.name, b)
		}
		if after, _ := os.ReadFile(db); !bytes.Equal(after, c.bad) {
			t.Fatalf("%s: the refused database was written to (%d bytes, was %d)", c.name, len(after), len(c.bad))
		}
		os.Remove(logPath) // its error lines are expected; checkLogs scans for panics only
	}
	if err := os.WriteFile(db, sound, 0o600); err != nil {
		t.Fatal(err)
	}
	h.Start(t)
	h.WaitRecords(t, store, n, 30*time.Second)
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, j)})
	h.P.Stop(t)
	checkLogs(t, dir)
}
