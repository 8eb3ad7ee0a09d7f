package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/harness"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// Issue 10's signed self-update, end to end: real agent builds stamped with versions and the
// public key of a key pair made by Debian's minisign, a real hub that publishes and rolls out,
// the real broker, download and exec. The agent binaries are built without -race (they are
// the release artefacts, and an agent replaces its own executable: each agent runs its own
// copy in a folder it can write).

// updKit holds the key pairs and release builds, made once per test binary run.
type updKit struct {
	dir       string
	pub, sec  string // the trusted key pair (minisign -G -W)
	otherSec  string // a key the agents do not trust
	pubLine   string // the trusted public key's base64 line, built into the agents
	mu        sync.Mutex
	built     map[string]string // name -> binary
	buildErrs map[string]error
}

var (
	kitOnce sync.Once
	theKit  *updKit
	kitErr  error
)

func updateKit(t testing.TB) *updKit {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	mini, err := exec.LookPath("minisign")
	if err != nil {
		t.Skip("minisign not installed (apt-get install minisign)")
	}
	kitOnce.Do(func() {
		k := &updKit{dir: filepath.Join(binDir, "update-kit"), built: map[string]string{}, buildErrs: map[string]error{}}
		if kitErr = os.MkdirAll(k.dir, 0o755); kitErr != nil {
			return
		}
		k.pub, k.sec = filepath.Join(k.dir, "release.pub"), filepath.Join(k.dir, "release.key")
		k.otherSec = filepath.Join(k.dir, "other.key")
		for _, kp := range [][2]string{{k.pub, k.sec}, {filepath.Join(k.dir, "other.pub"), k.otherSec}} {
			if out, err := exec.Command(mini, "-G", "-W", "-p", kp[0], "-s", kp[1]).CombinedOutput(); err != nil {
				kitErr = fmt.Errorf("minisign -G: %v %s", err, out)
				return
			}
		}
		b, err := os.ReadFile(k.pub)
		if err != nil {
			kitErr = err
			return
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		k.pubLine = lines[len(lines)-1]
		theKit = k
	})
	if kitErr != nil {
		t.Fatal(kitErr)
	}
	return theKit
}

// agent returns a real agent build stamped with version and trusting the kit's key.
func (k *updKit) agent(t testing.TB, version string) string {
	t.Helper()
	return k.build(t, "agent-"+version, "./agent/cmd/lanebridge-agent",
		"-X github.com/lanebridge/lanebridge/agent/internal/app.Version="+version+
			" -X github.com/lanebridge/lanebridge/agent/internal/trust.Keys="+k.pubLine)
}

// broken returns one of the update package's broken "releases": exits (exits at once) or
// hangs (runs, never healthy).
func (k *updKit) broken(t testing.TB, name string) string {
	t.Helper()
	return k.build(t, name, "./agent/internal/update/testdata/"+name, "")
}

func (k *updKit) build(t testing.TB, name, pkg, ldflags string) string {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if p, ok := k.built[name]; ok {
		return p
	}
	if err, ok := k.buildErrs[name]; ok {
		t.Fatal(err)
	}
	out := filepath.Join(k.dir, name)
	args := []string{"build", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = repoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		k.buildErrs[name] = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		t.Fatal(k.buildErrs[name])
	}
	k.built[name] = out
	return out
}

// updHubYAML is hub.yaml for a fast rollout.
const updHubYAML = `rollouts:
  tick: 50ms
  resend_after: 2s
  store_timeout: 1m
  maintenance_window: "Mon-Sun 00:00-24:00"
`

// startUpdHub starts a hub with fast rollouts (and extra hub.yaml lines).
func startUpdHub(t testing.TB, dir, extra string) (*hub, string) {
	t.Helper()
	cfg := writeHubConfig(t, dir, "hub.yaml", updHubYAML+extra)
	return startHub(t, dir, "--config", cfg), cfg
}

// updAgent is an agent running from its own copy of a release build.
type updAgent struct {
	store, cfg, exe string
	p               *proc
}

// startUpdAgent writes store's agent.yaml (one jsonl terminal T1 at journal) with updates
// from h, copies bin as the agent's executable into a folder of its own and starts it.
func startUpdAgent(t testing.TB, dir string, h *hub, store, enrolled, journal, bin string) *updAgent {
	t.Helper()
	cfg := agentConfig(t, dir, store, enrolled, map[string]string{"T1": journal})
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "update:\n  hub_url: http://%s\n  health_timeout: 5s\n", h.HTTP)
	f.Close()
	exe := filepath.Join(dir, "bin-"+store, "lanebridge-agent")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, bin, exe, 0o755)
	a := &updAgent{store: store, cfg: cfg, exe: exe}
	a.start(t, dir)
	return a
}

