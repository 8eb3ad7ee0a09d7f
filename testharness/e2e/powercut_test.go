package e2e

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/chaos/chaosout"
	"github.com/lanebridge/lanebridge/testharness/chaos/powercut"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// TestPowerCut: the agent's data_dir is a powercut disk (a FUSE file system that keeps only
// what was fsynced; see package powercut). A terminal writes its journal (on the ordinary disk:
// the terminal is another device) while the power of the store PC is cut at random moments:
// the disk stops, the agent is SIGKILLed, everything it did not sync is dropped (all of it, or
// a random subset of its sectors), and the disk comes back. Before each cut the harness notes
// what the agent had acknowledged as captured (its status's last_seq) and what the hub had
// applied; after it, `lanebridge-agent check` must find a sound spool with the same epoch and
// at least that last seq, before the agent restarts. In the end every record the terminal wrote
// is at the hub exactly once, seq contiguous in one epoch, totals to the cent, and the hub saw
// no hash conflict (a seq captured twice with different content would be one).
//
// The lying-disk variant runs the same cycles on a disk whose fsyncs do nothing: the checks
// must then find lost records, or this test could not fail.
func TestPowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	if err := powercut.Supported(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	seed, err := chaosout.Seed("LANEBRIDGE_POWERCUT_SEED")
	if err != nil {
		t.Fatal(err)
	}
	cycles := 6
	if chaosout.Long() {
		cycles = 100
	}
	replay := fmt.Sprintf("LANEBRIDGE_POWERCUT_SEED=%d go test -count=1 -run 'TestPowerCut$' ./testharness/e2e/", seed)
	t.Logf("seed %d; replay (same fault schedule, timing differs): %s", seed, replay)
	t.Run("honest-disk", func(t *testing.T) {
		res := powerCutRun(t, seed, cycles, powercut.Options{})
		res.Replay = replay
		if res.Lost != 0 || res.Duplicated != 0 {
			t.Errorf("lost %d, duplicated %d: want 0 (replay: %s)", res.Lost, res.Duplicated, replay)
		}
		if p, err := chaosout.Write(res); err != nil {
			t.Error(err)
		} else if p != "" {
			t.Logf("result written to %s", p)
		}
	})
	t.Run("lying-disk", func(t *testing.T) {
		res := powerCutRun(t, seed, 2, powercut.Options{IgnoreFsync: true})
		if res.Lost == 0 {
			t.Fatalf("a disk that ignores fsync lost nothing across %d cuts: the harness cannot see a loss", res.Cycles)
		}
		t.Logf("as it must, the lying disk lost %d acknowledged records", res.Lost)
	})
}

