package chaos

import (
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/harness"
)

// TestChaosHubBrokerKill: the hub and the external broker (a private Mosquitto locked down
// with the files `lanebridge-hub export mosquitto` writes) are SIGKILLed at random — the hub,
// the broker or both at once — and restarted while two terminals write 150 records a second.
// Mosquitto runs without persistence, so a killed broker forgets whatever it had queued.
func TestChaosHubBrokerKill(t *testing.T) {
	r := newRun(t, "hub-broker-kill")
	const store = "C002"
	journals := r.terminals(store, 2, 1200)
	erp, out := r.erpYAML()
	lb := harness.StartLockedBroker(t, r.dir, r.dir, erp, store)
	h := harness.StartHub(t, r.dir, "--config", lb.HubCfg)
	ag := harness.StartAgent(t, r.dir, store, harness.AgentConfig(t, r.dir, store, lb.Agents[store], journals))
	stop := r.load(150)
	r.cycles = cycles(t, 12, 200)
	for range r.cycles {
		time.Sleep(r.between(300*time.Millisecond, 1500*time.Millisecond))
		victim := []string{"hub", "broker", "both"}[r.rng.IntN(3)]
		if victim != "broker" {
			h.P.Kill()
			r.fault("hub_sigkill")
		}
		if victim != "hub" {
			lb.MQ.Kill()
			r.fault("broker_sigkill")
		}
		time.Sleep(r.between(10*time.Millisecond, time.Second))
		if victim != "hub" {
			lb.MQ.Start(t)
		}
		if victim != "broker" {
			h.Start(t)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	r.finish(h, out)
	ag.Stop(t)
	lb.CheckLockedDown(t, r.dir)
}