func (a *updAgent) start(t testing.TB, dir string) {
	t.Helper()
	a.p = harness.StartExe(t, a.exe, "lanebridge-agent "+a.store, filepath.Join(dir, "agent-"+a.store+".log"), "run", "--config", a.cfg)
}

func copyFile(t testing.TB, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// publish runs `releases publish` for this machine's os/arch (unless args say otherwise).
func publish(t testing.TB, h *hub, bin, version, key string, args ...string) {
	t.Helper()
	base := []string{"releases", "publish", "--binary", bin, "--version", version, "--key", key}
	if !containsArg(args, "--os") {
		base = append(base, "--os", runtime.GOOS)
	}
	if !containsArg(args, "--arch") {
		base = append(base, "--arch", runtime.GOARCH)
	}
	out := h.CLI(t, append(base, args...)...)
	if !strings.Contains(out, "published release") {
		t.Fatalf("releases publish %s: %s", version, out)
	}
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

// startRollout runs `rollouts start` and returns the rollout's id.
func startRollout(t testing.TB, h *hub, args ...string) int64 {
	t.Helper()
	out := h.CLI(t, append([]string{"rollouts", "start"}, args...)...)
	var id int64
	if _, err := fmt.Sscanf(out, "started rollout %d:", &id); err != nil {
		t.Fatalf("rollouts start: %q: %v", out, err)
	}
	return id
}

type rolloutJSON struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	Wave   int    `json:"wave"`
	Stores []struct {
		Store     string `json:"store"`
		Wave      int    `json:"wave"`
		State     string `json:"state"`
		CommandID string `json:"command_id"`
		Tries     int    `json:"tries"`
		Attempts  int    `json:"attempts"`
		Detail    string `json:"detail"`
	} `json:"stores"`
}

func (h *hub) rollout(t testing.TB, id int64) rolloutJSON {
	t.Helper()
	var ro rolloutJSON
	b, err := h.Get(fmt.Sprintf("/api/v1/rollouts/%d", id))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ro); err != nil {
		t.Fatal(err)
	}
	return ro
}

// waitRollout waits for rollout id to reach state.
func (h *hub) waitRollout(t testing.TB, id int64, state string, d time.Duration) rolloutJSON {
	t.Helper()
	var ro rolloutJSON
	eventually(t, d, fmt.Sprintf("rollout %d %s", id, state), func() error {
		ro = h.rollout(t, id)
		if ro.State != state {
			return fmt.Errorf("rollout %+v", ro)
		}
		return nil
	})
	return ro
}

