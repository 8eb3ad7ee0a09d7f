package update

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

func opts(dir, version string) Options {
	return Options{DataDir: dir, Store: "S001", Channel: "stable", HealthTimeout: time.Second, Enabled: true,
		Version: version, Exe: filepath.Join(dir, "agent")}
}

// After the swap the new binary counts its starts in the pending file; past MaxStarts without
// becoming healthy (a crash loop, a power cut each time) the previous binary is restored.
func TestStartupAfterSwapCountsStartsThenRestores(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "agent")
	os.WriteFile(exe, []byte("v2"), 0o755)
	os.WriteFile(exe+".old", []byte("v1"), 0o755)
	p := Pending{Phase: PhaseSwapped, CommandID: "c1", Version: "v2.0.0", From: "v1.0.0", Target: exe, Old: exe + ".old"}
	if err := writeJSON(filepath.Join(dir, pendingFile), p); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= MaxStarts; i++ {
		u, err := New(opts(dir, "v2.0.0"))
		if err != nil {
			t.Fatal(err)
		}
		act, err := u.Startup()
		if err != nil || act != Run {
			t.Fatalf("start %d: %v %v", i, act, err)
		}
		if pp, _ := u.PostSwap(); pp == nil || pp.Starts != i {
			t.Fatalf("start %d: post-swap %+v", i, pp)
		}
		if r := u.Report(); r != nil && r.State == protocol.UpdateHealthy {
			t.Fatal("healthy before Healthy")
		}
	}
	u, _ := New(opts(dir, "v2.0.0"))
	act, err := u.Startup()
	if err != nil || act != ExecOld {
		t.Fatalf("start %d: %v %v", MaxStarts+1, act, err)
	}
	if b, _ := os.ReadFile(exe); string(b) != "v1" {
		t.Fatalf("target holds %q after the restore", b)
	}
	r := u.Report()
	if r.State != protocol.UpdateRolledBack || !strings.Contains(r.Detail, "did not report healthy in 3 starts") {
		t.Fatalf("report %+v", r)
	}
	// v1 runs again: no pending file, v2 never retried, the highest run stays v1.
	u, _ = New(opts(dir, "v1.0.0"))
	if act, err := u.Startup(); err != nil || act != Run {
		t.Fatal(act, err)
	}
	if _, err := os.Stat(filepath.Join(dir, pendingFile)); !os.IsNotExist(err) {
		t.Fatal("pending file left")
	}
	if u.st.Highest != "v1.0.0" || !containsStr(u.st.Failed, "v2.0.0") {
		t.Fatalf("state %+v", u.st)
	}
}

// A healthy new binary completes the update: healthy report, highest version, no pending file.
func TestHealthyAfterSwapCompletes(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "agent")
	p := Pending{Phase: PhaseSwapped, CommandID: "c1", Version: "v2.0.0", From: "v1.0.0", Target: exe, Old: exe + ".old"}
	writeJSON(filepath.Join(dir, pendingFile), p)
	os.WriteFile(filepath.Join(dir, "update-v2.0.0.bin"), []byte("x"), 0o755)
	u, _ := New(opts(dir, "v2.0.0"))
	if _, err := u.Startup(); err != nil {
		t.Fatal(err)
	}
	if err := u.Healthy(); err != nil {
		t.Fatal(err)
	}
	if r := u.Report(); r.State != protocol.UpdateHealthy || r.Version != "v2.0.0" || r.From != "v1.0.0" || r.CommandID != "c1" {
		t.Fatalf("report %+v", r)
	}
	if pp, _ := u.PostSwap(); pp != nil {
		t.Fatal("still post-swap")
	}
	if _, err := os.Stat(filepath.Join(dir, pendingFile)); !os.IsNotExist(err) {
		t.Fatal("pending file left")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "update-*.bin")); len(m) != 0 {
		t.Fatal("staged binary left")
	}
	u2, _ := New(opts(dir, "v2.0.0"))
	if u2.st.Highest != "v2.0.0" || u2.Report().State != protocol.UpdateHealthy {
		t.Fatalf("state after restart %+v", u2.st)
	}
}

