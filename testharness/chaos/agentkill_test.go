package chaos

import (
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/harness"
)

// TestChaosAgentKill: the agent is SIGKILLed at random moments while two terminals write 200
// records a second (≥ 50 cycles short, ≥ 1,000 long): after every kill it starts again,
// between a few milliseconds (still opening its spool) and most of a second (mid-batch) later.
func TestChaosAgentKill(t *testing.T) {
	r := newRun(t, "agent-kill")
	const store = "C001"
	journals := r.terminals(store, 2, 1500)
	h, cfg, out := r.embedded(store, journals, nil, "")
	stop := r.load(200)
	r.cycles = cycles(t, 50, 1000)
	for range r.cycles {
		ag := harness.StartAgent(t, r.dir, store, cfg)
		time.Sleep(r.between(20*time.Millisecond, 700*time.Millisecond))
		ag.Kill()
		r.fault("agent_sigkill")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ag := harness.StartAgent(t, r.dir, store, cfg)
	r.finish(h, out)
	ag.Stop(t)
}
