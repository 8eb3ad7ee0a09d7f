// Package harness runs the real binaries for end-to-end and chaos tests: it builds
// lanebridge-agent, lanebridge-hub and lanebridge-sim once, starts them as processes whose output
// goes to log files, drives the hub's CLI and HTTP API, rewrites enrolled agent.yaml files for
// tests and checks the hub's records against what the simulators wrote. Nothing here is a mock:
// every process is the shipped binary.
package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/daemon"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

var binDir string

// Build compiles the agent, the hub and the simulator (with the race detector when race) into a
// new temporary directory, which later calls use; the caller removes it when done.
func Build(race bool) (string, error) {
	dir, err := os.MkdirTemp("", "lanebridge-bin-")
	if err != nil {
		return "", err
	}
	var flags []string
	if race {
		flags = []string{"-race"}
	}
	for _, p := range []string{"agent/cmd/lanebridge-agent", "hub/cmd/lanebridge-hub", "testharness/cmd/lanebridge-sim"} {
		args := append(append([]string{"build"}, flags...), "-o", filepath.Join(dir, filepath.Base(p)), "./"+p)
		cmd := exec.Command("go", args...)
		cmd.Dir = RepoRoot()
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("build %s: %w", p, err)
		}
	}
	binDir = dir
	return dir, nil
}

// Bin is the path of a built binary (lanebridge-agent, lanebridge-hub, lanebridge-sim).
func Bin(name string) string { return filepath.Join(binDir, name) }

// RepoRoot is the module root for a test running in testharness/<package> (go test's working
// directory is the package's).
func RepoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// FreeAddr is a loopback address with a port free a moment ago.
func FreeAddr(t testing.TB) string { t.Helper(); return daemon.FreeAddr(t) }

// Proc is a started binary whose output is kept in a log file and scanned at the end.
type Proc struct {
	T    testing.TB
	Name string
	Cmd  *exec.Cmd
	Log  string
	Done chan struct{} // closed when the process has exited; Err is then its Wait error
	Err  error
}

// Start starts the built binary name with args, its output appended to logPath; the test's
// cleanup SIGKILLs it if it still runs.
func Start(t testing.TB, name, logPath string, args ...string) *Proc {
	t.Helper()
	return StartExe(t, Bin(name), name, logPath, args...)
}

// StartExe is Start for any executable (an update's new binary, a copy under another name).
func StartExe(t testing.TB, exe, name, logPath string, args ...string) *Proc {
	t.Helper()
	return StartExeEnv(t, nil, exe, name, logPath, args...)
}

// StartEnv is Start with extra environment variables ("K=V").
func StartEnv(t testing.TB, env []string, name, logPath string, args ...string) *Proc {
	t.Helper()
	return StartExeEnv(t, env, Bin(name), name, logPath, args...)
}

// StartExeEnv is StartExe with extra environment variables ("K=V").
func StartExeEnv(t testing.TB, env []string, exe, name, logPath string, args ...string) *Proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(append(os.Environ(), "GORACE=halt_on_error=1"), env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{T: t, Name: name, Cmd: cmd, Log: logPath, Done: make(chan struct{})}
	go func() {
		p.Err = cmd.Wait()
		f.Close()
		close(p.Done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Kill SIGKILLs the process (if it still runs) and waits for it.
func (p *Proc) Kill() {
	select {
	case <-p.Done:
		return
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.Done
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(20 * time.Second):
		p.Kill()
		t.Fatalf("%s did not stop within 20s of SIGTERM", p.Name)
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.Done:
		return true
	default:
		return false
	}
}

// CheckLogs fails the test if any process log in dir shows a panic or a data race.
func CheckLogs(t testing.TB, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		for _, bad := range []string{"panic:", "DATA RACE", "fatal error:"} {
			if i := bytes.Index(b, []byte(bad)); i >= 0 {
				t.Errorf("%s contains %q:\n%s", filepath.Base(l), bad, Head(b[i:], 3000))
			}
		}
	}
}

// Head is at most the first n bytes of b.
func Head(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// DumpOnFailure logs the tail of every *.log in dir when the test fails.
func DumpOnFailure(t testing.TB, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("=== %s (tail) ===\n%s", filepath.Base(l), b)
		}
	})
}

// Eventually polls cond until it returns nil or d passes (then the test fails).
func Eventually(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s: %v", d, what, err)
}

// Hub is a running lanebridge-hub. Its API calls carry an admin token (Bearer) minted with the
// real CLI once the hub's data dir exists.
type Hub struct {
	Dir, HTTP, MQTT string
	Extra           []string
	Env             []string // extra environment of the hub process ("K=V"), read at each Start
	P               *Proc
	Token           string
}

// StartHub starts a hub with its data under dir/hub on free ports.
func StartHub(t testing.TB, dir string, extra ...string) *Hub {
	t.Helper()
	h := NewHub(t, dir, extra...)
	h.Start(t)
	return h
}