// waitOnline waits until store's agent reports online on version with its os/arch.
func (h *hub) waitOnline(t testing.TB, store, version string, d time.Duration) {
	t.Helper()
	eventually(t, d, store+" online on "+version, func() error {
		si, err := h.Store(store)
		if err != nil {
			return err
		}
		if st := si.Status; st == nil || st.State != "online" || st.Version != version || st.OS != runtime.GOOS || st.Arch != runtime.GOARCH {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

// updateReport is the store's last update report at the hub (Status.Update).
func (h *hub) updateReport(t testing.TB, store string) (*protocol.UpdateReport, string) {
	t.Helper()
	si, err := h.Store(store)
	if err != nil || si.Status == nil {
		return nil, ""
	}
	return si.Status.Update, si.Status.Version
}

// TestUpdateRollsOutInWindow: a running v1 agent, fed continuously by the simulator, is offered
// v2 by a rollout; nothing is sent while its maintenance window is closed; once it is open the
// agent downloads, verifies, runs the trial, swaps its own executable and execs it (same pid),
// reports v2 healthy; every record before, during and after is at the hub exactly once, in one
// epoch, and the spool passes `check`.
func TestUpdateRollsOutInWindow(t *testing.T) {
	k := updateKit(t)
	v1, v2 := k.agent(t, "v1.0.0"), k.agent(t, "v2.0.0")
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h, hubCfg := startUpdHub(t, dir, "")
	const store = "S001"
	journal := filepath.Join(dir, "T1.jsonl")
	const n = 1000
	simP := runSim(t, dir, journal, "T1", n, 40, 11)
	a := startUpdAgent(t, dir, h, store, enroll(t, dir, store, "tcp://"+h.MQTT, "--config", hubCfg), journal, v1)
	pid := a.p.Cmd.Process.Pid
	h.waitOnline(t, store, "v1.0.0", 30*time.Second)

	publish(t, h, v2, "v2.0.0", k.sec)
	// A window that does not hold now (UTC, the store's zone).
	closed := "Mon-Sun 03:00-04:00"
	if hr := time.Now().UTC().Hour(); hr >= 2 && hr <= 5 {
		closed = "Mon-Sun 15:00-16:00"
	}
	h.CLI(t, "stores", "set", store, "--tz", "UTC", "--maintenance", closed)
	id := startRollout(t, h, "--release", "v2.0.0", "--waves", "1,100%")
	// 40 ticks with the window closed: the store waits, saying why (the window, or a backlog
	// while records flow: both hold it back), and the agent is not offered it.
	var ro rolloutJSON
	sawWindow := false
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		ro = h.rollout(t, id)
		if ro.State != "running" || len(ro.Stores) != 1 || ro.Stores[0].State != "pending" || ro.Stores[0].Attempts != 0 {
			t.Fatalf("with the window closed the rollout is %+v", ro)
		}
		sawWindow = sawWindow || strings.Contains(ro.Stores[0].Detail, "outside its maintenance window "+closed)
	}
	if !sawWindow {
		t.Fatalf("the rollout never said the store waits for its window: %+v", ro)
	}
	if u, v := h.updateReport(t, store); u != nil || v != "v1.0.0" {
		t.Fatalf("with the window closed the agent reports %s and update %+v", v, u)
	}
	if b, _ := os.ReadFile(a.p.Log); bytes.Contains(b, []byte("update:")) || bytes.Contains(b, []byte(`msg=update`)) {
		t.Fatalf("the agent heard of the update with its window closed:\n%s", tail(b, 3000))
	}
	before, _ := h.Store(store)
	h.CLI(t, "stores", "set", store, "--maintenance", "Mon-Sun 00:00-24:00")
	opened := time.Now()

	eventually(t, 90*time.Second, "the agent reporting v2.0.0 healthy", func() error {
		if a.p.Exited() {
			t.Fatalf("the agent process exited: %v", a.p.Err)
		}
		u, v := h.updateReport(t, store)
		if u == nil || u.State != protocol.UpdateHealthy || v != "v2.0.0" {
			return fmt.Errorf("version %s, update %+v", v, u)
		}
		return nil
	})
	t.Logf("updated %.1fs after the window opened", time.Since(opened).Seconds())
	during, _ := h.Store(store)
	ro = h.waitRollout(t, id, "done", 30*time.Second)
	if ro.Stores[0].State != protocol.UpdateHealthy {
		t.Fatalf("rollout store: %+v", ro.Stores[0])
	}
	status := h.CLI(t, "rollouts", "status", fmt.Sprint(id))
	if !strings.Contains(status, "done") || !strings.Contains(status, "healthy") {
		t.Fatalf("rollouts status:\n%s", status)
	}
	if a.p.Cmd.Process.Pid != pid || a.p.Exited() {
		t.Fatalf("the agent is not the same process (exec in place expected)")
	}
	// The executable is v2's bytes, v1's are kept beside it.
	if got, want := mustRead(t, a.exe), mustRead(t, v2); !bytes.Equal(got, want) {
		t.Fatal("the agent's executable is not the v2 build after the update")
	}
	if got, want := mustRead(t, a.exe+".old"), mustRead(t, v1); !bytes.Equal(got, want) {
		t.Fatal("the previous binary is not kept as .old")
	}

	<-simP.Done
	if simP.Err != nil {
		t.Fatalf("simulator: %v", simP.Err)
	}
	h.WaitRecords(t, store, n, 90*time.Second)
	if before.Records == 0 || during.Records >= n {
		t.Fatalf("records at the hub: %d when the window opened, %d at healthy, of %d: the update did not happen mid-stream", before.Records, during.Records, n)
	}
	t.Logf("records at the hub: %d when the window opened, %d at healthy, %d at the end", before.Records, during.Records, n)
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, journal)})
	a.p.Stop(t)
	if out, err := exec.Command(a.exe, "check", "--config", a.cfg).CombinedOutput(); err != nil {
		t.Fatalf("check after the update: %v\n%s", err, out)
	}
	if out, _ := exec.Command(a.exe, "version").CombinedOutput(); !strings.Contains(string(out), "v2.0.0") {
		t.Fatalf("version: %s", out)
	}
	checkLogs(t, dir)
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hubPublisher is an MQTT client with the hub's credentials on a locked-down external broker:
// it sends commands to agents exactly as the hub does (QoS 1 on down/commands).
func hubPublisher(t testing.TB, url, pwFile string) mqtt.Client {
	t.Helper()
	pw := strings.TrimSpace(string(mustRead(t, pwFile)))
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("e2e-as-hub-%d", time.Now().UnixNano())).
		SetUsername("lanebridge-hub").SetPassword(pw).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect as the hub: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// TestRollbackBrokenRelease: a v2 agent (records flowing) is offered v3, a signed release whose
// binary is the update package's testdata/exits: a program that exits at once, so it can never
// report healthy (a real agent build passes its health check by design; what is tested here is
// the agent's reaction to a release that does not). The agent runs it as its trial child, sees
// it exit, keeps its own binary and runs on as v2 (same process), reporting rolled_back with
// the reason; the hub shows that and halts the rollout. A second rollout of v3 is refused by
// the agent (rolled back here before): v3's trial ran once. Last, a real agent build published
// under the wrong version (the v1.0.0 build as v3.1.0) fails its trial on the mismatch.
func TestRollbackBrokenRelease(t *testing.T) {
	k := updateKit(t)
	v1, v2, v3 := k.agent(t, "v1.0.0"), k.agent(t, "v2.0.0"), k.broken(t, "exits")
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h, hubCfg := startUpdHub(t, dir, "")
	const store = "S002"
	journal := filepath.Join(dir, "T1.jsonl")
	const n = 700
	simP := runSim(t, dir, journal, "T1", n, 40, 12)
	a := startUpdAgent(t, dir, h, store, enroll(t, dir, store, "tcp://"+h.MQTT, "--config", hubCfg), journal, v2)
	pid := a.p.Cmd.Process.Pid
	h.waitOnline(t, store, "v2.0.0", 30*time.Second)

	publish(t, h, v3, "v3.0.0", k.sec)
	id := startRollout(t, h, "--release", "v3.0.0", "--waves", "100%")
	ro := h.waitRollout(t, id, "halted", 60*time.Second)
	if rs := ro.Stores[0]; rs.State != protocol.UpdateRolledBack || !strings.Contains(rs.Detail, "v3.0.0 exited during its trial before reporting healthy") {
		t.Fatalf("rollout store: %+v", rs)
	}
	if !strings.Contains(ro.Reason, "1 failures of 1 stores cross max_failures 5%") || !strings.Contains(ro.Reason, store+" rolled_back") {
		t.Fatalf("rollout reason: %q", ro.Reason)
	}
	t.Logf("rollout %d: %s; %s: %s", id, ro.Reason, store, ro.Stores[0].Detail)
	u, v := h.updateReport(t, store)
	if u == nil || u.State != protocol.UpdateRolledBack || u.Version != "v3.0.0" || v != "v2.0.0" {
		t.Fatalf("store status: version %s, update %+v", v, u)
	}
	if a.p.Exited() || a.p.Cmd.Process.Pid != pid {
		t.Fatal("the agent process did not run on")
	}
	if !bytes.Equal(mustRead(t, a.exe), mustRead(t, v2)) {
		t.Fatal("the agent's executable changed")
	}
	// Still capturing: the records after the rollback arrive.
	after, _ := h.Store(store)
	<-simP.Done
	h.WaitRecords(t, store, n, 90*time.Second)
	if after.Records >= n {
		t.Fatalf("all %d records were at the hub before the rollback was seen: the test proves nothing about capture after it", n)
	}
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, journal)})

	// v3 is not retried, even when a new rollout offers it again.
	id2 := startRollout(t, h, "--release", "v3.0.0", "--waves", "100%", "--max-failures", "1")
	ro = h.waitRollout(t, id2, "done", 60*time.Second)
	if rs := ro.Stores[0]; rs.State != protocol.UpdateRefused || !strings.Contains(rs.Detail, "v3.0.0 was rolled back on this agent before; it is not retried") {
		t.Fatalf("second rollout store: %+v", rs)
	}
	if c := bytes.Count(mustRead(t, a.p.Log), []byte(`msg="update: trial started"`)); c != 1 {
		t.Fatalf("%d trials in the agent log, want 1", c)
	}

	// A real agent build published under a version it is not: the v1.0.0 build as v3.1.0
	// (signed, so every check of the download passes). Its trial must fail on the mismatch:
	// swapped in, it would put this agent back on v1 below the highest version it has run.
	publish(t, h, v1, "v3.1.0", k.sec)
	id3 := startRollout(t, h, "--release", "v3.1.0", "--waves", "100%", "--max-failures", "1")
	ro = h.waitRollout(t, id3, "done", 60*time.Second)
	if rs := ro.Stores[0]; rs.State != protocol.UpdateRolledBack || !strings.Contains(rs.Detail, "reports version v1.0.0, not v3.1.0") {
		t.Fatalf("mislabelled release: rollout store %+v", rs)
	}
	t.Logf("mislabelled release: %s", ro.Stores[0].Detail)
	if _, v := h.updateReport(t, store); v != "v2.0.0" || !bytes.Equal(mustRead(t, a.exe), mustRead(t, v2)) {
		t.Fatalf("after the mislabelled release the agent runs %s", v)
	}
	a.p.Stop(t)
	checkLogs(t, dir)
}

