package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/chaos"
)

// TestReportFromResults: results written by two suites become one testharness/chaos/CHAOS.md (golden file);
// a loss or a failed run turns the verdict; an empty or foreign directory is an error.
func TestReportFromResults(t *testing.T) {
	dir := t.TempDir()
	for _, r := range []chaos.Result{
		{Scenario: "agent-kill", Seed: 42, Cycles: 50, Faults: map[string]int{"agent_sigkill": 50}, Captured: 3000, Applied: 3000, Posted: 2700, Replay: "LANEBRIDGE_CHAOS_SEED=42 go test -run '^TestChaosAgentKill$' ./testharness/chaos/", DurationS: 19.4},
		{Scenario: "powercut", Seed: 7, Cycles: 100, Faults: map[string]int{"power_cut": 100}, Captured: 900, Applied: 900, Replay: "LANEBRIDGE_CHAOS_SEED=7 go test ./testharness/chaos/powercut/", DurationS: 120},
	} {
		if err := r.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	results, err := chaos.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := render(results, time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC), 150, "long", 0)
	golden := filepath.Join("testdata", "CHAOS.golden.md")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("CHAOS.md differs from %s (UPDATE_GOLDEN=1 to accept):\n%s", golden, got)
	}
	results[0].Lost = 1
	if bad := render(results, time.Now(), 1, "long", 0); !strings.Contains(string(bad), "did not hold") {
		t.Errorf("a lost record did not turn the verdict:\n%s", bad)
	}
	if bad := render(results[1:], time.Now(), 1, "long", 1); !strings.Contains(string(bad), "did not hold") {
		t.Errorf("a failed run did not turn the verdict:\n%s", bad)
	}

	var errb bytes.Buffer
	if code := run([]string{"-in", t.TempDir(), "-out", filepath.Join(t.TempDir(), "x.md")}, &errb); code == 0 || !strings.Contains(errb.String(), "no results") {
		t.Errorf("empty directory: exit %d, %q", code, errb.String())
	}
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "x.json"), []byte(`{"name":"x"}`), 0o644)
	errb.Reset()
	if code := run([]string{"-in", foreign, "-out", filepath.Join(t.TempDir(), "x.md")}, &errb); code == 0 || !strings.Contains(errb.String(), "scenario") {
		t.Errorf("foreign JSON: exit %d, %q", code, errb.String())
	}
}
