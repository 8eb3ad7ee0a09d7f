//go:build linux

package update

// Real binaries: two agent builds stamped v1.0.0 and v2.0.0 with a test key built in, run from a
// temp dir against the real broker (LANEBRIDGE_TEST_MQTT_URL). The hub's download endpoint is
// stood in for by an httptest server (the real one is the hub's; the e2e suite drives that);
// the update command goes over MQTT exactly as the hub sends it.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/protocol"
)

const (
	appPkg   = "github.com/lanebridge/lanebridge/agent/internal/app"
	trustPkg = "github.com/lanebridge/lanebridge/agent/internal/trust"
)

func brokerURL(t *testing.T) string {
	u := os.Getenv("LANEBRIDGE_TEST_MQTT_URL")
	if u == "" {
		t.Skip("LANEBRIDGE_TEST_MQTT_URL not set (a real broker, e.g. tcp://127.0.0.1:1883)")
	}
	return u
}

// goBuild builds pkg into dir/name with ldflags (cache-friendly: same flags, same build).
func goBuild(t *testing.T, pkg, out, ldflags string) []byte {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func agentLDFlags(version string, k testKey) string {
	return fmt.Sprintf("-X %s.Version=%s -X %s.Keys=%s", appPkg, version, trustPkg, pubLine(k))
}

type fleet struct {
	t        *testing.T
	dir      string
	exe      string // the agent's target path
	cfg      string
	listen   string
	journal  string
	store    string
	hubc     mqtt.Client
	statuses chan protocol.Status
	cmd      *exec.Cmd
	out      *lockedBuf
	exited   chan error
	written  atomic.Int64
	mu       sync.Mutex
	served   []byte // what the download endpoint serves
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newFleet installs agent (the v1 binary) in a temp dir with its config, a stand-in hub
// download endpoint and an MQTT client playing the hub.
func newFleet(t *testing.T, agent []byte, healthTimeout string) *fleet {
	broker := brokerURL(t)
	f := &fleet{t: t, dir: t.TempDir(), listen: freePort(t), store: fmt.Sprintf("UPD%d", time.Now().UnixNano()%1e9), statuses: make(chan protocol.Status, 256)}
	f.exe = filepath.Join(f.dir, "bin", "lanebridge-agent")
	os.MkdirAll(filepath.Dir(f.exe), 0o755)
	if err := os.WriteFile(f.exe, agent, 0o755); err != nil {
		t.Fatal(err)
	}
	f.journal = filepath.Join(f.dir, "pos", "journal.jsonl")
	os.MkdirAll(filepath.Dir(f.journal), 0o755)
	os.WriteFile(f.journal, nil, 0o644)
	srv := hubEndpoint(t, f)
	f.cfg = filepath.Join(f.dir, "agent.yaml")
	os.WriteFile(f.cfg, fmt.Appendf(nil, `store: %s
data_dir: %s
listen: %s
hub:
  broker: %s
  password: pw
  heartbeat: 1s
terminals:
  - {id: T1, source: "file://%s", profile: canonical-jsonl}
update:
  hub_url: %s
  health_timeout: %s
`, f.store, filepath.Join(f.dir, "data"), f.listen, broker, f.journal, srv, healthTimeout), 0o600)

	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID("hub-" + f.store).SetCleanSession(true)
	f.hubc = mqtt.NewClient(o)
	if tok := f.hubc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("hub client connect: %v", tok.Error())
	}
	t.Cleanup(func() {
		// Clear the retained status so the shared broker keeps nothing of this test.
		f.hubc.Publish(protocol.StatusTopic(f.store), 1, true, []byte{}).WaitTimeout(5 * time.Second)
		f.hubc.Disconnect(100)
	})
	tok := f.hubc.Subscribe(protocol.StatusTopic(f.store), 1, func(_ mqtt.Client, m mqtt.Message) {
		var s protocol.Status
		if json.Unmarshal(m.Payload(), &s) == nil {
			select {
			case f.statuses <- s:
			default:
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return f
}

// hubEndpoint stands in for GET /api/v1/agent/releases/{version}/{os}/{arch}/binary.
func hubEndpoint(t *testing.T, f *fleet) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != f.store || p != "pw" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		b := f.served
		f.mu.Unlock()
		w.Write(b)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func (f *fleet) start() {
	f.out = &lockedBuf{}
	f.cmd = exec.Command(f.exe, "run", "--config", f.cfg)
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	f.cmd.WaitDelay = 2 * time.Second // an orphaned child holding the output pipe must not block Wait
	if err := f.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.exited = make(chan error, 1)
	go func() { f.exited <- f.cmd.Wait() }()
	f.t.Cleanup(f.stop)
}

func (f *fleet) stop() {
	if f.cmd == nil {
		return
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(20 * time.Second):
		f.cmd.Process.Kill()
		<-f.exited
		f.t.Errorf("agent did not stop on SIGTERM")
	}
	f.cmd = nil
}

// write appends n canonical-jsonl sales to the terminal's journal.
func (f *fleet) write(n int) {
	fh, err := os.OpenFile(f.journal, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		f.t.Error(err)
		return
	}
	defer fh.Close()
	for range n {
		i := f.written.Add(1)
		fmt.Fprintf(fh, `{"kind":"sale","terminal":"T1","receipt":"R%05d","business_date":"2024-03-14","time":"2024-03-14T14:05:00-04:00",`+
			`"lines":[{"description":"SODA","quantity":"1","unit_price":100,"amount":100}],"total":100,"tenders":[{"type":"cash","amount":100}]}`+"\n", i)
	}
}

// keepWriting appends a sale every 50ms until the returned func is called.
func (f *fleet) keepWriting() func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				f.write(1)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

type local struct {
	protocol.Status
	Connected bool `json:"connected"`
}

// waitLocal polls the agent's local /status until cond holds.
func (f *fleet) waitLocal(what string, within time.Duration, cond func(local) bool) local {
	f.t.Helper()
	deadline := time.Now().Add(within)
	var last local
	for time.Now().Before(deadline) {
		select {
		case err := <-f.exited:
			f.cmd = nil
			f.t.Fatalf("agent exited (%v) while waiting for %s; output:\n%s", err, what, f.out)
		default:
		}
		if resp, err := http.Get("http://" + f.listen + "/status"); err == nil {
			var ls local
			if json.NewDecoder(resp.Body).Decode(&ls) == nil {
				last = ls
				if cond(ls) {
					resp.Body.Close()
					return ls
				}
			}
			resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("timed out waiting for %s; last status %+v update %+v; output:\n%s", what, last.Status, last.Update, f.out)
	return last
}

// waitHub waits for a status published to the hub that satisfies cond.
func (f *fleet) waitHub(what string, within time.Duration, cond func(protocol.Status) bool) protocol.Status {
	f.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case s := <-f.statuses:
			if cond(s) {
				return s
			}
		case <-deadline:
			f.t.Fatalf("the hub saw no status with %s; output:\n%s", what, f.out)
		}
	}
}

// offer publishes the update command the hub would send for a release signed by k.
func (f *fleet) offer(id string, sm protocol.SignedManifest, version string) {
	c := protocol.Command{V: protocol.Version, ID: id, Type: protocol.CommandUpdate, Manifest: &sm,
		URL: fmt.Sprintf("/api/v1/agent/releases/%s/%s/%s/binary", version, "linux", "amd64")}
	b, _ := json.Marshal(c)
	if tok := f.hubc.Publish(protocol.CommandsTopic(f.store), 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		f.t.Fatalf("publish command: %v", tok.Error())
	}
}

func (f *fleet) serve(b []byte) {
	f.mu.Lock()
	f.served = b
	f.mu.Unlock()
}

// pubLine is the base64 line of a minisign public key (what trust.Keys takes).
func pubLine(k testKey) string {
	b, _ := k.pub.MarshalText()
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

func TestAgentBinarySwapsToV2(t *testing.T) {
	brokerURL(t)
	k := newKey(t)
	bd := t.TempDir()
	v1 := goBuild(t, "../../cmd/lanebridge-agent", filepath.Join(bd, "v1"), agentLDFlags("v1.0.0", k))
	v2 := goBuild(t, "../../cmd/lanebridge-agent", filepath.Join(bd, "v2"), agentLDFlags("v2.0.0", k))
	f := newFleet(t, v1, "20s")
	f.start()
	pid := f.cmd.Process.Pid
	f.write(5)
	ls := f.waitLocal("v1 connected with 5 records", 20*time.Second, func(l local) bool { return l.Connected && l.LastSeq == 5 })
	if ls.Version != "v1.0.0" || ls.OS == "" || ls.Arch == "" || ls.Channel != "stable" {
		t.Fatalf("v1 status: version %q os %q arch %q channel %q", ls.Version, ls.OS, ls.Arch, ls.Channel)
	}
	epoch := ls.Epoch

	f.serve(v2)
	stop := f.keepWriting()
	f.offer("u1", release(t, k, "v2.0.0", v2, nil), "v2.0.0")
	f.waitHub("the trial of v2", 30*time.Second, func(s protocol.Status) bool {
		return s.Update != nil && s.Update.State == protocol.UpdateTrial && s.Update.Version == "v2.0.0"
	})
	ls = f.waitLocal("v2 healthy", 45*time.Second, func(l local) bool {
		return l.Version == "v2.0.0" && l.Update != nil && l.Update.State == protocol.UpdateHealthy
	})
	time.Sleep(300 * time.Millisecond)
	stop()
	total := uint64(f.written.Load())
	ls = f.waitLocal("every record spooled", 20*time.Second, func(l local) bool { return l.LastSeq >= total })
	if ls.LastSeq != total || ls.Epoch != epoch {
		t.Fatalf("spool after the update: epoch %s last_seq %d; before: epoch %s, %d records written", ls.Epoch, ls.LastSeq, epoch, total)
	}
	if ls.Update.From != "v1.0.0" || ls.Update.CommandID != "u1" {
		t.Fatalf("report %+v", ls.Update)
	}
	f.waitHub("v2 healthy", 10*time.Second, func(s protocol.Status) bool {
		return s.Version == "v2.0.0" && s.Update != nil && s.Update.State == protocol.UpdateHealthy
	})
	if f.cmd.Process.Pid != pid {
		t.Fatal("pid changed")
	}
	if b, _ := os.ReadFile(f.exe); sha(b) != sha(v2) {
		t.Fatal("the target path does not hold v2")
	}
	if b, _ := os.ReadFile(f.exe + ".old"); sha(b) != sha(v1) {
		t.Fatal("the previous binary was not kept at .old")
	}
	out, err := exec.Command(f.exe, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v2.0.0") || !strings.Contains(string(out), fmt.Sprintf("%016X", k.pub.ID())) {
		t.Fatalf("version: %v\n%s", err, out)
	}
	// The same command again (QoS 1 may repeat) changes nothing.
	f.offer("u1", release(t, k, "v2.0.0", v2, nil), "v2.0.0")
	time.Sleep(time.Second)
	if ls := f.waitLocal("still healthy", 5*time.Second, func(local) bool { return true }); ls.Update.State != protocol.UpdateHealthy || ls.Version != "v2.0.0" {
		t.Fatalf("after a repeated command: %s %+v", ls.Version, ls.Update)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "data", pendingFile)); !os.IsNotExist(err) {
		t.Fatalf("pending file left: %v", err)
	}
}

// A signed v3 that is broken (exits at once, or hangs without ever reporting healthy) is rolled
// back by the old process: the target keeps v1, records keep flowing, the hub hears
// rolled_back with the reason, and that version is not retried.
func TestAgentBinaryTrialRollsBackBrokenRelease(t *testing.T) {
	brokerURL(t)
	k := newKey(t)
	bd := t.TempDir()
	v1 := goBuild(t, "../../cmd/lanebridge-agent", filepath.Join(bd, "v1"), agentLDFlags("v1.0.0", k))
	for _, tc := range []struct {
		name, pkg, reason string
	}{
		{"exits", "./testdata/exits", "exited during its trial before reporting healthy (exit status 3)"},
		{"hangs", "./testdata/hangs", "did not report healthy within 4s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v3 := goBuild(t, tc.pkg, filepath.Join(bd, tc.name), "")
			f := newFleet(t, v1, "4s")
			f.start()
			pid := f.cmd.Process.Pid
			f.write(3)
			f.waitLocal("v1 connected", 20*time.Second, func(l local) bool { return l.Connected && l.LastSeq == 3 })
			f.serve(v3)
			stop := f.keepWriting()
			f.offer("u3", release(t, k, "v3.0.0", v3, nil), "v3.0.0")
			s := f.waitHub("rolled_back", 30*time.Second, func(s protocol.Status) bool {
				return s.Update != nil && s.Update.State == protocol.UpdateRolledBack
			})
			if s.Version != "v1.0.0" || s.Update.Version != "v3.0.0" || !strings.Contains(s.Update.Detail, tc.reason) {
				t.Fatalf("status %s, report %+v; want reason %q", s.Version, s.Update, tc.reason)
			}
			time.Sleep(300 * time.Millisecond)
			stop()
			total := uint64(f.written.Load())
			f.waitLocal("every record spooled", 20*time.Second, func(l local) bool { return l.LastSeq == total && l.Connected })
			if b, _ := os.ReadFile(f.exe); sha(b) != sha(v1) {
				t.Fatal("the target path does not hold v1 any more")
			}
			if f.cmd.Process.Pid != pid {
				t.Fatal("pid changed")
			}
			// Offered again under a new command id: refused, not retried.
			f.offer("u3b", release(t, k, "v3.0.0", v3, nil), "v3.0.0")
			ls := f.waitLocal("refused retry", 10*time.Second, func(l local) bool { return l.Update != nil && l.Update.CommandID == "u3b" })
			if ls.Update.State != protocol.UpdateRefused || !strings.Contains(ls.Update.Detail, "rolled back on this agent before") {
				t.Fatalf("retry: %+v", ls.Update)
			}
		})
	}
}

// A SIGTERM to the agent during a trial (the service being stopped) stops the child and does
// not blame the release: failed (may be offered again), binary untouched, spool closed cleanly.
func TestAgentBinaryStopDuringTrial(t *testing.T) {
	brokerURL(t)
	k := newKey(t)
	bd := t.TempDir()
	v1 := goBuild(t, "../../cmd/lanebridge-agent", filepath.Join(bd, "v1"), agentLDFlags("v1.0.0", k))
	v3 := goBuild(t, "./testdata/hangs", filepath.Join(bd, "hangs"), "")
	f := newFleet(t, v1, "60s")
	f.start()
	f.write(2)
	f.waitLocal("v1 connected", 20*time.Second, func(l local) bool { return l.Connected && l.LastSeq == 2 })
	f.serve(v3)
	f.offer("u4", release(t, k, "v3.0.0", v3, nil), "v3.0.0")
	f.waitHub("the trial", 30*time.Second, func(s protocol.Status) bool {
		return s.Update != nil && s.Update.State == protocol.UpdateTrial
	})
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	f.stop()
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("stop took %s", d)
	}
	var st state
	if err := readJSON(filepath.Join(f.dir, "data", stateFile), &st); err != nil {
		t.Fatal(err)
	}
	if st.Last == nil || st.Last.State != protocol.UpdateFailed || containsStr(st.Failed, "v3.0.0") {
		t.Fatalf("state after a stop during the trial: %+v %+v", st, st.Last)
	}
	if b, _ := os.ReadFile(f.exe); sha(b) != sha(v1) {
		t.Fatal("the target path does not hold v1")
	}
	if out, err := exec.Command(f.exe, "status", "--config", f.cfg).CombinedOutput(); err != nil || !strings.Contains(string(out), "captured (seq):  2") {
		t.Fatalf("status after stop: %v\n%s", err, out)
	}
}

// A power cut of the old process mid-trial (SIGKILL): the child, a real v2, sees its stdin
// close and stops gracefully; the next start runs v1 (never replaced), reports the update
// failed ("interrupted", may be offered again) and has every record.
func TestAgentBinaryParentKilledDuringTrial(t *testing.T) {
	brokerURL(t)
	k := newKey(t)
	bd := t.TempDir()
	v1 := goBuild(t, "../../cmd/lanebridge-agent", filepath.Join(bd, "v1"), agentLDFlags("v1.0.0", k))
	v2 := goBuild(t, "../../cmd/lanebridge-agent", filepath.Join(bd, "v2"), agentLDFlags("v2.0.0", k))
	f := newFleet(t, v1, "30s")
	f.start()
	f.write(4)
	f.waitLocal("v1 connected", 20*time.Second, func(l local) bool { return l.Connected && l.LastSeq == 4 })
	f.serve(v2)
	f.offer("u5", release(t, k, "v2.0.0", v2, nil), "v2.0.0")
	data := filepath.Join(f.dir, "data")
	re := regexp.MustCompile(`msg="update: trial started".* pid=(\d+)`)
	var child int
	deadline := time.Now().Add(30 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(f.out.String()); m != nil {
			child, _ = strconv.Atoi(m[1])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if child == 0 {
		t.Fatalf("no trial started; output:\n%s", f.out)
	}
	if _, err := os.Stat(filepath.Join(data, healthyFile)); err == nil {
		t.Skip("the trial was healthy before the kill; nothing to test on this run")
	}
	f.cmd.Process.Kill()
	<-f.exited
	f.cmd = nil
	// The child stops by itself once its stdin closes.
	for alive(child) {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("the trial child %d outlived its killed parent", child)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b, _ := os.ReadFile(f.exe); sha(b) != sha(v1) {
		t.Fatal("the target path does not hold v1")
	}
	f.start()
	ls := f.waitLocal("v1 back", 20*time.Second, func(l local) bool { return l.Connected && l.Update != nil })
	if ls.Version != "v1.0.0" || ls.Update.State != protocol.UpdateFailed || !strings.Contains(ls.Update.Detail, "interrupted") || ls.LastSeq != 4 {
		t.Fatalf("after the kill: %s last_seq %d report %+v", ls.Version, ls.LastSeq, ls.Update)
	}
	if _, err := os.Stat(filepath.Join(data, pendingFile)); !os.IsNotExist(err) {
		t.Fatal("pending file left")
	}
}

// alive reports whether pid runs (a zombie, unreaped in a container without init, does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// A broken release that ignores its closed stdin does not outlive a SIGKILLed agent (it would
// hold the data dir's files): the kernel kills it with its parent (Pdeathsig).
func TestAgentBinaryHungChildDiesWithParent(t *testing.T) {
	brokerURL(t)
	k := newKey(t)
	bd := t.TempDir()
	v1 := goBuild(t, "../../cmd/lanebridge-agent", filepath.Join(bd, "v1"), agentLDFlags("v1.0.0", k))
	v3 := goBuild(t, "./testdata/hangs", filepath.Join(bd, "hangs"), "")
	f := newFleet(t, v1, "60s")
	f.start()
	f.waitLocal("v1 connected", 20*time.Second, func(l local) bool { return l.Connected })
	f.serve(v3)
	f.offer("u6", release(t, k, "v3.0.0", v3, nil), "v3.0.0")
	re := regexp.MustCompile(`msg="update: trial started".* pid=(\d+)`)
	var child int
	for deadline := time.Now().Add(30 * time.Second); child == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(f.out.String()); m != nil {
			child, _ = strconv.Atoi(m[1])
		}
	}
	if child == 0 {
		t.Fatalf("no trial started; output:\n%s", f.out)
	}
	f.cmd.Process.Kill()
	<-f.exited
	f.cmd = nil
	for deadline := time.Now().Add(5 * time.Second); alive(child); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("the hung trial child %d outlived its killed parent", child)
		}
	}
}
