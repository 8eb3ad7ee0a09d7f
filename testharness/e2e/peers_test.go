package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/harness"
	"github.com/lanebridge/lanebridge/testharness/peers"
)

// lanebridgeOutageKill is OutageKill (testharness/peers) for Lanebridge with the real binaries:
// the hub is down (the link), the agent captures n records from its journal (fsynced), is SIGKILLed
// and started again, then the hub starts; it returns how many records never reached the hub.
func lanebridgeOutageKill(t testing.TB, dir string, n int) (lost int) {
	t.Helper()
	const store = "S910"
	h := &hub{&harness.Hub{Dir: dir, HTTP: freeAddr(t), MQTT: freeAddr(t)}}
	path := filepath.Join(dir, "T1.jsonl")
	writeJournal(t, path, newBenchGen(), n) // the same records the peers carry
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": path})
	listen := agentListen(t, cfg)
	ag := startAgent(t, dir, store, cfg)
	eventually(t, 5*time.Minute, "the outage's records captured", func() error {
		st, err := agentStatus(listen)
		if err == nil && st.LastSeq != uint64(n) {
			err = fmt.Errorf("captured %d of %d", st.LastSeq, n)
		}
		return err
	})
	ag.Kill()
	ag = startAgent(t, dir, store, cfg)
	h.Start(t)
	records := func(testing.TB) int {
		si, err := h.Store(store)
		if err != nil {
			return 0
		}
		return int(si.Records) // the hub applies each (store, epoch, seq) once: distinct
	}
	lost = n - peers.WaitQuiet(t, records, records, n, 60*time.Second) // the agent may be in reconnect back-off
	ag.Stop(t)
	h.P.Stop(t)
	checkLogs(t, dir)
	return lost
}

// outageKillAll runs the SIGKILL-during-an-outage scenario for Lanebridge and every peer on the
// same n records and returns the records each lost.
func outageKillAll(t testing.TB, n int) map[string]int {
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	_, records, _ := peers.Backlog(newBenchGen(), n)
	lost := map[string]int{"lanebridge": lanebridgeOutageKill(t, dir, n)}
	for _, p := range []peers.Peer{
		&peers.NATSLeaf{Dir: filepath.Join(dir, "nats")},
		&peers.MosquittoBridge{Dir: filepath.Join(dir, "mosq_default")},
		&peers.MosquittoBridge{Dir: filepath.Join(dir, "mosq_autosave"), Autosave: true},
	} {
		lost[p.Name()] = peers.OutageKill(t, p, records, 15*time.Second)
	}
	return lost
}

// TestStoreSideKilledDuringOutage is issue 11's loss comparison at a small size
// (LANEBRIDGE_PEERS_N, default 2,000 records): during an outage the store side is SIGKILLed
// after acknowledging every record. Lanebridge must lose nothing; the peers' losses are
// reported (a peer losing data is a finding about it, not a failure).
func TestStoreSideKilledDuringOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binaries and brokers")
	}
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("LANEBRIDGE_PEERS_N")); err == nil && v > 0 {
		n = v
	}
	lost := outageKillAll(t, n)
	for _, name := range []string{"lanebridge", "nats", "mosq_default", "mosq_autosave"} {
		t.Logf("%-14s lost %d of %d records after a SIGKILL of the store side during an outage", name, lost[name], n)
	}
	if lost["lanebridge"] != 0 {
		t.Errorf("Lanebridge lost %d of %d captured records after a SIGKILL of the agent during an outage", lost["lanebridge"], n)
	}
}

// BenchmarkPeers is the full-size comparison: for each peer, the backlog drain rate
// (LANEBRIDGE_BENCH_PEERS_N or else LANEBRIDGE_BENCH_N records, default 100,000; Lanebridge's
// own is BenchmarkDrain) and, for
// Lanebridge and each peer, the records lost after a SIGKILL of the store side during an
// outage of the same size. Mosquitto saving on every change rewrites its whole database per
// change, so its runs use at most LANEBRIDGE_BENCH_AUTOSAVE_N records (default 10,000) and its
// loss is also reported as a fraction (lost_frac_*).
func BenchmarkPeers(b *testing.B) {
	n := benchN()
	if v, err := strconv.Atoi(os.Getenv("LANEBRIDGE_BENCH_PEERS_N")); err == nil && v > 0 {
		n = v
	}
	autosaveN := min(n, 10_000)
	if v, err := strconv.Atoi(os.Getenv("LANEBRIDGE_BENCH_AUTOSAVE_N")); err == nil && v > 0 {
		autosaveN = min(n, v)
	}
	dir := b.TempDir()
	dumpOnFailure(b, dir)
	_, records, _ := peers.Backlog(newBenchGen(), n)
	mk := func(run string) []peers.Peer {
		return []peers.Peer{
			&peers.NATSLeaf{Dir: filepath.Join(dir, run, "nats")},
			&peers.MosquittoBridge{Dir: filepath.Join(dir, run, "mosq_default")},
			&peers.MosquittoBridge{Dir: filepath.Join(dir, run, "mosq_autosave"), Autosave: true},
		}
	}
	size := func(p peers.Peer) [][]byte {
		if p.Name() == "mosq_autosave" {
			return records[:autosaveN]
		}
		return records
	}
	for _, p := range mk("drain") {
		res := peers.Drain(b, p, size(p), 15*time.Minute)
		b.ReportMetric(res.RecordsPer, p.Name()+"-records/s")
		b.ReportMetric(float64(len(size(p)))/res.Publish.Seconds(), p.Name()+"-publish-records/s")
	}
	lbDir := filepath.Join(dir, "lanebridge")
	if err := os.MkdirAll(lbDir, 0o755); err != nil {
		b.Fatal(err)
	}
	lost := lanebridgeOutageKill(b, lbDir, n)
	b.ReportMetric(float64(lost), "lost_lanebridge")
	if lost != 0 {
		b.Errorf("Lanebridge lost %d of %d captured records", lost, n)
	}
	for _, p := range mk("kill") {
		recs := size(p)
		l := peers.OutageKill(b, p, recs, 15*time.Second)
		b.ReportMetric(float64(l), "lost_"+p.Name())
		b.ReportMetric(float64(l)/float64(len(recs)), "lost_frac_"+p.Name())
	}
	b.ReportMetric(float64(n), "records")
}
