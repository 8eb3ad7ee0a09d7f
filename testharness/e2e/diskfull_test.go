package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/sim"
)

// TestSpoolDiskFull: the agent's data_dir is a 64 MiB tmpfs and spool.max_size is 2 MiB. With
// the hub down, a backlog grows past max_size (alarm, capture goes on, nothing evicted); then a
// filler file takes the rest of the tmpfs and new sales arrive. The failed commit is fatal: the
// agent exits non-zero. Once the space is freed and the agent and hub restart, every record —
// those captured before the failure and those written while the agent was down — reaches the
// hub exactly once, and the max_size alarm is an agent_alarm exception there.
func TestSpoolDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs for the agent's data_dir (CI runs this as root)")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S041"
	j0, j1, j2 := filepath.Join(dir, "T0.jsonl"), filepath.Join(dir, "T1.jsonl"), filepath.Join(dir, "T2.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T0": j0, "T1": j1, "T2": j2})
	setSpoolMaxSize(t, cfg, "2MiB")
	dataDir := mountTmpfs(t, filepath.Join(dir, "agent-"+store), "64m")
	h.P.Stop(t)
	t.Log("hub stopped: the agent builds a backlog")

	ag := startAgent(t, dir, store, cfg)
	// A few records are far below max_size: no alarm yet.
	const n0, n1, n2 = 20, 6000, 3000
	s0 := runSim(t, dir, j0, "T0", n0, 1000, 40)
	<-s0.Done
	var st localAgentStatus
	eventually(t, 30*time.Second, fmt.Sprintf("%d records captured", n0), func() (err error) {
		if st, err = localStatusOf(cfg); err == nil && st.LastSeq != n0 {
			err = fmt.Errorf("last_seq %d", st.LastSeq)
		}
		return err
	})
	if hasAlarm(st.Alarms, "max_size") {
		t.Fatalf("a spool of %d records (file %d bytes) already alarms on max_size 2MiB: %q", n0, spoolSize(t, dataDir), st.Alarms)
	}

	s1 := runSim(t, dir, j1, "T1", n1, 3000, 41)
	<-s1.Done
	eventually(t, 60*time.Second, fmt.Sprintf("%d records captured", n0+n1), func() (err error) {
		if st, err = localStatusOf(cfg); err == nil && st.LastSeq != n0+n1 {
			err = fmt.Errorf("last_seq %d", st.LastSeq)
		}
		return err
	})
	if !hasAlarm(st.Alarms, "max_size") {
		t.Fatalf("spool size %d past 80%% of max_size 2MiB but no alarm: %q", spoolSize(t, dataDir), st.Alarms)
	}
	t.Logf("backlog %d, spool file %d bytes, alarms %q", st.Backlog, spoolSize(t, dataDir), st.Alarms)

	filled := fillFS(t, filepath.Join(dataDir, "filler"))
	t.Logf("tmpfs filled with %d bytes", filled)
	s2 := runSim(t, dir, j2, "T2", n2, 500, 42)
	select {
	case <-ag.Done:
	case <-time.After(60 * time.Second):
		t.Fatal("the agent kept running with a full disk: a failed commit must be fatal")
	}
	var ee *exec.ExitError
	if !errors.As(ag.Err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("agent exit: %v, want a non-zero exit after the failed commit", ag.Err)
	}
	if countInFile(ag.Log, "no space left on device") == 0 {
		t.Fatalf("agent exited (%v) but its log does not show the full disk", ag.Err)
	}
	b, _ := os.ReadFile(ag.Log)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "no space left on device") {
			t.Logf("agent exited (%v): %s", ag.Err, l)
			break
		}
	}
	<-s2.Done

	if err := os.Remove(filepath.Join(dataDir, "filler")); err != nil {
		t.Fatal(err)
	}
	h.Start(t)
	ag = startAgent(t, dir, store, cfg)
	h.WaitRecords(t, store, n0+n1+n2, 120*time.Second)
	verify(t, h, store, map[string]sim.Totals{"T0": readTotals(t, j0), "T1": readTotals(t, j1), "T2": readTotals(t, j2)})
	waitException(t, h, store, "agent_alarm", "max_size")
	if m, _ := filepath.Glob(filepath.Join(dataDir, "spool.db.corrupt-*")); len(m) > 0 {
		t.Fatalf("the full disk left a spool judged corrupt: %v", m)
	}
	ag.Stop(t)
	checkLogs(t, dir)
}

// mountTmpfs mounts a tmpfs of the given size at path and unmounts it at cleanup.
func mountTmpfs(t testing.TB, path, size string) string {
	t.Helper()
	if err := os.MkdirAll(path, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", path).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs at %s: %v: %s", path, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", path).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", path, err, out)
			exec.Command("umount", "-l", path).Run()
		}
	})
	return path
}

// fillFS writes path until the file system is full and returns the bytes written.
func fillFS(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			n, err := f.Write(buf)
			total += int64(n)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("fill %s: %v", path, err)
			}
		}
	}
	return total
}

func spoolSize(t testing.TB, dataDir string) int64 {
	fi, err := os.Stat(filepath.Join(dataDir, "spool.db"))
	if err != nil {
		return -1
	}
	return fi.Size()
}

// setSpoolMaxSize rewrites spool.max_size in an agent config.
func setSpoolMaxSize(t testing.TB, cfg, size string) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	found := false
	for i, l := range lines {
		if strings.HasPrefix(l, "  max_size:") {
			lines[i], found = "  max_size: "+size, true
		}
	}
	if !found {
		t.Fatalf("no spool.max_size in %s", cfg)
	}
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

