// Package e2e runs the real lanebridge binaries as processes and checks the delivery promise
// (agent/internal/spool/GUARANTEES.md) under faults: agent SIGKILLs, broker outages, hub
// restarts, replica failover on PostgreSQL, and cross-store publishes.
package e2e

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/sim"
)

// TestAgentKilledRepeatedly: 5,000 records while the agent is SIGKILLed 10 times at random.
func TestAgentKilledRepeatedly(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S001"
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": journal})

	simP := runSim(t, dir, journal, "T1", 5000, 400, 1)
	ag := startAgent(t, dir, store, cfg)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range 10 {
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		ag.Kill()
		t.Logf("agent SIGKILLed (%d/10)", i+1)
		ag = startAgent(t, dir, store, cfg)
	}
	<-simP.Done
	if simP.Err != nil {
		t.Fatalf("simulator: %v", simP.Err)
	}
	h.WaitRecords(t, store, 5000, 90*time.Second)
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, journal)})
	ag.Stop(t)
	checkLogs(t, dir)
}

// TestHubKilledAndRestarted: the hub (and with it the embedded broker) is SIGKILLed mid-stream.
func TestHubKilledAndRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S002"
	j1, j2 := filepath.Join(dir, "T1.jsonl"), filepath.Join(dir, "T2.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": j1, "T2": j2})
	s1, s2 := runSim(t, dir, j1, "T1", 2000, 300, 2), runSim(t, dir, j2, "T2", 2000, 300, 3)
	ag := startAgent(t, dir, store, cfg)
	for i := range 3 {
		time.Sleep(1500 * time.Millisecond)
		h.P.Kill()
		t.Logf("hub SIGKILLed (%d/3)", i+1)
		time.Sleep(time.Duration(500*(i+1)) * time.Millisecond)
		h.Start(t)
	}
	<-s1.Done
	<-s2.Done
	h.WaitRecords(t, store, 4000, 120*time.Second)
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, j1), "T2": readTotals(t, j2)})
	ag.Stop(t)
	checkLogs(t, dir)
}

// TestStoreCannotPublishForAnother: credentials of one store cannot inject into another's stream.
func TestStoreCannotPublishForAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	y1 := enroll(t, dir, "S010", "tcp://"+h.MQTT)
	enroll(t, dir, "S011", "tcp://"+h.MQTT)
	pw := passwordOf(t, y1)
	err := publishAs(t, h.MQTT, "S010", pw, "lanebridge/v1/S011/up/records", forgedBatch(t, "S011"))
	if err == nil {
		t.Log("broker accepted the TCP publish; checking that nothing was applied")
	}
	// A legitimate publish by S010 on its own topic still works, proving the path is live.
	if err := publishAs(t, h.MQTT, "S010", pw, "lanebridge/v1/S010/up/records", forgedBatch(t, "S010")); err != nil {
		t.Fatalf("own-topic publish failed: %v", err)
	}
	h.WaitRecords(t, "S010", 1, 20*time.Second)
	si, err := h.Store("S011")
	if err != nil {
		t.Fatal(err)
	}
	if si.Records != 0 {
		t.Fatalf("S011 has %d records injected by S010's credentials", si.Records)
	}
	// Wrong password is refused.
	if err := publishAs(t, h.MQTT, "S010", pw+"x", "lanebridge/v1/S010/up/records", forgedBatch(t, "S010")); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("wrong password: err = %v, want a refused connect", err)
	}
	checkLogs(t, dir)
}

func passwordOf(t testing.TB, agentYAML string) string {
	for _, l := range strings.Split(agentYAML, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "password:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no password in agent.yaml")
	return ""
}