// cliFails runs a hub subcommand that must fail and returns its stderr.
func (h *hub) cliFails(t testing.TB, args ...string) string {
	t.Helper()
	args = append(args, "--data", filepath.Join(h.Dir, "hub"))
	if i := slices.Index(h.Extra, "--config"); i >= 0 && i+1 < len(h.Extra) {
		args = append(args, h.Extra[i:i+2]...)
	}
	cmd := exec.Command(filepath.Join(binDir, "lanebridge-hub"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err == nil {
		t.Fatalf("lanebridge-hub %s succeeded: %s", strings.Join(args, " "), out.String())
	}
	return errb.String()
}

// updateCommand is the update command the hub's rollout engine would send for a published
// release (its signed manifest as stored, read from the hub's database).
func updateCommand(t testing.TB, h *hub, id, version, goos, arch string, edit func(*protocol.SignedManifest)) []byte {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(h.Dir, "hub", "hub.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sm protocol.SignedManifest
	if err := db.QueryRow(`SELECT manifest_body, manifest_signature FROM releases WHERE version = ? AND os = ? AND arch = ?`, version, goos, arch).
		Scan(&sm.Body, &sm.Signature); err != nil {
		t.Fatalf("release %s %s/%s: %v", version, goos, arch, err)
	}
	if edit != nil {
		edit(&sm)
	}
	b, err := json.Marshal(protocol.Command{V: protocol.Version, ID: id, Type: protocol.CommandUpdate, Manifest: &sm,
		URL: fmt.Sprintf("/api/v1/agent/releases/%s/%s/%s/binary?channel=stable", version, goos, arch)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUpdateRefusals: a v2 agent is offered five releases it must refuse, each with its reason
// in the store's status at the hub (and in the rollout, for those the hub rolls out):
//   - tampered: the binary in the hub's releases dir changed after publish (same size): sha256;
//   - bad signature: the release published with a key the agent does not trust;
//   - expired, wrong os/arch, downgrade: the hub itself never rolls these out (`rollouts start`
//     leaves out an expired release (unit-tested: it cannot be published expiring in under a
//     minute), a store of another os/arch and a store already on a higher version: the last two
//     proven below); the command is sent to the agent directly over MQTT with the hub's own
//     broker credentials (a locked-down Mosquitto), as a hub with a bug, or a replay, would.
//
// The refused releases' bytes are the v2 build (they are refused before they could run; if a
// defence were missing the agent would go on to try it and the test would see no refusal).
// Afterwards the agent still runs v2 from its untouched executable.
func TestUpdateRefusals(t *testing.T) {
	k := updateKit(t)
	v2 := k.agent(t, "v2.0.0")
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	const store = "S003"
	lb := startLockedBroker(t, dir, dir, updHubYAML, store)
	h := startHub(t, dir, "--config", lb.HubCfg)
	journal := filepath.Join(dir, "T1.jsonl")
	simP := runSim(t, dir, journal, "T1", 100, 50, 13)
	a := startUpdAgent(t, dir, h, store, lb.Agents[store], journal, v2)
	h.waitOnline(t, store, "v2.0.0", 30*time.Second)
	asHub := hubPublisher(t, lb.MQ.URL, filepath.Join(dir, "hub-broker.pw"))

	// refusedByRollout rolls version out and returns the store's detail once it is refused.
	refusedByRollout := func(version string) string {
		t.Helper()
		id := startRollout(t, h, "--release", version, "--waves", "100%", "--max-failures", "1")
		ro := h.waitRollout(t, id, "done", 60*time.Second)
		rs := ro.Stores[0]
		if rs.State != protocol.UpdateRefused {
			t.Fatalf("rollout of %s: store %+v", version, rs)
		}
		u, _ := h.updateReport(t, store)
		if u == nil || u.CommandID != rs.CommandID || u.State != protocol.UpdateRefused || u.Detail != rs.Detail {
			t.Fatalf("store status update %+v, rollout store %+v", u, rs)
		}
		return rs.Detail
	}
	// refusedDirect sends the command as the hub would and returns the agent's reason.
	refusedDirect := func(cmdID, version, goos, arch string, edit func(*protocol.SignedManifest)) string {
		t.Helper()
		tok := asHub.Publish(protocol.CommandsTopic(store), 1, false, updateCommand(t, h, cmdID, version, goos, arch, edit))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish as the hub: %v", tok.Error())
		}
		var u *protocol.UpdateReport
		eventually(t, 30*time.Second, "the agent's report on "+cmdID, func() error {
			u, _ = h.updateReport(t, store)
			if u == nil || u.CommandID != cmdID || u.State != protocol.UpdateRefused {
				return fmt.Errorf("update %+v", u)
			}
			return nil
		})
		return u.Detail
	}
	check := func(what, detail, want string) {
		t.Helper()
		if !strings.Contains(detail, want) {
			t.Errorf("%s: refused with %q, want it to say %q", what, detail, want)
		}
		t.Logf("%s: refused: %s", what, detail)
	}

	// Tampered binary.
	publish(t, h, v2, "v2.1.0", k.sec)
	stored, _ := filepath.Glob(filepath.Join(dir, "hub", "releases", "[0-9a-f]*"))
	if len(stored) != 1 {
		t.Fatalf("releases dir: %v", stored)
	}
	b := mustRead(t, stored[0])
	b[len(b)/2] ^= 0x55
	if err := os.WriteFile(stored[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	check("tampered binary", refusedByRollout("v2.1.0"), "sha256 mismatch")

	// Manifest (and binary) signed by a key this agent does not trust.
	publish(t, h, v2, "v2.2.0", k.otherSec)
	check("bad signature", refusedByRollout("v2.2.0"), "manifest refused: manifest: "+protocol.ErrBadSignature.Error())

	// Expired manifest. `releases publish` takes lifetimes of a minute or more (--expires 1s is
	// refused), too long to wait for here: the operator's key re-signs (Debian's minisign -S) the
	// manifest publish made, its expiry set a minute in the past — a correctly signed manifest
	// that has expired, as a replayed old one would be.
	publish(t, h, v2, "v2.3.0", k.sec)
	if e := h.cliFails(t, "releases", "publish", "--binary", v2, "--version", "v2.3.1", "--os", runtime.GOOS, "--arch", runtime.GOARCH,
		"--key", k.sec, "--expires", "1s"); !strings.Contains(e, "--expires") {
		t.Fatalf("publish --expires 1s: %s", e)
	}
	expired := func(sm *protocol.SignedManifest) {
		var m map[string]any
		if err := json.Unmarshal([]byte(sm.Body), &m); err != nil {
			t.Fatal(err)
		}
		m["expires"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		body, _ := json.Marshal(m)
		f := filepath.Join(dir, "expired-manifest.json")
		if err := os.WriteFile(f, body, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("minisign", "-S", "-s", k.sec, "-m", f).CombinedOutput(); err != nil {
			t.Fatalf("minisign -S: %v %s", err, out)
		}
		sm.Body, sm.Signature = string(body), string(mustRead(t, f+".minisig"))
	}
	check("expired manifest", refusedDirect("e2e-expired", "v2.3.0", runtime.GOOS, runtime.GOARCH, expired), "manifest expired at")

	// Wrong os/arch.
	other := "arm64"
	if runtime.GOARCH == other {
		other = "amd64"
	}
	publish(t, h, v2, "v2.4.0", k.sec, "--arch", other)
	if e := h.cliFails(t, "rollouts", "start", "--release", "v2.4.0", "--waves", "100%"); !strings.Contains(e, "no store matches") {
		t.Fatalf("rollouts start of a release for another arch: %s", e)
	}
	check("wrong os/arch", refusedDirect("e2e-arch", "v2.4.0", runtime.GOOS, other, nil),
		fmt.Sprintf("release is for %s/%s, this agent runs on %s/%s", runtime.GOOS, other, runtime.GOOS, runtime.GOARCH))

	// Downgrade.
	publish(t, h, v2, "v1.5.0", k.sec)
	if e := h.cliFails(t, "rollouts", "start", "--release", "v1.5.0", "--waves", "100%"); !strings.Contains(e, "no store matches") {
		t.Fatalf("rollouts start of a lower version: %s", e)
	}
	check("downgrade", refusedDirect("e2e-downgrade", "v1.5.0", runtime.GOOS, runtime.GOARCH, nil), "downgrade refused: v1.5.0 is lower than the running v2.0.0")

	if bytes.Contains(mustRead(t, a.p.Log), []byte("trial started")) {
		t.Error("the agent ran a trial of a refused release")
	}
	if !bytes.Equal(mustRead(t, a.exe), mustRead(t, v2)) {
		t.Error("the agent's executable changed")
	}
	if _, v := h.updateReport(t, store); v != "v2.0.0" || a.p.Exited() {
		t.Errorf("the agent runs %q (exited: %v)", v, a.p.Exited())
	}
	<-simP.Done
	h.WaitRecords(t, store, 100, 60*time.Second)
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, journal)})
	a.p.Stop(t)
	checkLogs(t, dir)
	lb.CheckLockedDown(t, dir)
}

// TestRolloutHaltsAtFailureThreshold: four v2 agents on one hub are offered v3, whose binary is
// testdata/hangs (it runs and never reports healthy: each trial ends at update.health_timeout,
// 5s, and is killed). Waves 1,2,100% with --max-failures 25% (one failure of four tolerated):
// wave 1's store fails and the rollout goes on; wave 2's failure is the second, which crosses
// the threshold, and the rollout halts at wave 2 by itself. The last two stores are never
// offered v3: no command, no trial.
func TestRolloutHaltsAtFailureThreshold(t *testing.T) {
	k := updateKit(t)
	v2, v3 := k.agent(t, "v2.0.0"), k.broken(t, "hangs")
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h, hubCfg := startUpdHub(t, dir, "")
	stores := []string{"S011", "S012", "S013", "S014"}
	agents := map[string]*updAgent{}
	for _, s := range stores {
		journal := filepath.Join(dir, s+"-T1.jsonl")
		if err := os.WriteFile(journal, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		agents[s] = startUpdAgent(t, dir, h, s, enroll(t, dir, s, "tcp://"+h.MQTT, "--config", hubCfg), journal, v2)
	}
	for _, s := range stores {
		h.waitOnline(t, s, "v2.0.0", 60*time.Second)
	}
	publish(t, h, v3, "v3.0.0", k.sec)
	id := startRollout(t, h, "--release", "v3.0.0", "--waves", "1,2,100%", "--max-failures", "25%")
	ro := h.waitRollout(t, id, "halted", 90*time.Second)
	t.Logf("rollout %d: %s", id, ro.Reason)
	if ro.Wave != 1 || !strings.Contains(ro.Reason, "halted at wave 2: 2 failures of 4 stores cross max_failures 25%") {
		t.Fatalf("rollout halted at wave %d: %q", ro.Wave+1, ro.Reason)
	}
	for _, rs := range ro.Stores {
		switch rs.Store {
		case "S011", "S012":
			if rs.State != protocol.UpdateRolledBack || !strings.Contains(rs.Detail, "did not report healthy within 5s (update.health_timeout)") {
				t.Errorf("store %s: %+v", rs.Store, rs)
			}
		default:
			if rs.State != "pending" || rs.CommandID != "" || rs.Attempts != 0 {
				t.Errorf("store %s was reached: %+v", rs.Store, rs)
			}
		}
	}
	// Halted stays halted: the last stores are not offered v3 later either.
	time.Sleep(time.Second)
	for _, s := range stores {
		a := agents[s]
		trials := bytes.Count(mustRead(t, a.p.Log), []byte(`msg="update: trial started"`))
		u, v := h.updateReport(t, s)
		switch s {
		case "S011", "S012":
			if trials != 1 || u == nil || u.State != protocol.UpdateRolledBack || v != "v2.0.0" {
				t.Errorf("%s: %d trials, runs %s, update %+v", s, trials, v, u)
			}
		default:
			if trials != 0 || u != nil || v != "v2.0.0" {
				t.Errorf("%s: %d trials, runs %s, update %+v", s, trials, v, u)
			}
		}
		if a.p.Exited() || !bytes.Equal(mustRead(t, a.exe), mustRead(t, v2)) {
			t.Errorf("%s: exited %v, or its executable changed", s, a.p.Exited())
		}
	}
	if ro := h.rollout(t, id); ro.State != "halted" || ro.Wave != 1 {
		t.Errorf("rollout later: %+v", ro)
	}
	for _, s := range stores {
		agents[s].p.Stop(t)
	}
	checkLogs(t, dir)
}
