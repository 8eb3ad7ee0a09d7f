package chaos

import (
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/faultproxy"
	"github.com/lanebridge/lanebridge/testharness/harness"
)

// TestChaosFaultLink: the fault proxy sits between the agent and the hub's broker; each cycle
// injects one link fault chosen at random — latency with jitter, a bandwidth cap, every
// connection cut, a cut in the middle of a packet, a half-open link (nothing forwarded,
// nothing closed), the hub's acks dropped — for a random while, and in a third of the cycles
// also SIGKILLs the agent during it; two terminals write 150 records a second.
func TestChaosFaultLink(t *testing.T) {
	r := newRun(t, "fault-link")
	const store = "C005"
	journals := r.terminals(store, 2, 1200)
	var px *faultproxy.Proxy
	h, cfg, out := r.embedded(store, journals, func(mqtt string) string {
		var err error
		if px, err = faultproxy.New(faultproxy.Options{Target: mqtt, MQTT: true}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { px.Close() })
		return "tcp://" + px.Addr()
	}, "")
	ag := harness.StartAgent(t, r.dir, store, cfg)
	stop := r.load(150)
	r.cycles = cycles(t, 20, 500)
	faults := []string{"latency", "bandwidth", "cut_all", "cut_mid_packet", "half_open", "drop_acks"}
	for range r.cycles {
		time.Sleep(r.between(200*time.Millisecond, time.Second))
		f := faults[r.rng.IntN(len(faults))]
		switch f {
		case "latency":
			px.SetLatency(r.between(10*time.Millisecond, 300*time.Millisecond), r.between(time.Millisecond, 200*time.Millisecond))
		case "bandwidth":
			px.SetBandwidth(int64(1<<10 + r.rng.IntN(32<<10)))
		case "cut_all":
			px.CutAll()
		case "cut_mid_packet":
			px.CutAfter(faultproxy.Up, int64(100+r.rng.IntN(20000)))
		case "half_open":
			px.SetBlackhole(true)
		case "drop_acks":
			if err := px.SetDrop(faultproxy.Down, faultproxy.DropMQTTPublish); err != nil {
				t.Fatal(err)
			}
		}
		r.fault(f)
		hold := r.between(300*time.Millisecond, 2500*time.Millisecond)
		if r.rng.IntN(3) == 0 {
			time.Sleep(hold / 2)
			ag.Kill()
			r.fault("agent_sigkill")
			ag = harness.StartAgent(t, r.dir, store, cfg)
			time.Sleep(hold / 2)
		} else {
			time.Sleep(hold)
		}
		px.Clear()
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := px.Stats()
	t.Logf("proxy: %+v", st)
	if st.Cut == 0 || st.Accepted < 2 {
		t.Errorf("the link faults were not felt: %+v", st)
	}
	r.finish(h, out)
	ag.Stop(t)
}
