package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/chaos/chaosout"
	"github.com/lanebridge/lanebridge/testharness/harness"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// TestHubClockJumps: the hub's own clock is three days fast, then (after a SIGKILL of the hub)
// three days slow, then (after a clean restart) right, while one agent with a right clock feeds
// it ($LANEBRIDGE_CLOCK_OFFSET shifts the hub's wall clock: received and status timestamps,
// alerts, retention, the close scheduler). Every record is applied exactly once, seq contiguous;
// the store-day is closed by its business date, whatever day the hub's clock says it is (the
// scheduler's closes of the hub's wall-clock "yesterday" hold none of the records); the hub
// raises clock_skew while its clock is off, naming the direction, and clears it once right.
func TestHubClockJumps(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	began := time.Now()
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	hcfg := writeHubConfig(t, dir, "hub.yaml", "alerts:\n  clock_skew_over: 1m\n  evaluate_every: 200ms\nclose:\n  at: \"00:00\"\n")
	const store, date = "S064", "2026-11-26"
	phases := []struct {
		offset time.Duration
		skew   string // the clock_skew detail while the hub runs at offset ("": none)
		kill   bool   // how the hub ends the phase: SIGKILL, else SIGTERM
	}{{72 * time.Hour, "behind", true}, {-72 * time.Hour, "ahead of", false}, {0, "", false}}
	hubEnv := func(d time.Duration) []string { return []string{"LANEBRIDGE_CLOCK_OFFSET=" + d.String()} }
	// the store is added before the hub starts, so the scheduler's first pass (at start) sees it
	h := &hub{harness.NewHub(t, dir, "--config", hcfg)}
	j := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT, "--config", hcfg), map[string]string{"T1": j})
	h.Env = hubEnv(phases[0].offset)
	h.Start(t)
	ag := startAgent(t, dir, store, cfg)
	var all sim.Totals
	var sent int64
	var wallDays []string // the hub's wall-clock "yesterday" in the shifted phases
	for i, ph := range phases {
		if i > 0 {
			h.Env = hubEnv(ph.offset)
			h.Start(t)
		}
		seg := filepath.Join(dir, fmt.Sprintf("phase%d", i))
		s := start(t, "lanebridge-sim", filepath.Join(dir, fmt.Sprintf("sim-%d.log", i)), "jsonl", "--out", j,
			"--terminal", "T1", "--date", date, "--count", "300", "--rate", "400",
			"--first-receipt", strconv.Itoa(1+300*i), "--seed", strconv.Itoa(90+i), "--totals", seg+".totals.json")
		<-s.Done
		if s.Err != nil {
			t.Fatalf("simulator phase %d: %v", i, s.Err)
		}
		mergeTotals(&all, readTotals(t, seg))
		sent += 300
		h.WaitRecords(t, store, sent, 60*time.Second)
		if ph.skew != "" {
			eventually(t, 30*time.Second, "a clock_skew alert with the hub's clock off by "+ph.offset.String(), func() error {
				if d := skewDetail(t, h, store); !strings.Contains(d, "agent clock "+ph.skew+" the hub's") {
					return fmt.Errorf("clock_skew detail %q, want %q", d, ph.skew)
				}
				return nil
			})
			// the scheduler closes the previous day of the hub's (shifted) wall clock
			wd := time.Now().Add(ph.offset).AddDate(0, 0, -1).Format(time.DateOnly)
			wallDays = append(wallDays, wd)
			eventually(t, 30*time.Second, "the scheduler's close of "+wd, func() error {
				_, err := h.Get("/api/v1/stores/" + store + "/days/" + wd + "/close")
				return err
			})
		} else {
			eventually(t, 30*time.Second, "the clock_skew alert cleared once the hub's clock is right", func() error {
				if d := skewDetail(t, h, store); d != "" {
					return fmt.Errorf("still open: %s", d)
				}
				return nil
			})
		}
		if i < len(phases)-1 {
			if ph.kill {
				h.P.Kill()
			} else {
				h.P.Stop(t)
			}
		}
	}
	verify(t, h, store, map[string]sim.Totals{"T1": all})
	for _, wd := range wallDays {
		d, err := h.day(store, wd)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Kinds) != 0 {
			t.Errorf("day %s (the hub's wall clock) holds records: %+v", wd, d.Kinds)
		}
	}
	body, err := h.Post("/api/v1/stores/"+store+"/days/"+date+"/close", nil)
	if err != nil {
		t.Fatalf("close %s: %v", date, err)
	}
	var closed struct {
		BusinessDate string `json:"business_date"`
		State        string `json:"state"`
		Issues       []struct{ Reason, Detail string }
	}
	if err := json.Unmarshal(body, &closed); err != nil {
		t.Fatal(err)
	}
	for _, is := range closed.Issues {
		if is.Reason == "missing_receipts" || is.Reason == "duplicate_receipt" {
			t.Errorf("close of %s: %s: %s", date, is.Reason, is.Detail)
		}
	}
	d, err := h.day(store, date)
	if err != nil {
		t.Fatal(err)
	}
	got := map[protocol.Kind]int64{}
	for _, k := range d.Kinds {
		got[protocol.Kind(k.Kind)] = k.Total
	}
	for k, v := range all.Sum {
		if got[k] != v {
			t.Errorf("day %s kind %s: hub total %d, the terminal sold %d", date, k, got[k], v)
		}
	}
	t.Logf("close of %s: state %s, issues %+v", date, closed.State, closed.Issues)
	ag.Stop(t)
	checkLogs(t, dir)
	si, err := h.Store(store)
	if err != nil {
		t.Fatal(err)
	}
	res := chaosout.Result{Scenario: "clock-hub", Seed: 90, Cycles: len(phases),
		Faults:   map[string]int64{"hub_clock_forward_3d": 1, "hub_clock_back_6d": 1, "hub_sigkill": 1},
		Captured: sent, Applied: si.Records, Duplicated: si.Records - sent,
		Replay: "go test -count=1 -run 'TestHubClockJumps$' ./testharness/e2e/", DurationS: time.Since(began).Seconds()}
	if p, err := chaosout.Write(res); err != nil {
		t.Error(err)
	} else if p != "" {
		t.Logf("result written to %s", p)
	}
}

// skewDetail is the detail of the store's open clock_skew alert, "" when none is open.
func skewDetail(t testing.TB, h *hub, store string) string {
	t.Helper()
	b, err := h.Get("/api/v1/alerts?state=open&store=" + store)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Alerts []struct{ Kind, Detail string }
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.Alerts {
		if a.Kind == "clock_skew" {
			return a.Detail
		}
	}
	return ""
}
