package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/harness"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// TestSoakLongOutage is a time-compressed multi-day outage (promise 5 of
// agent/internal/spool/GUARANTEES.md): three stores' worth of business days
// (LANEBRIDGE_SOAK_RECORDS per terminal, default 100,000, three terminals) are captured while the hub is down, the agent is restarted twice during the
// outage, then the hub comes back and everything drains: nothing expired, nothing twice.
// It runs only under `make soak` (LANEBRIDGE_SOAK=1): it takes minutes, not seconds.
func TestSoakLongOutage(t *testing.T) {
	if os.Getenv("LANEBRIDGE_SOAK") != "1" {
		t.Skip("soak test: run with make soak (LANEBRIDGE_SOAK=1)")
	}
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("LANEBRIDGE_SOAK_RECORDS")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := &hub{&harness.Hub{Dir: dir, HTTP: freeAddr(t), MQTT: freeAddr(t)}}
	const store = "S950"
	journals := map[string]string{}
	for _, term := range []string{"T1", "T2", "T3"} {
		journals[term] = filepath.Join(dir, term+".jsonl")
	}
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), journals)
	listen := agentListenT(t, cfg)
	want := map[string]sim.Totals{}
	ag := startAgent(t, dir, store, cfg)
	for i, term := range []string{"T1", "T2", "T3"} {
		p := runSim(t, dir, journals[term], term, n, 0, 100+i)
		<-p.Done
		want[term] = readTotals(t, journals[term])
		ag.Kill() // a store PC rebooting during the outage
		ag = startAgent(t, dir, store, cfg)
	}
	total := uint64(3 * n)
	eventually(t, 20*time.Minute, "the whole outage captured", func() error {
		st, err := agentStatus(listen)
		if err != nil {
			return err
		}
		if st.LastSeq != total {
			return fmt.Errorf("captured %d of %d", st.LastSeq, total)
		}
		return nil
	})
	t0 := time.Now()
	h.Start(t)
	h.WaitRecords(t, store, int64(total), 30*time.Minute)
	t.Logf("drained %d records in %v after the outage", total, time.Since(t0).Round(time.Second))
	verify(t, h, store, want)
	ag.Stop(t)
	checkLogs(t, dir)
}

func agentListenT(t *testing.T, cfgPath string) string {
	t.Helper()
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, l := range splitLines(string(data)) {
		if _, err := fmt.Sscanf(l, "listen: %s", &addr); err == nil {
			return addr
		}
	}
	t.Fatal("no listen in agent config")
	return ""
}