// NewHub is a hub on free ports, not started (set Env, then Start).
func NewHub(t testing.TB, dir string, extra ...string) *Hub {
	t.Helper()
	return &Hub{Dir: dir, HTTP: FreeAddr(t), MQTT: FreeAddr(t), Extra: extra}
}

// Start starts the hub (again) and waits for /healthz.
func (h *Hub) Start(t testing.TB) {
	t.Helper()
	args := append([]string{"serve", "--data", filepath.Join(h.Dir, "hub"), "--http", h.HTTP, "--mqtt", h.MQTT}, h.Extra...)
	h.P = StartEnv(t, h.Env, "lanebridge-hub", filepath.Join(h.Dir, "hub.log"), args...)
	Eventually(t, 60*time.Second, "hub healthz", func() error {
		if h.P.Exited() {
			b, _ := os.ReadFile(h.P.Log)
			t.Fatalf("hub exited: %v\n%s", h.P.Err, Head(b, 4000))
		}
		_, err := h.Get("/healthz")
		return err
	})
	if h.Token == "" {
		h.Token = h.CLI(t, "tokens", "add", "--name", "e2e-"+strings.ReplaceAll(h.HTTP, ":", "_"), "--role", "admin")
		h.Token, _, _ = strings.Cut(h.Token, "\n")
	}
}

// CLI runs a lanebridge-hub subcommand on this hub's data dir (and --config, if it was started
// with one) and returns its stdout.
func (h *Hub) CLI(t testing.TB, args ...string) string {
	t.Helper()
	args = append(args, "--data", filepath.Join(h.Dir, "hub"))
	if i := slices.Index(h.Extra, "--config"); i >= 0 && i+1 < len(h.Extra) {
		args = append(args, h.Extra[i:i+2]...)
	}
	return RunCLI(t, "", args...)
}

