package chaos

import (
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/harness"
)

// Timers on the agent→hub path (agent/internal/uplink, hub/internal/extbroker, the test
// agent.yaml): ack_timeout 3 s, heartbeat 1 s, MQTT keepalive 15 s (hub client 20 s), write
// timeout 15 s, connect retry backoff capped at 30 s. The outage outlasts all of them.
const longestTimer = 30 * time.Second

// TestChaosLongOutage: the hub (and its embedded broker) is SIGKILLed and stays down longer
// than every timer in the path while three terminals write at peak volume — 600 records a
// second short, 1,000 long, 2,500 transactions a business day, so the outage spans several
// business days, time-compressed — and the agent is SIGKILLed and restarted halfway. Then the
// hub returns and the backlog drains: nothing expired, nothing twice, every day's Z matches.
func TestChaosLongOutage(t *testing.T) {
	r := newRun(t, "long-outage")
	const store = "C006"
	journals := r.terminals(store, 3, 2500)
	h, cfg, out := r.embedded(store, journals, nil, "")
	ag := harness.StartAgent(t, r.dir, store, cfg)
	outage, rate := longestTimer+5*time.Second, 600
	if long() {
		outage, rate = 6*longestTimer, 1000
	}
	warm := r.load(100)
	h.WaitAtLeast(t, store, 100, 60*time.Second)
	if err := warm(); err != nil {
		t.Fatal(err)
	}
	h.P.Kill()
	r.fault("hub_sigkill")
	began := time.Now()
	stop := r.load(rate)
	time.Sleep(outage / 2)
	ag.Kill()
	r.fault("agent_sigkill")
	ag = harness.StartAgent(t, r.dir, store, cfg)
	time.Sleep(outage - time.Since(began))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	r.cycles = 1
	r.fault("outage_longer_than_every_timer")
	t.Logf("outage %v (> %v, the longest timer) at %d records/s: %d records emitted", time.Since(began).Round(time.Second), longestTimer, rate, r.h.Captured())
	h.Start(t)
	r.finish(h, out)
	ag.Stop(t)
}
