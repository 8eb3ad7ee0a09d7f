package e2e

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/chaos/chaosout"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// TestTerminalClockJumps: one terminal's clock jumps three days forward, then six days back,
// while it sells (its business dates, in one journal, go 2026-11-26 → 11-29 → 11-23), and the
// agent is SIGKILLed in the middle of the forward segment (so records are sent again). The
// terminal's clock decides nothing but the business day a sale is booked on: every record is
// at the hub exactly once, in capture order (seq follows the journal, receipts ascending
// whatever their dates), and each business day's totals equal what the terminal sold on it.
//
// The agent's and the hub's own clocks cannot be moved by libfaketime (Go binaries read the
// clock through the vDSO and raw syscalls, not libc: checked, `faketime -f +3d` leaves a Go
// binary's time.Now unchanged), so jumps of those clocks are not covered here.
func TestTerminalClockJumps(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	began := time.Now()
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S062"
	j := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": j})
	ag := startAgent(t, dir, store, cfg)

	segments := []struct {
		date  string
		n     int
		first int
	}{
		{"2026-11-26", 300, 1},
		{"2026-11-29", 400, 301}, // +3 days
		{"2026-11-23", 300, 701}, // -6 days: before the first segment
	}
	totals := make([]sim.Totals, len(segments))
	var all sim.Totals
	var sent int64
	for i, sg := range segments {
		seg := filepath.Join(dir, fmt.Sprintf("seg%d", i))
		tot := seg + ".totals.json" // where readTotals(seg) looks
		s := start(t, "lanebridge-sim", filepath.Join(dir, fmt.Sprintf("sim-%d.log", i)), "jsonl", "--out", j,
			"--terminal", "T1", "--date", sg.date, "--count", strconv.Itoa(sg.n), "--rate", "400",
			"--first-receipt", strconv.Itoa(sg.first), "--seed", strconv.Itoa(70+i), "--totals", tot)
		if i == 1 {
			time.Sleep(400 * time.Millisecond)
			ag.Kill() // mid-segment: what was sent but not acknowledged is sent again
			ag = startAgent(t, dir, store, cfg)
		}
		<-s.Done
		if s.Err != nil {
			t.Fatalf("simulator segment %d: %v", i, s.Err)
		}
		totals[i] = readTotals(t, seg)
		mergeTotals(&all, totals[i])
		sent += int64(sg.n)
		h.WaitRecords(t, store, sent, 60*time.Second)
	}
	verify(t, h, store, map[string]sim.Totals{"T1": all})

	recs := h.AllRecords(t, store)
	prev := 0
	for _, r := range recs {
		n, err := strconv.Atoi(r.Receipt)
		if err != nil {
			continue // a record without a receipt number (a Z report)
		}
		if n <= prev {
			t.Fatalf("seq %d has receipt %d after receipt %d: the order followed the terminal's clock, not the capture", r.Seq, n, prev)
		}
		prev = n
	}
	for i, sg := range segments {
		d, err := h.day(store, sg.date)
		if err != nil {
			t.Fatal(err)
		}
		got := map[protocol.Kind]int64{}
		for _, k := range d.Kinds {
			got[protocol.Kind(k.Kind)] = k.Total
		}
		for k, v := range totals[i].Sum {
			if got[k] != v {
				t.Errorf("day %s kind %s: hub total %d, the terminal sold %d", sg.date, k, got[k], v)
			}
		}
	}
	ag.Stop(t)
	checkLogs(t, dir)
	si, err := h.Store(store)
	if err != nil {
		t.Fatal(err)
	}
	res := chaosout.Result{Scenario: "clock-terminal", Seed: 70, Cycles: 1,
		Faults:   map[string]int64{"terminal_clock_forward_3d": 1, "terminal_clock_back_6d": 1, "agent_sigkill": 1},
		Captured: sent, Applied: si.Records, Duplicated: si.Records - sent,
		Replay: "go test -count=1 -run 'TestTerminalClockJumps$' ./testharness/e2e/", DurationS: time.Since(began).Seconds()}
	if p, err := chaosout.Write(res); err != nil {
		t.Error(err)
	} else if p != "" {
		t.Logf("result written to %s", p)
	}
}

