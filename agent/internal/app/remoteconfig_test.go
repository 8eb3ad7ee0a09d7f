package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/protocol"
)

func mqttURL() string {
	if u := os.Getenv("LANEBRIDGE_TEST_MQTT_URL"); u != "" {
		return u
	}
	return "tcp://127.0.0.1:1883"
}

// pushRig is an agent run by serve on the real (anonymous) test Mosquitto, trusting a
// key made here, and an MQTT client that plays the hub's side of config commands.
type pushRig struct {
	t      *testing.T
	store  string
	path   string
	listen string
	sec    minisign.PrivateKey
	hub    mqtt.Client
	n      int
	errc   chan error
}

func newPushRig(t *testing.T) *pushRig { return newPushRigWith(t, nil) }

// newPushRigWith calls prepare with the data dir before the agent starts.
func newPushRigWith(t *testing.T, prepare func(dataDir string)) *pushRig {
	u, err := nurl(mqttURL())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", u, time.Second); err != nil {
		t.Skipf("needs Mosquitto at %s (LANEBRIDGE_TEST_MQTT_URL): %v", mqttURL(), err)
	} else {
		c.Close()
	}
	pub, sec, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	oldKeys, oldTrial := trustedKeys, trialPeriod
	trustedKeys = func() ([]minisign.PublicKey, error) { return []minisign.PublicKey{pub}, nil }
	trialPeriod = time.Second
	t.Cleanup(func() { trustedKeys, trialPeriod = oldKeys, oldTrial })

	dir := t.TempDir()
	r := &pushRig{t: t, store: fmt.Sprintf("RC%d", time.Now().UnixNano()%1e9), path: filepath.Join(dir, "agent.yaml"), listen: freeAddr(t), sec: sec, errc: make(chan error, 1)}
	journal := filepath.Join(dir, "T1.jsonl")
	os.WriteFile(journal, nil, 0o600)
	cfg := fmt.Sprintf("store: %s\ndata_dir: %s\nlisten: %s\nhub:\n  broker: %s\n  password: test\n  heartbeat: 1s\nterminals:\n  - {id: T1, source: \"file://%s\", profile: canonical-jsonl}\n",
		r.store, filepath.Join(dir, "data"), r.listen, mqttURL(), journal)
	if err := os.WriteFile(r.path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(filepath.Join(dir, "data"))
	}
	r.hub = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(mqttURL()).SetClientID("rc-hub-" + r.store))
	if tok := r.hub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { r.hub.Disconnect(100) })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.errc <- serve(ctx, r.path, io.Discard, func(l *slog.Logger) *slog.Logger { return l }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return r
}

func nurl(u string) (string, error) {
	_, hostport, ok := strings.Cut(u, "://")
	if !ok {
		return "", fmt.Errorf("%q is not a broker URL", u)
	}
	return hostport, nil
}

// manifest signs a config manifest.
func (r *pushRig) manifest(store string, version uint64, overrides string, expires time.Time) protocol.SignedManifest {
	r.t.Helper()
	sm, err := protocol.SignManifest(r.sec, &protocol.Manifest{V: protocol.ManifestVersion, Kind: protocol.ManifestConfig, Product: protocol.ProductAgent,
		Published: time.Now().UTC(), Expires: expires, Store: store, ConfigVersion: version, Overrides: overrides})
	if err != nil {
		r.t.Fatal(err)
	}
	return sm
}

// send publishes a config command with a new id and waits for the agent's report on it.
func (r *pushRig) send(sm protocol.SignedManifest) *protocol.ConfigReport {
	r.t.Helper()
	r.n++
	id := fmt.Sprintf("cmd-%d", r.n)
	b, _ := json.Marshal(protocol.Command{V: protocol.Version, ID: id, Type: protocol.CommandConfig, Manifest: &sm})
	if tok := r.hub.Publish(protocol.CommandsTopic(r.store), 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		r.t.Fatalf("publish: %v", tok.Error())
	}
	return r.waitReport(id, "")
}