// A power cut during the trial (or before the swap completed) restarts the old binary, whose
// target was never touched: the update is reported failed (may be offered again), not blamed.
func TestStartupAfterInterruptedTrial(t *testing.T) {
	for _, phase := range []string{PhaseTrial, PhaseSwapped} {
		dir := t.TempDir()
		writeJSON(filepath.Join(dir, pendingFile), Pending{Phase: phase, CommandID: "c1", Version: "v2.0.0", From: "v1.0.0"})
		os.WriteFile(filepath.Join(dir, "update-v2.0.0.bin"), []byte("x"), 0o755)
		os.WriteFile(filepath.Join(dir, healthyFile), []byte("v2.0.0 1"), 0o600)
		u, _ := New(opts(dir, "v1.0.0"))
		if act, err := u.Startup(); err != nil || act != Run {
			t.Fatal(act, err)
		}
		r := u.Report()
		if r.State != protocol.UpdateFailed || !strings.Contains(r.Detail, "interrupted") || containsStr(u.st.Failed, "v2.0.0") {
			t.Fatalf("%s: report %+v state %+v", phase, r, u.st)
		}
		for _, f := range []string{pendingFile, healthyFile, "update-v2.0.0.bin"} {
			if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
				t.Fatalf("%s: %s left", phase, f)
			}
		}
	}
}

// A trial child (TrialEnv set) reports trial, ignores offers, does not raise the highest
// version, and writes the marker its parent waits for.
func TestTrialChild(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, pendingFile)
	writeJSON(pf, Pending{Phase: PhaseTrial, CommandID: "c1", Version: "v2.0.0", From: "v1.0.0"})
	t.Setenv(TrialEnv, pf)
	u, _ := New(opts(dir, "v2.0.0"))
	if _, err := u.Startup(); err != nil {
		t.Fatal(err)
	}
	if r := u.Report(); r.State != protocol.UpdateTrial || !u.InTrial() {
		t.Fatalf("report %+v", r)
	}
	if st := u.Offer(t.Context(), &protocol.Command{ID: "c2", Type: protocol.CommandUpdate}); st != nil {
		t.Fatal("offer accepted in a trial")
	}
	if err := u.Healthy(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, healthyFile)); !strings.HasPrefix(string(b), "v2.0.0 ") {
		t.Fatalf("marker %q", b)
	}
	if u.st.Highest != "" {
		t.Fatalf("a trial raised the highest version: %+v", u.st)
	}
}

// A trial child whose stamped version is not the release's refuses to start (it would come up
// as another version after the swap) and leaves the reason for its parent.
func TestTrialChildWrongVersion(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, pendingFile)
	writeJSON(pf, Pending{Phase: PhaseTrial, CommandID: "c1", Version: "v3.1.0", From: "v2.0.0"})
	t.Setenv(TrialEnv, pf)
	for _, v := range []string{"v1.0.0", "dev"} {
		u, _ := New(opts(dir, v))
		if _, err := u.Startup(); err == nil || !strings.Contains(err.Error(), "reports version "+v+", not v3.1.0") {
			t.Fatalf("%s: Startup: %v", v, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, trialErrorFile)); !strings.Contains(string(b), "reports version "+v+", not v3.1.0") {
			t.Fatalf("%s: trial error file %q", v, b)
		}
	}
	u, _ := New(opts(dir, "3.1.0")) // the same version without the v
	if _, err := u.Startup(); err != nil {
		t.Fatal(err)
	}
}

// A corrupt state file does not stop the agent: it is moved aside.
func TestCorruptStateMovedAside(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, stateFile), []byte("{not json"), 0o600)
	u, err := New(opts(dir, "v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Startup(); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, stateFile+".corrupt-*")); len(m) != 1 {
		t.Fatalf("not moved aside: %v", m)
	}
	if u.st.Highest != "v1.0.0" {
		t.Fatalf("state %+v", u.st)
	}
}
