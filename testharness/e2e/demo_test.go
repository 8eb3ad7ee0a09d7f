package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoScenarios runs testharness/demo.sh (make demo) with its scenarios brought forward:
// a silent terminal, a receipt gap found by the close, a store offline and back; an agent
// killed by hand is reported, the demo carries on, the agent is started again with the
// restart file, and every captured record is acked. Ctrl-C stops it all.
func TestDemoScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "demo.out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	agentPort := strings.Split(freeAddr(t), ":")[1]
	cmd := exec.Command("bash", "testharness/demo.sh")
	cmd.Dir = repoRoot()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The demo runs as a newcomer would: not inside make test's Tryton (which it must not stop).
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRYTON_") && !strings.HasPrefix(kv, "LANEBRIDGE_TRYTON_") && !strings.HasPrefix(kv, "DEMO_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "BIN="+binDir, "DEMO_DIR="+filepath.Join(dir, "demo"), "DEMO_MQTT="+freeAddr(t), "DEMO_HTTP="+freeAddr(t),
		"DEMO_AGENT_PORT="+agentPort, "DEMO_SILENT_AFTER=4", "DEMO_OFFLINE_AT=6", "DEMO_ONLINE_AT=14", "DEMO_CLOSE_AT=8")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			syscall.Kill(cmd.Process.Pid, syscall.SIGINT)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(out)
			t.Logf("demo output:\n%s", strings.ReplaceAll(string(b), "\r", "\n"))
			logs, _ := filepath.Glob(filepath.Join(dir, "demo", "agent-*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b)
			}
		}
	}()
	text := func() string { b, _ := os.ReadFile(out); return strings.ReplaceAll(string(b), "\r", "\n") }
	waitFor := func(what string, re *regexp.Regexp) []string {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			if m := re.FindStringSubmatch(text()); m != nil {
				return m
			}
			select {
			case err := <-done:
				stopped = true
				t.Fatalf("the demo ended (%v) while waiting for %s", err, what)
			case <-time.After(200 * time.Millisecond):
			}
		}
		t.Fatalf("no %s within 90s", what)
		return nil
	}
	pid := waitFor("S001's agent pid", regexp.MustCompile(`Try: kill (\d+) \(S001's agent\)`))[1]
	waitFor("records applied", regexp.MustCompile(`applied at hub +[1-9]`))
	if err := exec.Command("kill", pid).Run(); err != nil {
		t.Fatal(err)
	}
	waitFor("the agent's stop reported", regexp.MustCompile(`S001's agent stopped \(exit \d+; .*touch (\S+)S001\.restart`))
	if err := os.WriteFile(filepath.Join(dir, "demo", "S001.restart"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for what, re := range map[string]string{
		"the restart":          `S001's agent started again \(pid \d+\)`,
		"the silent terminal":  `S001 terminal T2 has gone silent`,
		"the store offline":    `S003 goes offline`,
		"the close of S002":    `S002 closed: "state": "exceptions"; missing_receipts found: yes`,
		"the store back":       `S003 comes back`,
		"open exceptions":      `open exceptions +[1-9]`,
		"nothing left unacked": `captured +(\d+) +forwarded\+acked +(\d+) .*\n`,
	} {
		waitFor(what, regexp.MustCompile(re))
	}
	// Every captured record is acked once the agents are back: nothing was lost.
	deadline := time.Now().Add(30 * time.Second)
	line := regexp.MustCompile(`captured +(\d+) +forwarded\+acked +(\d+) +applied at hub +(\d+) +open exceptions +\d+ *$`)
	for {
		lines := strings.Split(strings.TrimSpace(text()), "\n")
		m := line.FindStringSubmatch(strings.TrimPrefix(lines[len(lines)-1], "\x1b[K"))
		if m != nil && m[1] == m[2] && m[1] != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("captured and acked differ with every agent up: %q", lines[len(lines)-1])
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		stopped = true
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop within 30s of Ctrl-C")
	}
	if !strings.Contains(text(), "stopped; logs and data are in") {
		t.Error("no clean stop")
	}
}
