package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/harness"
)

// TestConfigPushEndToEnd: issue 10's remote configuration with the real binaries. A key pair made
// by Debian's minisign; an agent built trusting its public key (-ldflags, as releases are);
// `config push` signs with the secret key; the running hub sends the push to the online agent,
// which applies it (restarting its components), reports, and `config status` shows it applied;
// `validate` shows the effective configuration, also after the agent process restarts.
func TestConfigPushEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	mini, err := exec.LookPath("minisign")
	if err != nil {
		t.Skip("minisign not installed (apt-get install minisign)")
	}
	dir := t.TempDir()
	defer dumpOnFailure(t, dir)
	pubF, secF := filepath.Join(dir, "release.pub"), filepath.Join(dir, "release.key")
	if out, err := exec.Command(mini, "-G", "-W", "-p", pubF, "-s", secF).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v %s", err, out)
	}
	pubText, _ := os.ReadFile(pubF)
	lines := strings.Split(strings.TrimSpace(string(pubText)), "\n")
	agentBin := filepath.Join(dir, "lanebridge-agent-trusting")
	build := exec.Command("go", "build", "-ldflags", "-X github.com/lanebridge/lanebridge/agent/internal/trust.Keys="+lines[len(lines)-1], "-o", agentBin, "./agent/cmd/lanebridge-agent")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build agent with trusted key: %v %s", err, out)
	}

	h := startHub(t, dir)
	cfg := agentConfig(t, dir, "S001", enroll(t, dir, "S001", "tcp://"+h.MQTT), map[string]string{"T1": filepath.Join(dir, "T1.jsonl")})
	runAgent := func() *proc {
		return harness.StartExe(t, agentBin, "lanebridge-agent", filepath.Join(dir, "agent-S001.log"), "run", "--config", cfg)
	}
	a := runAgent()
	over := filepath.Join(dir, "overrides.yaml")
	os.WriteFile(over, []byte("log: {level: debug}\nhub: {batch_size: 77}\n"), 0o600)
	if out := h.CLI(t, "config", "push", "S001", "--file", over, "--key", secF); out != "S001 config version 1\n" {
		t.Fatalf("config push: %q", out)
	}
	eventually(t, 60*time.Second, "config version 1 applied", func() error {
		out := h.CLI(t, "config", "status", "S001")
		if !regexp.MustCompile(`S001\s+1\s+applied`).MatchString(out) {
			return &textErr{out}
		}
		return nil
	})
	validate := func() string {
		out, err := exec.Command(agentBin, "validate", "--config", cfg).CombinedOutput()
		if err != nil {
			t.Fatalf("validate: %v %s", err, out)
		}
		return string(out)
	}
	if out := validate(); !strings.Contains(out, "pushed configuration version 1") || !strings.Contains(out, "batch_size: 77") {
		t.Fatalf("validate:\n%s", out)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "agent-S001.log"))
	if !strings.Contains(string(log), "restarting the agent's components") {
		t.Fatalf("agent log shows no restart with the push:\n%s", tail(log, 3000))
	}
	a.Stop(t)
	restarted := time.Now()
	a = runAgent()
	eventually(t, 30*time.Second, "the restarted agent reports version 1 active", func() error {
		si, err := h.Store("S001")
		if err != nil || si.Status == nil || si.Status.State != "online" || si.Status.Clock.Before(restarted) || si.Status.Config == nil || si.Status.Config.Active != 1 {
			return &textErr{fmt.Sprintf("%+v %v", si.Status, err)}
		}
		return nil
	})
	if out := validate(); !strings.Contains(out, "pushed configuration version 1") {
		t.Fatalf("after a restart validate:\n%s", out)
	}
	a.Stop(t)
	checkLogs(t, dir)
}

type textErr struct{ s string }

func (e *textErr) Error() string { return e.s }
