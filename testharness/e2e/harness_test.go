package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
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
	"github.com/lanebridge/lanebridge/testharness/sim"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lanebridge-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	flag.Parse()
	race := []string{"-race"}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		race = nil // benchmarks measure the real thing, not the race detector
	}
	for _, p := range []string{"agent/cmd/lanebridge-agent", "hub/cmd/lanebridge-hub", "testharness/cmd/lanebridge-sim"} {
		args := append(append([]string{"build"}, race...), "-o", filepath.Join(dir, filepath.Base(p)), "./"+p)
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot()
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", p, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a started binary whose output is kept in a log file and scanned at the end.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func start(t testing.TB, name, logPath string, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, name, logPath, args...)
}

// startEnv is start with extra environment variables ("K=V").
func startEnv(t testing.TB, env []string, name, logPath string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(append(os.Environ(), "GORACE=halt_on_error=1"), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
		t.Fatalf("%s did not stop within 20s of SIGTERM", p.name)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// checkLogs fails the test if any process log shows a panic or a data race.
func checkLogs(t testing.TB, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		for _, bad := range []string{"panic:", "DATA RACE", "fatal error:"} {
			if bytes.Contains(b, []byte(bad)) {
				i := bytes.Index(b, []byte(bad))
				t.Errorf("%s contains %q:\n%s", filepath.Base(l), bad, tail(b[i:], 3000))
			}
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

func dumpOnFailure(t testing.TB, dir string) {
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

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() error) {
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

// hub is a running lanebridge-hub. Its API calls carry an admin token (Bearer) minted with the
// real CLI once the hub's data dir exists.
type hub struct {
	dir, http, mqtt string
	extra           []string
	p               *proc
	token           string
}

func startHub(t testing.TB, dir string, extra ...string) *hub {
	t.Helper()
	h := &hub{dir: dir, http: freeAddr(t), mqtt: freeAddr(t), extra: extra}
	h.start(t)
	return h
}

func (h *hub) start(t testing.TB) {
	t.Helper()
	args := append([]string{"serve", "--data", filepath.Join(h.dir, "hub"), "--http", h.http, "--mqtt", h.mqtt}, h.extra...)
	h.p = start(t, "lanebridge-hub", filepath.Join(h.dir, "hub.log"), args...)
	eventually(t, 60*time.Second, "hub healthz", func() error {
		if h.p.exited() {
			b, _ := os.ReadFile(h.p.log)
			t.Fatalf("hub exited: %v\n%s", h.p.err, tail(b, 4000))
		}
		_, err := h.get("/healthz")
		return err
	})
	if h.token == "" {
		h.token = h.cli(t, "tokens", "add", "--name", "e2e-"+strings.ReplaceAll(h.http, ":", "_"), "--role", "admin")
		h.token, _, _ = strings.Cut(h.token, "\n")
	}
}

// cli runs a lanebridge-hub subcommand on this hub's data dir (and --config, if it was started
// with one) and returns its stdout.
func (h *hub) cli(t testing.TB, args ...string) string {
	t.Helper()
	args = append(args, "--data", filepath.Join(h.dir, "hub"))
	if i := slices.Index(h.extra, "--config"); i >= 0 && i+1 < len(h.extra) {
		args = append(args, h.extra[i:i+2]...)
	}
	return runCLI(t, "", args...)
}

// runCLI runs lanebridge-hub with stdin and returns its stdout; it fails the test on an error.
func runCLI(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "lanebridge-hub"), args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("lanebridge-hub %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// do calls the hub's HTTP API with the admin token and returns the body; a status other than
// 200 is an error that carries the body.
func (h *hub) do(method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, "http://"+h.http+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
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

func (h *hub) get(path string) ([]byte, error) { return h.do(http.MethodGet, path, nil) }

func (h *hub) post(path string, body []byte) ([]byte, error) {
	return h.do(http.MethodPost, path, body)
}

// enroll runs `stores add` and returns the agent.yaml body it printed. Tests enroll before the
// hub first starts: --create makes the hub database.
func enroll(t testing.TB, dir, store, brokerURL string, extra ...string) string {
	t.Helper()
	return runCLI(t, "", append([]string{"stores", "add", store, "--data", filepath.Join(dir, "hub"), "--broker-url", brokerURL, "--create"}, extra...)...)
}

// agentConfig rewrites the enrolled agent.yaml for a test: data dir, one jsonl terminal, fast timers.
func agentConfig(t testing.TB, dir, store, enrolled string, journals map[string]string) string {
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
	fmt.Fprintf(&b, "listen: %s\ndebug: true\nterminals:\n", freeAddr(t))
	for id, path := range journals {
		fmt.Fprintf(&b, "  - {id: %s, source: \"file://%s\", profile: canonical-jsonl}\n", id, path)
	}
	p := filepath.Join(dir, "agent-"+store+".yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startAgent(t testing.TB, dir, store, cfg string) *proc {
	return start(t, "lanebridge-agent", filepath.Join(dir, "agent-"+store+".log"), "run", "--config", cfg)
}

// runSim writes n records for terminal to journal at rate/s and returns its totals.
func runSim(t testing.TB, dir, journal, terminal string, n int, rate float64, seed int) *proc {
	t.Helper()
	return start(t, "lanebridge-sim", filepath.Join(dir, "sim-"+terminal+".log"), "jsonl", "--out", journal,
		"--terminal", terminal, "--date", "2026-11-26", "--count", fmt.Sprint(n), "--rate", fmt.Sprint(rate),
		"--seed", fmt.Sprint(seed), "--totals", journal+".totals.json")
}

func readTotals(t testing.TB, journal string) sim.Totals {
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

type storeInfo struct {
	Records int64 `json:"records"`
	Streams []struct {
		Epoch          string `json:"epoch"`
		AppliedThrough uint64 `json:"applied_through"`
	} `json:"streams"`
	Status *protocol.Status `json:"status"`
}

func (h *hub) store(store string) (storeInfo, error) {
	var si storeInfo
	b, err := h.get("/api/v1/stores/" + store)
	if err != nil {
		return si, err
	}
	return si, json.Unmarshal(b, &si)
}

func (h *hub) waitRecords(t testing.TB, store string, n int64, d time.Duration) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("%d records of %s at the hub", n, store), func() error {
		si, err := h.store(store)
		if err != nil {
			return err
		}
		if si.Records != n {
			return fmt.Errorf("hub has %d", si.Records)
		}
		return nil
	})
}

// allRecords pages through the records API.
func (h *hub) allRecords(t testing.TB, store string) []protocol.Record {
	t.Helper()
	var out []protocol.Record
	var after uint64
	for {
		b, err := h.get(fmt.Sprintf("/api/v1/stores/%s/records?after_seq=%d&limit=5000", store, after))
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Records []protocol.Record `json:"records"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Records...)
		if len(page.Records) < 5000 {
			return out
		}
		after = page.Records[len(page.Records)-1].Seq
	}
}

// verify checks the promise at the hub: every record the simulators wrote is there exactly once,
// seq is contiguous from 1 in one epoch, hashes are right and totals match to the cent.
func verify(t testing.TB, h *hub, store string, want map[string]sim.Totals) {
	t.Helper()
	recs := h.allRecords(t, store)
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

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }
func readFile(path string) ([]byte, error)  { return os.ReadFile(path) }
func splitLines(s string) []string          { return strings.Split(s, "\n") }