// powerCutRun runs the cycles and returns the result. On an honest disk every check failure
// is a test failure; on a lying one (o.IgnoreFsync) the losses are only counted.
func powerCutRun(t *testing.T, seed uint64, cycles int, o powercut.Options) chaosout.Result {
	began := time.Now()
	honest := !o.IgnoreFsync
	rng := rand.New(rand.NewPCG(seed, 13))
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S061"
	j := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": j})
	dataDir := filepath.Join(dir, "agent-"+store)
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	disk := powercut.NewDisk(o)
	m, err := powercut.MountDisk(dataDir, disk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Error(err)
		}
	})

	// The terminal writes all through the cycles (about 3 s each at 100 records/s).
	n := cycles*300 + 200
	s := runSim(t, dir, j, "T1", n, 100, int(seed%1000))
	res := chaosout.Result{Scenario: "powercut", Seed: seed, Cycles: cycles, Faults: map[string]int64{}}
	lose := func(format string, args ...any) {
		if honest {
			t.Errorf(format, args...)
		} else {
			t.Logf("lying disk: "+format, args...)
		}
	}
	var epoch string
	var acked uint64
	for c := 0; c < cycles; c++ {
		ag := startAgent(t, dir, store, cfg)
		var st localAgentStatus
		eventually(t, 30*time.Second, "the agent's status", func() (err error) {
			if ag.Exited() {
				t.Fatalf("cycle %d: the agent exited: %v", c, ag.Err)
			}
			st, err = localStatusOf(cfg)
			return err
		})
		if c > 0 && (st.Epoch != epoch || st.LastSeq < acked) {
			lose("cycle %d: after the cut the agent starts at epoch %s last_seq %d; it had acknowledged epoch %s last_seq %d", c, st.Epoch, st.LastSeq, epoch, acked)
		}
		if hasAlarm(st.Alarms, "corrupt") {
			lose("cycle %d: the spool was judged corrupt after a power cut: %q", c, st.Alarms)
		}
		if epoch == "" {
			epoch = st.Epoch
		}
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		if st, err = localStatusOf(cfg); err != nil {
			t.Fatalf("cycle %d: status: %v", c, err)
		}
		applied := appliedThrough(t, h, store, st.Epoch)
		if st.Epoch == epoch {
			acked = max(st.LastSeq, applied)
		} else {
			epoch, acked = st.Epoch, max(st.LastSeq, applied)
		}

		mode := powercut.Mode(rng.IntN(2))
		res.Faults["power_cut_"+mode.String()]++
		// The power goes at a random write, truncate or sync of the next few (inside a commit),
		// or after 3 s. What the agent acknowledged up to then is read before the SIGKILL: its
		// commits after the cut fail, so its status then is what it had captured.
		hit, err := m.PowerCutAfter(1+rng.IntN(40), 3*time.Second, mode, rng, func() {
			if st2, err := localStatusOf(cfg); err == nil && st2.Epoch == epoch {
				acked = max(acked, st2.LastSeq)
			}
			acked = max(acked, appliedThrough(t, h, store, epoch))
			ag.Kill()
		})
		if err != nil {
			t.Fatalf("cycle %d: %v", c, err)
		}
		if hit {
			res.Faults["power_cut_mid_write"]++
		}
		res.Captured = max(res.Captured, int64(acked))
		// The durable spool, read by the agent's own full check before anything writes to it.
		ep, last, err := checkSpool(cfg)
		switch {
		case err != nil:
			lose("cycle %d (%v cut): %v; acknowledged epoch %s last_seq %d", c, mode, err, epoch, acked)
			res.Lost += int64(acked)
		case ep != epoch || last < acked:
			lose("cycle %d (%v cut): the durable spool has epoch %s last seq %d; acknowledged epoch %s last_seq %d", c, mode, ep, last, epoch, acked)
			if ep != epoch {
				res.Lost += int64(acked)
			} else {
				res.Lost += int64(acked - last)
			}
		default:
			t.Logf("cycle %d (%v cut): acknowledged %d, durable %d", c, mode, acked, last)
		}
	}
	st := disk.Stats()
	res.Faults["dropped_sectors"], res.Faults["dropped_names"] = st.DroppedSectors, st.DroppedNames
	res.Faults["cuts_that_dropped_unsynced_state"] = st.CutsWithLoss
	if !honest {
		return res
	}

	<-s.Done
	ag := startAgent(t, dir, store, cfg)
	// The backlog left by the last cycles drains at the pace of a shared machine (race builds).
	h.WaitRecords(t, store, int64(n), max(120*time.Second, time.Duration(n/50)*time.Second))
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, j)})
	if ex, err := h.exceptions(store, "hash_conflict"); err != nil || len(ex) > 0 {
		t.Errorf("hash conflicts at the hub (a seq captured twice with different content): %v %v", ex, err)
		res.Lost += int64(len(ex))
	}
	si, err := h.Store(store)
	if err != nil {
		t.Fatal(err)
	}
	res.Applied = si.Records
	res.Captured = int64(n)
	res.Duplicated = si.Records - int64(n)
	ag.Stop(t)
	checkLogs(t, dir)
	res.DurationS = time.Since(began).Seconds()
	t.Logf("%d cycles %v: %d records captured and applied once; disk %+v", cycles, res.Faults, n, st)
	return res
}

// appliedThrough is the hub's applied_through for store's epoch (0 if none yet).
func appliedThrough(t testing.TB, h *hub, store, epoch string) uint64 {
	t.Helper()
	si, err := h.Store(store)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range si.Streams {
		if s.Epoch == epoch {
			return s.AppliedThrough
		}
	}
	return 0
}

var checkOK = regexp.MustCompile(`: OK: (?:\d+ records \(seq \d+\.\.(\d+)\)|no records) checked .*, epoch (\S+), acknowledged`)

// checkSpool runs `lanebridge-agent check` (the full check, read-only) and returns the spool's
// epoch and last seq; a corrupt, missing or unreadable spool is an error.
func checkSpool(cfg string) (epoch string, last uint64, err error) {
	out, err := exec.Command(filepath.Join(binDir, "lanebridge-agent"), "check", "--config", cfg).CombinedOutput()
	if err != nil {
		return "", 0, fmt.Errorf("lanebridge-agent check: %w: %s", err, out)
	}
	mm := checkOK.FindSubmatch(out)
	if mm == nil {
		return "", 0, errors.New("lanebridge-agent check: unexpected output: " + string(out))
	}
	if len(mm[1]) > 0 {
		last, _ = strconv.ParseUint(string(mm[1]), 10, 64)
	}
	return string(mm[2]), last, nil
}
