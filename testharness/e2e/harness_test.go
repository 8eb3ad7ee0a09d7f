package e2e

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/harness"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// The process, hub and simulator helpers live in testharness/harness (shared with the chaos
// suite); these are the short names the tests here use.

var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	race := true
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		race = false // benchmarks measure the real thing, not the race detector
	}
	dir, err := harness.Build(race)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type (
	proc         = harness.Proc
	lockedBroker = harness.LockedBroker
)

// hub is a running lanebridge-hub; the tests here add their own API helpers to it.
type hub struct{ *harness.Hub }

func repoRoot() string                     { return harness.RepoRoot() }
func freeAddr(t testing.TB) string         { return harness.FreeAddr(t) }
func checkLogs(t testing.TB, d string)     { harness.CheckLogs(t, d) }
func dumpOnFailure(t testing.TB, d string) { harness.DumpOnFailure(t, d) }
func tail(b []byte, n int) string          { return harness.Head(b, n) }

func start(t testing.TB, name, logPath string, args ...string) *proc {
	t.Helper()
	return harness.Start(t, name, logPath, args...)
}

// startEnv is start with extra environment variables ("K=V").
func startEnv(t testing.TB, env []string, name, logPath string, args ...string) *proc {
	t.Helper()
	return harness.StartEnv(t, env, name, logPath, args...)
}

func eventually(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	harness.Eventually(t, d, what, cond)
}

func startHub(t testing.TB, dir string, extra ...string) *hub {
	t.Helper()
	return &hub{harness.StartHub(t, dir, extra...)}
}

func runCLI(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	return harness.RunCLI(t, stdin, args...)
}

func enroll(t testing.TB, dir, store, brokerURL string, extra ...string) string {
	t.Helper()
	return harness.Enroll(t, dir, store, brokerURL, extra...)
}

func agentConfig(t testing.TB, dir, store, enrolled string, journals map[string]string) string {
	t.Helper()
	return harness.AgentConfig(t, dir, store, enrolled, journals)
}

func startAgent(t testing.TB, dir, store, cfg string) *proc {
	t.Helper()
	return harness.StartAgent(t, dir, store, cfg)
}

func runSim(t testing.TB, dir, journal, terminal string, n int, rate float64, seed int) *proc {
	t.Helper()
	return harness.RunSim(t, dir, journal, terminal, n, rate, seed)
}

func readTotals(t testing.TB, journal string) sim.Totals {
	t.Helper()
	return harness.ReadTotals(t, journal)
}

func verify(t testing.TB, h *hub, store string, want map[string]sim.Totals) {
	t.Helper()
	harness.Verify(t, h.Hub, store, want)
}

func startLockedBroker(t testing.TB, dir, enrollDir, extraYAML string, stores ...string) *lockedBroker {
	t.Helper()
	return harness.StartLockedBroker(t, dir, enrollDir, extraYAML, stores...)
}

func writeHubConfig(t testing.TB, dir, name, body string) string {
	t.Helper()
	return harness.WriteHubConfig(t, dir, name, body)
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }
func readFile(path string) ([]byte, error)  { return os.ReadFile(path) }
func splitLines(s string) []string          { return strings.Split(s, "\n") }