type localAgentStatus struct {
	Epoch     string            `json:"epoch"`
	LastSeq   uint64            `json:"last_seq"`
	LastAck   uint64            `json:"last_ack"`
	Backlog   uint64            `json:"backlog"`
	Alarms    []string          `json:"alarms"`
	Connected bool              `json:"connected"`
	Captured  map[string]uint64 `json:"captured"`
}

// localStatusOf reads the agent's local /status endpoint (its address is the config's listen:).
func localStatusOf(cfg string) (localAgentStatus, error) {
	var st localAgentStatus
	b, err := os.ReadFile(cfg)
	if err != nil {
		return st, err
	}
	var addr string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "listen:"); ok {
			addr = strings.TrimSpace(v)
		}
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func hasAlarm(alarms []string, sub string) bool {
	for _, a := range alarms {
		if strings.Contains(a, sub) {
			return true
		}
	}
	return false
}

type exception struct {
	ID                           int64
	Store, Reason, Detail, State string
}

// waitException waits for an exception of store with reason whose detail contains sub.
func waitException(t testing.TB, h *hub, store, reason, sub string) exception {
	t.Helper()
	var found exception
	eventually(t, 60*time.Second, fmt.Sprintf("a %s exception of %s mentioning %q", reason, store, sub), func() error {
		b, err := h.Get("/api/v1/exceptions?store=" + store + "&reason=" + reason + "&limit=1000")
		if err != nil {
			return err
		}
		var resp struct {
			Exceptions []exception `json:"exceptions"`
		}
		if err := json.Unmarshal(b, &resp); err != nil {
			return err
		}
		for _, e := range resp.Exceptions {
			if strings.Contains(e.Detail, sub) {
				found = e
				return nil
			}
		}
		return fmt.Errorf("exceptions: %+v", resp.Exceptions)
	})
	return found
}

// TestHubDiskFull: the hub's data directory is a 64 MiB tmpfs. Records flow; then a filler
// takes the rest of the tmpfs and more sales arrive. No record may be acknowledged to the
// agent that the hub did not store (the agent's last_ack never passes what the hub serves),
// the hub says why in its log, and once the space is freed (the hub restarted if it stopped)
// every record arrives exactly once.
func TestHubDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs for the hub's data dir (CI runs this as root)")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	hubData := mountTmpfs(t, filepath.Join(dir, "hub"), "64m")
	const store = "S064"
	j1, j2 := filepath.Join(dir, "T1.jsonl"), filepath.Join(dir, "T2.jsonl")
	enrolled := enroll(t, dir, store, "tcp://127.0.0.1:1") // the broker address is set below
	h := startHub(t, dir)
	cfg := agentConfig(t, dir, store, strings.Replace(enrolled, "tcp://127.0.0.1:1", "tcp://"+h.MQTT, 1), map[string]string{"T1": j1, "T2": j2})
	ag := startAgent(t, dir, store, cfg)
	const n1, n2 = 300, 3000
	s1 := runSim(t, dir, j1, "T1", n1, 1000, 51)
	<-s1.Done
	h.WaitRecords(t, store, n1, 60*time.Second)

	filled := fillFS(t, filepath.Join(hubData, "filler"))
	t.Logf("hub's tmpfs filled with %d bytes", filled)
	s2 := runSim(t, dir, j2, "T2", n2, 1000, 52)
	<-s2.Done
	// While the disk is full (at least 5 s, and until the agent has captured everything):
	// whatever the agent counts as acknowledged, the hub has stored.
	minEnd, deadline := time.Now().Add(5*time.Second), time.Now().Add(90*time.Second)
	var st localAgentStatus
	var stored uint64
	for now := time.Now(); now.Before(deadline) && (now.Before(minEnd) || st.LastSeq < n1+n2); now = time.Now() {
		var err error
		if st, err = localStatusOf(cfg); err != nil {
			t.Fatalf("agent status: %v", err)
		}
		if !h.P.Exited() {
			if si, err := h.Store(store); err == nil {
				stored = uint64(si.Records)
			}
		}
		if st.LastAck > stored {
			t.Fatalf("the agent holds an ack through seq %d but the hub stored %d records: acknowledged without storing", st.LastAck, stored)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.LastSeq != n1+n2 {
		t.Fatalf("the agent captured %d, want %d: capture must go on while the hub's disk is full", st.LastSeq, n1+n2)
	}
	if st.LastAck >= n1+n2 {
		t.Fatalf("every record acknowledged (%d) though the hub's disk is full (filler %d bytes): the fill did not bite", st.LastAck, filled)
	}
	full := countInFile(h.P.Log, "no space left on device") + countInFile(h.P.Log, "database or disk is full")
	if full == 0 {
		t.Errorf("the hub's log does not say its disk is full")
	}
	t.Logf("disk full: agent captured %d, acknowledged %d, backlog %d; hub stored %d, exited %v; %d log lines name the full disk",
		st.LastSeq, st.LastAck, st.Backlog, stored, h.P.Exited(), full)

	if err := os.Remove(filepath.Join(hubData, "filler")); err != nil {
		t.Fatal(err)
	}
	if h.P.Exited() {
		t.Logf("the hub exited on the full disk (%v); restarting it", h.P.Err)
		h.Start(t)
	}
	h.WaitRecords(t, store, n1+n2, 120*time.Second)
	// The backlog drained first: the hub is then idle, and the full read below is not slowed
	// by resends still being applied (a race build on a shared machine).
	eventually(t, 60*time.Second, "the agent's backlog drained", func() error {
		st, err := localStatusOf(cfg)
		if err == nil && st.Backlog != 0 {
			err = fmt.Errorf("backlog %d", st.Backlog)
		}
		return err
	})
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, j1), "T2": readTotals(t, j2)})
	ag.Stop(t)
	h.P.Stop(t)
	checkLogs(t, dir)
}