// RunCLI runs lanebridge-hub with stdin and returns its stdout; it fails the test on an error.
func RunCLI(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(Bin("lanebridge-hub"), args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("lanebridge-hub %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// Do calls the hub's HTTP API with the admin token and returns the body; a status other than
// 200 is an error that carries the body.
func (h *Hub) Do(method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, "http://"+h.HTTP+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return b, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return b, nil
}

// Get is Do with GET.
func (h *Hub) Get(path string) ([]byte, error) { return h.Do(http.MethodGet, path, nil) }

// Post is Do with POST.
func (h *Hub) Post(path string, body []byte) ([]byte, error) {
	return h.Do(http.MethodPost, path, body)
}

// Enroll runs `stores add` and returns the agent.yaml body it printed. Tests enroll before the
// hub first starts: --create makes the hub database.
func Enroll(t testing.TB, dir, store, brokerURL string, extra ...string) string {
	t.Helper()
	return RunCLI(t, "", append([]string{"stores", "add", store, "--data", filepath.Join(dir, "hub"), "--broker-url", brokerURL, "--create"}, extra...)...)
}

// AgentConfig rewrites the enrolled agent.yaml for a test: data dir, jsonl terminals, fast timers.
func AgentConfig(t testing.TB, dir, store, enrolled string, journals map[string]string) string {
	t.Helper()
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(enrolled))
	skip := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data_dir:"):
			fmt.Fprintf(&b, "data_dir: %s\n", filepath.Join(dir, "agent-"+store))
			continue
		case strings.HasPrefix(line, "terminals:"):
			skip = true
			continue
		case strings.HasPrefix(line, "spool:"):
			skip = false
		}
		if skip && strings.HasPrefix(line, "  ") {
			continue
		}
		skip = false
		b.WriteString(line + "\n")
		if strings.HasPrefix(line, "  password:") {
			b.WriteString("  ack_timeout: 3s\n  heartbeat: 1s\n")
		}
	}
	// debug: the drain benchmark profiles the agent (LANEBRIDGE_BENCH_PPROF) on /debug/pprof/.
	fmt.Fprintf(&b, "listen: %s\ndebug: true\nterminals:\n", FreeAddr(t))
	for id, path := range journals {
		fmt.Fprintf(&b, "  - {id: %s, source: \"file://%s\", profile: canonical-jsonl}\n", id, path)
	}
	p := filepath.Join(dir, "agent-"+store+".yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// StartAgent runs the agent with cfg, logging to dir/agent-STORE.log.
func StartAgent(t testing.TB, dir, store, cfg string) *Proc {
	return Start(t, "lanebridge-agent", filepath.Join(dir, "agent-"+store+".log"), "run", "--config", cfg)
}

// RunSim writes n records for terminal to journal at rate/s and, at the end, its totals to
// journal.totals.json.
func RunSim(t testing.TB, dir, journal, terminal string, n int, rate float64, seed int) *Proc {
	t.Helper()
	return Start(t, "lanebridge-sim", filepath.Join(dir, "sim-"+terminal+".log"), "jsonl", "--out", journal,
		"--terminal", terminal, "--date", "2026-11-26", "--count", fmt.Sprint(n), "--rate", fmt.Sprint(rate),
		"--seed", fmt.Sprint(seed), "--totals", journal+".totals.json")
}

// ReadTotals reads what RunSim wrote for journal.
func ReadTotals(t testing.TB, journal string) sim.Totals {
	t.Helper()
	var tot sim.Totals
	b, err := os.ReadFile(journal + ".totals.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &tot); err != nil {
		t.Fatal(err)
	}
	return tot
}

// StoreInfo is the hub's /api/v1/stores/ID answer.
type StoreInfo struct {
	Records int64 `json:"records"`
	Streams []struct {
		Epoch          string `json:"epoch"`
		AppliedThrough uint64 `json:"applied_through"`
	} `json:"streams"`
	Status *protocol.Status `json:"status"`
}

// Store fetches a store's record count, streams and last status.
func (h *Hub) Store(store string) (StoreInfo, error) {
	var si StoreInfo
	b, err := h.Get("/api/v1/stores/" + store)
	if err != nil {
		return si, err
	}
	return si, json.Unmarshal(b, &si)
}

// WaitRecords waits until the hub holds exactly n records of store.
func (h *Hub) WaitRecords(t testing.TB, store string, n int64, d time.Duration) {
	t.Helper()
	h.waitCount(t, store, n, d, false)
}

// WaitAtLeast waits until the hub holds n or more records of store.
func (h *Hub) WaitAtLeast(t testing.TB, store string, n int64, d time.Duration) {
	t.Helper()
	h.waitCount(t, store, n, d, true)
}

func (h *Hub) waitCount(t testing.TB, store string, n int64, d time.Duration, atLeast bool) {
	t.Helper()
	what := fmt.Sprintf("%d records of %s at the hub", n, store)
	if atLeast {
		what = "at least " + what
	}
	Eventually(t, d, what, func() error {
		si, err := h.Store(store)
		if err != nil {
			return err
		}
		if si.Records != n && (!atLeast || si.Records < n) {
			return fmt.Errorf("hub has %d", si.Records)
		}
		return nil
	})
}

// Records is the hub's record count for store.
func (h *Hub) Records(t testing.TB, store string) int64 {
	t.Helper()
	si, err := h.Store(store)
	if err != nil {
		t.Fatal(err)
	}
	return si.Records
}

// AllRecords pages through the records API.
func (h *Hub) AllRecords(t testing.TB, store string) []protocol.Record {
	t.Helper()
	out, err := h.FetchRecords(store)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FetchRecords pages through the records API, returning an error instead of failing a test.
func (h *Hub) FetchRecords(store string) ([]protocol.Record, error) {
	var out []protocol.Record
	var after uint64
	for {
		b, err := h.Get(fmt.Sprintf("/api/v1/stores/%s/records?after_seq=%d&limit=5000", store, after))
		if err != nil {
			return nil, err
		}
		var page struct {
			Records []protocol.Record `json:"records"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("records of %s: %w", store, err)
		}
		out = append(out, page.Records...)
		if len(page.Records) < 5000 {
			return out, nil
		}
		after = page.Records[len(page.Records)-1].Seq
	}
}

// Verify checks the promise at the hub: every record the simulators wrote is there exactly once,
// seq is contiguous from 1 in one epoch, hashes are right and totals match to the cent.
func Verify(t testing.TB, h *Hub, store string, want map[string]sim.Totals) {
	t.Helper()
	recs := h.AllRecords(t, store)
	var n int64
	for _, w := range want {
		n += w.N
	}
	if int64(len(recs)) != n {
		t.Fatalf("store %s: hub has %d records, simulators wrote %d", store, len(recs), n)
	}
	epoch := recs[0].Epoch
	seen := map[string]bool{}
	got := map[string]*sim.Totals{}
	for i, r := range recs {
		if r.Epoch != epoch {
			t.Fatalf("record %d: epoch %s, want one epoch %s", i, r.Epoch, epoch)
		}
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d: seq not contiguous from 1", i, r.Seq)
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("record seq %d: %v", r.Seq, err)
		}
		key := r.Terminal + "/" + r.Receipt
		if seen[key] {
			t.Fatalf("receipt %s captured twice", key)
		}
		seen[key] = true
		if got[r.Terminal] == nil {
			got[r.Terminal] = &sim.Totals{}
		}
		got[r.Terminal].Add(r)
	}
	for term, w := range want {
		g := got[term]
		if g == nil || g.N != w.N {
			t.Fatalf("terminal %s: got %v records, want %d", term, g, w.N)
		}
		for k, c := range w.Count {
			if g.Count[k] != c || g.Sum[k] != w.Sum[k] {
				t.Fatalf("terminal %s kind %s: hub count %d sum %d, simulator count %d sum %d", term, k, g.Count[k], g.Sum[k], c, w.Sum[k])
			}
		}
	}
}
