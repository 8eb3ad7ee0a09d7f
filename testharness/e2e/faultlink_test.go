package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/faultproxy"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// TestThroughFaultyLink: 3,000 records at a steady 100/s while a fault-injecting proxy between
// the agent and the hub's embedded broker applies, in turn, latency with jitter, a bandwidth
// limit, a cut of every connection, a cut in the middle of a packet, lost hub→agent messages
// (the hub's acks; the broker's PUBACKs still arrive) and a half-open link. Afterwards every
// record is at the hub exactly once.
func TestThroughFaultyLink(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	px, err := faultproxy.New(faultproxy.Options{Target: h.MQTT, MQTT: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	const store, total = "S040", 3000
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+px.Addr()), map[string]string{"T1": journal})
	simP := runSim(t, dir, journal, "T1", total, 100, 40)
	ag := startAgent(t, dir, store, cfg)
	h.WaitAtLeast(t, store, 100, 30*time.Second)

	agentLog := filepath.Join(dir, "agent-"+store+".log")
	phase := func(name string) {
		t.Logf("%s: %s; hub has %d records; proxy %+v", time.Now().Format("15:04:05.000"), name, h.Records(t, store), px.Stats())
	}

	phase("latency 50ms + jitter 0-100ms per chunk")
	px.SetLatency(50*time.Millisecond, 100*time.Millisecond)
	time.Sleep(4 * time.Second)
	px.Clear()

	phase("bandwidth 16 KiB/s each way")
	px.SetBandwidth(16 << 10)
	time.Sleep(4 * time.Second)
	px.Clear()

	phase("cut every connection")
	if n := px.CutAll(); n == 0 {
		t.Fatal("no connection to cut: the agent is not using the proxy")
	}
	waitLinks(t, px)

	phase("cut in the middle of a packet")
	// With a backlog from the cut, the agent sends 256-record batches (tens of KB): 3,000 bytes
	// from now falls inside a PUBLISH.
	time.Sleep(1500 * time.Millisecond)
	px.CutAfter(faultproxy.Up, 3000)
	eventually(t, 15*time.Second, "the mid-packet cut", func() error {
		if px.CutArmed() {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	waitLinks(t, px)

	phase("drop every PUBLISH hub→agent (the hub's acks) for 7s")
	dupBefore := h.metric(t, "lanebridge_hub_records_duplicate_total")
	timeoutsBefore := countInFile(agentLog, "no ack within ack_timeout")
	appliedBefore := h.Records(t, store)
	px.SetDrop(faultproxy.Down, faultproxy.DropMQTTPublish)
	time.Sleep(7 * time.Second)
	appliedDuring := h.Records(t, store)
	px.Clear()
	if px.Stats().DroppedDown == 0 {
		t.Fatal("no hub→agent PUBLISH was dropped: the ack-loss phase proved nothing")
	}
	if appliedDuring <= appliedBefore {
		t.Fatalf("the hub applied nothing while its acks were lost (%d → %d): the phase proved nothing", appliedBefore, appliedDuring)
	}

	phase("half-open link: nothing forwarded either way, nothing closed, for 8s")
	px.SetBlackhole(true)
	time.Sleep(time.Second) // let what was already past the proxy be applied
	heldBefore := h.Records(t, store)
	time.Sleep(7 * time.Second)
	if held := h.Records(t, store); held != heldBefore {
		t.Fatalf("records reached the hub through a blackholed link (%d → %d)", heldBefore, held)
	}
	px.SetBlackhole(false)
	phase("all faults cleared")

	<-simP.Done
	if simP.Err != nil {
		t.Fatalf("simulator: %v", simP.Err)
	}
	h.WaitRecords(t, store, total, 120*time.Second)
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, journal)})

	// The faults were felt: the agent's ack timeout rewound while acks were lost and the hub
	// deduplicated what was sent again.
	if n := countInFile(agentLog, "no ack within ack_timeout"); n <= timeoutsBefore {
		t.Errorf("the agent never rewound on its ack timeout while acks were lost (%d before, %d after)", timeoutsBefore, n)
	}
	if d := h.metric(t, "lanebridge_hub_records_duplicate_total"); d <= dupBefore {
		t.Errorf("the hub saw no duplicate after lost acks (%v before, %v after): nothing was resent", dupBefore, d)
	}
	st := px.Stats()
	t.Logf("proxy: %+v; duplicates at the hub: %v", st, h.metric(t, "lanebridge_hub_records_duplicate_total"))
	if st.Cut < 2 || st.BlackholedChunks == 0 {
		t.Errorf("faults not all applied: %+v", st)
	}
	ag.Stop(t)
	checkLogs(t, dir)
}

// waitLinks waits until the agent has reconnected through the proxy.
func waitLinks(t testing.TB, px *faultproxy.Proxy) {
	t.Helper()
	eventually(t, 30*time.Second, "the agent to reconnect through the proxy", func() error {
		if px.Stats().ActiveLinks == 0 {
			return fmt.Errorf("no connection")
		}
		return nil
	})
}

func countInFile(path, s string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte(s))
}
