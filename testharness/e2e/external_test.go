package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/sim"
)

// TestBrokerOutage: a real, locked-down (exported ACL) external broker is stopped for a while
// mid-stream, then comes back.
func TestBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	const store = "S003"
	lb := startLockedBroker(t, dir, dir, "", store)
	h := startHub(t, dir, "--config", lb.HubCfg)
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, lb.Agents[store], map[string]string{"T1": journal})
	simP := runSim(t, dir, journal, "T1", 3000, 300, 4)
	ag := startAgent(t, dir, store, cfg)

	h.WaitAtLeast(t, store, 300, 30*time.Second)
	lb.MQ.Stop()
	t.Log("broker stopped")
	before, _ := h.Store(store)
	time.Sleep(4 * time.Second)
	lb.MQ.Start(t)
	t.Log("broker restarted")
	<-simP.Done
	h.WaitRecords(t, store, 3000, 90*time.Second)
	if before.Records >= 3000 {
		t.Fatalf("the outage happened after everything was delivered (%d): test proves nothing", before.Records)
	}
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, journal)})
	ag.Stop(t)
	checkLogs(t, dir)
	lb.CheckLockedDown(t, dir)
}

// TestReplicasOnPostgres: a private Mosquitto locked down with the exported ACL, two hub
// replicas sharing one PostgreSQL schema through a shared subscription; one replica is
// SIGKILLed mid-stream. Every record is applied exactly once.
func TestReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	pg := os.Getenv("LANEBRIDGE_TEST_PG_URL")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	suffix := fmt.Sprintf("%x", rand.Uint32())
	schema := "lbe2e_" + suffix
	t.Cleanup(func() { dropSchema(pg, schema) })

	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.MkdirAll(dirA, 0o755)
	os.MkdirAll(dirB, 0o755)
	store := "E" + suffix
	lb := startLockedBroker(t, dir, dirA, fmt.Sprintf("  shared_group: lb-%s\nstore:\n  postgres_url: %s&search_path=%s\n", suffix, pg, schema), store)
	hA := startHub(t, dirA, "--config", lb.HubCfg)
	hB := startHub(t, dirB, "--config", lb.HubCfg)
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, lb.Agents[store], map[string]string{"T1": journal})
	simP := runSim(t, dir, journal, "T1", 3000, 300, 5)
	ag := startAgent(t, dir, store, cfg)
	hB.WaitAtLeast(t, store, 500, 60*time.Second)
	hA.P.Kill()
	t.Log("replica A SIGKILLed")
	<-simP.Done
	hB.WaitRecords(t, store, 3000, 120*time.Second)
	verify(t, hB, store, map[string]sim.Totals{"T1": readTotals(t, journal)})
	ag.Stop(t)
	checkLogs(t, dir)
	lb.CheckLockedDown(t, dir)
}

func dropSchema(pg, schema string) {
	cmd := exec.Command("psql", pg, "-c", "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	cmd.Run()
}