// waitReport polls the agent's local status until its config report is about command id (and
// in state, if given), resending nothing: the agent must act on one delivery.
func (r *pushRig) waitReport(id, state string) *protocol.ConfigReport {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-r.errc:
			r.t.Fatalf("the agent stopped: %v", err)
		default:
		}
		resp, err := http.Get("http://" + r.listen + "/status")
		if err == nil {
			var ls localStatus
			err = json.NewDecoder(resp.Body).Decode(&ls)
			resp.Body.Close()
			if c := ls.Config; err == nil && c != nil {
				last = fmt.Sprintf("%+v", *c)
				if c.CommandID == id && (state == "" || c.State == state) && c.State != "" {
					return c
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("no report on %s (%s) within 30s; last %s", id, state, last)
	return nil
}

func (r *pushRig) validate() string {
	r.t.Helper()
	var out, errb bytes.Buffer
	if err := cmdValidate([]string{"--config", r.path}, &out, &errb); err != nil {
		r.t.Fatalf("validate: %v %s", err, errb.String())
	}
	return out.String()
}

// TestConfigPush: issue 10's signed configuration pushes, through the real broker and uplink,
// with real minisign signatures: applied and visible in the effective config; tampered,
// other-store, replayed, expired and forbidden pushes refused (the running version unchanged);
// one that keeps the agent from starting rolled back; a later good one applied again.
func TestConfigPush(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Mosquitto")
	}
	r := newPushRig(t)
	day := time.Now().Add(24 * time.Hour)

	// The first delivery can race the agent's subscription: wait until it is online.
	r.waitOnline()
	v1 := r.manifest(r.store, 1, "log: {level: debug}\nhub: {heartbeat: 2s, batch_size: 99}\n", day)
	rep := r.send(v1)
	if rep.State != protocol.ConfigApplied || rep.Active != 1 || rep.Version != 1 {
		t.Fatalf("v1: %+v", rep)
	}
	if out := r.validate(); !strings.Contains(out, "pushed configuration version 1") || !strings.Contains(out, "batch_size: 99") ||
		!strings.Contains(out, "heartbeat: 2s") || !strings.Contains(out, "level: debug") || strings.Contains(out, "password: test") {
		t.Fatalf("validate output:\n%s", out)
	}

	refused := []struct {
		name string
		sm   protocol.SignedManifest
		want string
	}{
		{"tampered", func() protocol.SignedManifest {
			sm := r.manifest(r.store, 2, "log: {level: info}\n", day)
			sm.Body = strings.Replace(sm.Body, "info", "warn", 1)
			return sm
		}(), "signature"},
		{"another key", func() protocol.SignedManifest {
			_, other, _ := minisign.GenerateKey(rand.Reader)
			sm, _ := protocol.SignManifest(other, &protocol.Manifest{V: 1, Kind: protocol.ManifestConfig, Product: protocol.ProductAgent,
				Expires: day, Store: r.store, ConfigVersion: 2, Overrides: "log: {level: info}\n"})
			return sm
		}(), "signature"},
		{"wrong store", r.manifest("OTHER", 2, "log: {level: info}\n", day), "for store OTHER"},
		{"replayed older version", v1, "not newer than the active version 1"},
		{"expired", r.manifest(r.store, 2, "log: {level: info}\n", time.Now().Add(-time.Minute)), "expired"},
		{"forbidden key", r.manifest(r.store, 2, "hub: {broker: tcp://elsewhere.example:1883}\n", day), "hub.broker"},
		{"invalid value", r.manifest(r.store, 2, "hub: {window: 100000}\n", day), "hub.window"},
	}
	for _, tc := range refused {
		rep := r.send(tc.sm)
		if rep.State != protocol.ConfigRefused || rep.Active != 1 || !strings.Contains(rep.Detail, tc.want) {
			t.Errorf("%s: %+v, want refused with %q and version 1 active", tc.name, rep, tc.want)
		}
	}

	// A printer tap on a port that is taken: valid configuration, but capture cannot start.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	bad := r.manifest(r.store, 2, fmt.Sprintf("terminals:\n  - {id: T1, source: \"tcp-listen://%s\", profile: epson-tm-escpos}\n", ln.Addr()), day)
	r.send(bad)
	rep = r.waitReport(fmt.Sprintf("cmd-%d", r.n), protocol.ConfigRolledBack)
	if rep.Version != 2 || rep.Active != 1 || !strings.Contains(rep.Detail, "listen") {
		t.Fatalf("rollback: %+v", rep)
	}
	if out := r.validate(); !strings.Contains(out, "pushed configuration version 1") || strings.Contains(out, "tcp-listen") {
		t.Fatalf("after the rollback validate shows:\n%s", out)
	}
	r.waitOnline()
	rep = r.send(r.manifest(r.store, 3, "log: {level: warn}\n", day))
	if rep.State != protocol.ConfigApplied || rep.Active != 3 {
		t.Fatalf("v3 after the rollback: %+v", rep)
	}
	var out bytes.Buffer
	if err := cmdStatus([]string{"--config", r.path}, &out); err != nil || !strings.Contains(out.String(), "config push:     version 3 active; last push version 3 applied") {
		t.Fatalf("status: %v\n%s", err, out.String())
	}
}

// waitOnline waits until the agent reports itself connected.
func (r *pushRig) waitOnline() {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + r.listen + "/status")
		if err == nil {
			var ls localStatus
			err = json.NewDecoder(resp.Body).Decode(&ls)
			resp.Body.Close()
			if err == nil && ls.Connected {
				time.Sleep(200 * time.Millisecond) // subscriptions follow the connect
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatal("the agent did not connect to the broker within 20s")
}

// A signature made by Debian's minisign verifies like a Go-made one.
func TestConfigManifestSignedByMinisignTool(t *testing.T) {
	bin, err := exec.LookPath("minisign")
	if err != nil {
		t.Skip("minisign not installed (apt-get install minisign)")
	}
	dir := t.TempDir()
	pubF, secF := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	if out, err := exec.Command(bin, "-G", "-W", "-p", pubF, "-s", secF).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v %s", err, out)
	}
	body, _ := json.Marshal(protocol.Manifest{V: 1, Kind: protocol.ManifestConfig, Product: protocol.ProductAgent, Expires: time.Now().Add(time.Hour),
		Store: "S001", ConfigVersion: 4, Overrides: "log: {level: debug}\n"})
	bf := filepath.Join(dir, "manifest.json")
	os.WriteFile(bf, body, 0o600)
	if out, err := exec.Command(bin, "-S", "-s", secF, "-m", bf, "-t", "lanebridge config S001 4").CombinedOutput(); err != nil {
		t.Fatalf("minisign -S: %v %s", err, out)
	}
	sig, _ := os.ReadFile(bf + ".minisig")
	pubText, _ := os.ReadFile(pubF)
	var pub minisign.PublicKey
	lines := strings.Split(strings.TrimSpace(string(pubText)), "\n")
	if err := pub.UnmarshalText([]byte(lines[len(lines)-1])); err != nil {
		t.Fatal(err)
	}
	m, err := protocol.VerifyManifest([]minisign.PublicKey{pub}, protocol.SignedManifest{Body: string(body), Signature: string(sig)})
	if err != nil || m.ConfigVersion != 4 {
		t.Fatalf("verify: %+v %v", m, err)
	}
	if _, err := protocol.VerifyManifest([]minisign.PublicKey{pub}, protocol.SignedManifest{Body: string(body) + " ", Signature: string(sig)}); err == nil {
		t.Fatal("a changed body verified")
	}
}

// Overrides kept in the data dir that no longer load (the local file changed under them) are
// rolled back at start: the agent runs on what it had before and says why.
func TestConfigPushRolledBackAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Mosquitto")
	}
	r := newPushRigWith(t, func(dataDir string) {
		st := &overrideState{Active: &overrideSet{Version: 5, CommandID: "cmd-5", Overrides: "hub: {window: 100000}\n"}, Trial: true}
		if err := st.save(dataDir); err != nil {
			t.Fatal(err)
		}
	})
	rep := r.waitReport("cmd-5", protocol.ConfigRolledBack)
	if rep.Version != 5 || rep.Active != 0 || !strings.Contains(rep.Detail, "hub.window") {
		t.Fatalf("%+v", rep)
	}
}