func mergeTotals(dst *sim.Totals, src sim.Totals) {
	if dst.Count == nil {
		dst.Count, dst.Sum = map[protocol.Kind]int64{}, map[protocol.Kind]int64{}
	}
	for k, v := range src.Count {
		dst.Count[k] += v
	}
	for k, v := range src.Sum {
		dst.Sum[k] += v
	}
	dst.N += src.N
}

// TestAgentClockJumps: the store PC's clock is three days fast, then (after a SIGKILL) three
// days slow, then right again ($LANEBRIDGE_CLOCK_OFFSET shifts the agent's clock: captured_at,
// retention ages and its status). A wrong clock is an alert, not lost data: the hub raises
// clock_skew while the clock is off and clears it once it is right; every record arrives
// exactly once, seq contiguous in one epoch, though captured_at went back six days mid-stream.
func TestAgentClockJumps(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	began := time.Now()
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	hcfg := writeHubConfig(t, dir, "hub.yaml", "alerts:\n  clock_skew_over: 1m\n  evaluate_every: 200ms\n")
	h := startHub(t, dir, "--config", hcfg)
	const store = "S063"
	j := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT, "--config", hcfg), map[string]string{"T1": j})
	phases := []struct {
		offset string
		kill   bool
	}{{"72h", true}, {"-72h", false}, {"0s", false}}
	var all sim.Totals
	var sent int64
	var ag *proc
	for i, ph := range phases {
		ag = startEnv(t, []string{"LANEBRIDGE_CLOCK_OFFSET=" + ph.offset}, "lanebridge-agent",
			filepath.Join(dir, "agent-"+store+".log"), "run", "--config", cfg)
		seg := filepath.Join(dir, fmt.Sprintf("phase%d", i))
		s := start(t, "lanebridge-sim", filepath.Join(dir, fmt.Sprintf("sim-%d.log", i)), "jsonl", "--out", j,
			"--terminal", "T1", "--date", "2026-11-26", "--count", "300", "--rate", "400",
			"--first-receipt", strconv.Itoa(1+300*i), "--seed", strconv.Itoa(80+i), "--totals", seg+".totals.json")
		<-s.Done
		mergeTotals(&all, readTotals(t, seg))
		sent += 300
		h.WaitRecords(t, store, sent, 60*time.Second)
		open := func() bool {
			for _, a := range h.alerts(t, store, "open") {
				if a.Kind == "clock_skew" {
					return true
				}
			}
			return false
		}
		if ph.offset != "0s" {
			eventually(t, 30*time.Second, "a clock_skew alert for a clock off by "+ph.offset, func() error {
				if !open() {
					return fmt.Errorf("open alerts: %+v", h.alerts(t, store, "open"))
				}
				return nil
			})
		} else {
			eventually(t, 30*time.Second, "the clock_skew alert cleared once the clock is right", func() error {
				if open() {
					return errors.New("still open")
				}
				return nil
			})
		}
		if ph.kill {
			ag.Kill()
		} else if i < len(phases)-1 {
			ag.Stop(t)
		}
	}
	verify(t, h, store, map[string]sim.Totals{"T1": all})
	recs := h.AllRecords(t, store)
	if fast, slow := recs[299].CapturedAt, recs[300].CapturedAt; !slow.Before(fast.Add(-5 * 24 * time.Hour)) {
		t.Errorf("captured_at of seq 300 %v and 301 %v: the agent's clock did not go back six days", fast, slow)
	}
	ag.Stop(t)
	checkLogs(t, dir)
	res := chaosout.Result{Scenario: "clock-agent", Seed: 80, Cycles: len(phases),
		Faults:   map[string]int64{"agent_clock_forward_3d": 1, "agent_clock_back_6d": 1, "agent_sigkill": 1},
		Captured: sent, Applied: int64(len(recs)), Duplicated: int64(len(recs)) - sent,
		Replay: "go test -count=1 -run 'TestAgentClockJumps$' ./testharness/e2e/", DurationS: time.Since(began).Seconds()}
	if p, err := chaosout.Write(res); err != nil {
		t.Error(err)
	} else if p != "" {
		t.Logf("result written to %s", p)
	}
}
