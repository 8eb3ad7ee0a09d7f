package app

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/mosquitto"
)

// exportFixture is a hub database with stores A and B, a hub.yaml naming the hub's broker
// account, and the files `export mosquitto` wrote from them.
type exportFixture struct {
	dir, data, cfg, out string
	hubPw               string
	pw                  map[string]string // store (and ProbeUser) -> password
}

func newExportFixture(t *testing.T) *exportFixture {
	t.Helper()
	dir := t.TempDir()
	f := &exportFixture{dir: dir, data: filepath.Join(dir, "hub"), out: filepath.Join(dir, "export"), hubPw: "hub-secret-pw", pw: map[string]string{}}
	pwFile := filepath.Join(dir, "hub.pw")
	os.WriteFile(pwFile, []byte(f.hubPw+"\n"), 0o600)
	f.cfg = filepath.Join(dir, "hub.yaml")
	os.WriteFile(f.cfg, []byte("broker:\n  url: tcp://127.0.0.1:1\n  username: hub\n  password_file: "+pwFile+"\n"), 0o600)
	for _, s := range []string{"A", "B"} {
		f.pw[s] = f.enroll(t, s)
	}
	f.export(t)
	return f
}

var passwordLine = regexp.MustCompile(`(?m)^  password: (\S+)$`)

func (f *exportFixture) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(append(args, "--config", f.cfg, "--data", f.data), &o, &e)
	return o.String(), e.String(), code
}

func (f *exportFixture) enroll(t *testing.T, id string) string {
	t.Helper()
	out, errs, code := f.run(t, "stores", "add", id, "--create")
	m := passwordLine.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("stores add %s: exit %d: %s", id, code, errs)
	}
	return m[1]
}

func (f *exportFixture) export(t *testing.T, extra ...string) {
	t.Helper()
	if _, errs, code := f.run(t, append([]string{"export", "mosquitto", "--out", f.out}, extra...)...); code != 0 {
		t.Fatalf("export mosquitto: exit %d: %s", code, errs)
	}
	st, err := openStore(t.Context(), &Config{DataDir: f.data})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if f.pw[ProbeUser], err = st.EnsureSecret(t.Context(), probeSecret, "unused"); err != nil {
		t.Fatal(err)
	}
}

// inbox collects the messages one client receives, by topic.
type inbox struct {
	mu  sync.Mutex
	got []string // "topic payload"
}

func (in *inbox) handler(_ mqtt.Client, m mqtt.Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.got = append(in.got, m.Topic()+" "+string(m.Payload()))
}

func (in *inbox) has(s string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, g := range in.got {
		if g == s {
			return true
		}
	}
	return false
}

// waitFor waits until msg ("topic payload") arrived.
func (in *inbox) waitFor(t *testing.T, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !in.has(msg) {
		if time.Now().After(deadline) {
			in.mu.Lock()
			defer in.mu.Unlock()
			t.Fatalf("%q not received within 10s; got %q", msg, in.got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mqttConnect(url, user, pw, clientID string, in *inbox) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pw).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetCleanSession(true)
	if in != nil {
		o.SetDefaultPublishHandler(in.handler)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return c, fmt.Errorf("connect %s: timed out", user)
	}
	return c, tok.Error()
}

func mustConnect(t *testing.T, url, user, pw, clientID string, in *inbox) mqtt.Client {
	t.Helper()
	c, err := mqttConnect(url, user, pw, clientID, in)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// subscribe subscribes to filters and returns the SUBACK codes (0x80: refused).
func subscribe(t *testing.T, c mqtt.Client, filters ...string) []byte {
	t.Helper()
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := c.SubscribeMultiple(m, nil)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %v: %v", filters, tok.Error())
	}
	res := tok.(*mqtt.SubscribeToken).Result()
	codes := make([]byte, len(filters))
	for i, f := range filters {
		codes[i] = res[f]
	}
	return codes
}

func publish(t *testing.T, c mqtt.Client, topic, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// attacks are what store A's credentials (or none) achieved on a broker.
type attacks struct {
	anonymous     bool // an anonymous client connected
	crossPublish  bool // A's publish to B's up/records reached the hub's subscription
	crossRead     bool // A's subscription to B's down/# received B's ack
	wildcard      bool // A's subscription to '#' received B's ack
	forgedAck     bool // A's publish to its own down/acks reached A's agent subscription
	probeWildcard bool // the probe account's '#' subscription received anything
}

// attack runs every attack on the broker at url, with positive controls: each "not received"
// is decided only after a message sent later on the same path did arrive.
func attack(t *testing.T, url string, f *exportFixture) attacks {
	var r attacks
	if c, err := mqttConnect(url, "", "", "anon-probe", nil); err == nil {
		r.anonymous = true
		c.Disconnect(50)
	}
	hubIn, aIn, wildIn, probeIn := &inbox{}, &inbox{}, &inbox{}, &inbox{}
	hub := mustConnect(t, url, "hub", f.hubPw, "hub-1", hubIn)
	if codes := subscribe(t, hub, "$share/g/"+protocol.AllRecordsFilter, protocol.AllStatusFilter); codes[0] == 0x80 || codes[1] == 0x80 {
		t.Fatalf("the hub's account may not subscribe to up/#: SUBACK %v", codes)
	}
	a := mustConnect(t, url, "A", f.pw["A"], "lanebridge-agent-A", aIn)
	subscribe(t, a, protocol.AcksTopic("A"), protocol.TopicRoot+"/B/down/#")
	wild := mustConnect(t, url, "A", f.pw["A"], "A-wild", wildIn)
	subscribe(t, wild, "#")
	probe := mustConnect(t, url, ProbeUser, f.pw[ProbeUser], "probe", probeIn)
	subscribe(t, probe, "#")

	publish(t, a, protocol.RecordsTopic("B"), "forged-by-A")
	publish(t, a, protocol.RecordsTopic("A"), "control")
	hubIn.waitFor(t, protocol.RecordsTopic("A")+" control")
	r.crossPublish = hubIn.has(protocol.RecordsTopic("B") + " forged-by-A")

	publish(t, a, protocol.AcksTopic("A"), "forged-ack")
	publish(t, hub, protocol.AcksTopic("B"), "ack-of-B")
	publish(t, hub, protocol.AcksTopic("A"), "ack-of-A")
	aIn.waitFor(t, protocol.AcksTopic("A")+" ack-of-A")
	r.forgedAck = aIn.has(protocol.AcksTopic("A") + " forged-ack")
	r.crossRead = aIn.has(protocol.AcksTopic("B") + " ack-of-B")
	// wild may read A's own acks: the hub's last one is its control. The probe may read
	// nothing; a SUBACK round trip on its connection comes after any message queued before.
	wildIn.waitFor(t, protocol.AcksTopic("A")+" ack-of-A")
	r.wildcard = wildIn.has(protocol.AcksTopic("B") + " ack-of-B")
	subscribe(t, probe, "barrier/probe")
	probeIn.mu.Lock()
	r.probeWildcard = len(probeIn.got) > 0
	probeIn.mu.Unlock()
	return r
}

// TestExportMosquittoLocksDown: on Debian's Mosquitto with the exported files a store cannot
// publish as another, read another's topics or '#', or forge its own acks, anonymous clients
// are refused and the hub's account reads up/ and writes down/; the same attacks succeed on an
// anonymous broker, so each assertion can fail.
func TestExportMosquittoLocksDown(t *testing.T) {
	if testing.Short() {
		t.Skip("needs mosquitto")
	}
	f := newExportFixture(t)
	b, _ := os.ReadFile(filepath.Join(f.out, "passwd"))
	if n := strings.Count(string(b), "\n"); n != 4 || !strings.HasPrefix(string(b), "hub:$7$101$") {
		t.Fatalf("passwd (%d lines):\n%s", n, b)
	}
	if fi, _ := os.Stat(filepath.Join(f.out, "passwd")); fi.Mode().Perm()&0o007 != 0 {
		t.Fatalf("passwd is world-accessible: %v", fi.Mode())
	}

	open := mosquitto.Start(t, filepath.Join(f.dir), "")
	if got := attack(t, open.URL, f); got != (attacks{true, true, true, true, true, true}) {
		t.Fatalf("on an anonymous broker the attacks should all work (else this test proves nothing): %+v", got)
	}
	locked := mosquitto.Start(t, t.TempDir(), f.out)
	if got := attack(t, locked.URL, f); got != (attacks{}) {
		log, _ := os.ReadFile(locked.Log)
		t.Fatalf("attacks that worked with the exported ACL: %+v\nmosquitto log:\n%s", got, log)
	}

	// Rotation, disable and remove take effect on the external broker after export + reload.
	oldA := f.pw["A"]
	out, errs, code := f.run(t, "stores", "rotate-credentials", "A")
	if code != 0 {
		t.Fatalf("rotate-credentials: %d %s", code, errs)
	}
	f.pw["A"] = strings.TrimSpace(out)
	if _, errs, code := f.run(t, "stores", "disable", "B"); code != 0 {
		t.Fatalf("disable: %s", errs)
	}
	f.export(t)
	locked.Reload(t)
	eventually(t, 10*time.Second, "new password of A accepted, B refused", func() error {
		if c, err := mqttConnect(locked.URL, "A", f.pw["A"], "A-new", nil); err != nil {
			return err
		} else {
			c.Disconnect(50)
		}
		if c, err := mqttConnect(locked.URL, "B", f.pw["B"], "B", nil); err == nil {
			c.Disconnect(50)
			return fmt.Errorf("disabled B still connects")
		}
		return nil
	})
	if c, err := mqttConnect(locked.URL, "A", oldA, "A-old", nil); err == nil {
		c.Disconnect(50)
		t.Fatal("A's old password still works on Mosquitto after export")
	}
}

// TestExportMosquittoMissingHash: a store enrolled before Mosquitto hashes existed is named on
// stderr with the fix; export fails and writes nothing unless --skip-missing.
func TestExportMosquittoMissingHash(t *testing.T) {
	f := newExportFixture(t)
	os.RemoveAll(f.out)
	st, err := openStore(t.Context(), &Config{DataDir: f.data})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddStore(t.Context(), "OLD", "sha256$00$00"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, errs, code := f.run(t, "export", "mosquitto", "--out", f.out)
	if code == 0 || !strings.Contains(errs, "stores rotate-credentials OLD") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(f.out, "passwd")); err == nil {
		t.Fatal("passwd written despite the failure")
	}
	f.export(t, "--skip-missing")
	b, _ := os.ReadFile(filepath.Join(f.out, "passwd"))
	if strings.Contains(string(b), "OLD:") || !strings.Contains(string(b), "\nA:$7$") {
		t.Fatalf("passwd:\n%s", b)
	}
	// Without the hub's account, export names the key to set.
	os.WriteFile(f.cfg, []byte("broker:\n  url: tcp://127.0.0.1:1\n"), 0o600)
	if _, errs, code := f.run(t, "export", "mosquitto", "--out", f.out); code == 0 || !strings.Contains(errs, "broker.username") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
}

// TestBrokerProbe: a hub on an anonymous Mosquitto raises broker_insecure (both findings) and
// logs them at error level; on the exported, locked-down one it reports the broker locked down
// and raises nothing.
func TestBrokerProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("needs mosquitto")
	}
	f := newExportFixture(t)
	for _, tc := range []struct {
		name   string
		export string
		want   []string
	}{{"anonymous broker", "", []string{"anonymous", "wildcard"}}, {"exported ACL", f.out, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			mq := mosquitto.Start(t, t.TempDir(), tc.export)
			cfg := testConfig(t)
			if tc.export != "" {
				cfg.DataDir = f.data // the probe account's password is the exported one
			}
			cfg.Broker.URL, cfg.Broker.Username, cfg.Broker.PasswordFile = mq.URL, "hub", filepath.Join(f.dir, "hub.pw")
			s := startHub(t, cfg, nil)
			eventually(t, 20*time.Second, "probe result", func() error {
				ex, err := s.h.st.Exceptions(t.Context(), store.ExceptionFilter{Reason: ReasonBrokerInsecure})
				if err != nil {
					return err
				}
				var keys []string
				for _, e := range ex {
					keys = append(keys, e.Key)
				}
				slices.Sort(keys)
				if tc.want == nil {
					if len(keys) > 0 {
						t.Fatalf("broker_insecure raised on a locked-down broker: %v", keys)
					}
					if !strings.Contains(s.logs.String(), "external broker is locked down") {
						return fmt.Errorf("probe not done yet")
					}
					return nil
				}
				if !slices.Equal(keys, tc.want) {
					return fmt.Errorf("exceptions %v, want %v", keys, tc.want)
				}
				if !strings.Contains(s.logs.String(), "level=ERROR msg=\"external broker is not locked down\"") {
					return fmt.Errorf("no error log")
				}
				return nil
			})
			s.stop()
			s.wait(t)
		})
	}
}

// TestStoreLifecycleOnEmbeddedBroker: with the hub running, the CLI (another database handle)
// disables, enables, rotates and removes a store; real MQTT clients connected as it are
// disconnected within seconds when their password stops being valid, and the old password
// keeps working during the rotation's grace.
func TestStoreLifecycleOnEmbeddedBroker(t *testing.T) {
	cfg := testConfig(t)
	f := &exportFixture{data: cfg.DataDir, cfg: filepath.Join(t.TempDir(), "hub.yaml")}
	os.WriteFile(f.cfg, nil, 0o600)
	pwA, pwB := f.enroll(t, "A"), f.enroll(t, "B")
	s := startHub(t, cfg, nil)
	url := "tcp://" + s.h.mqttAddr
	cli := func(args ...string) string {
		t.Helper()
		out, errs, code := f.run(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return strings.TrimSpace(out)
	}
	// connected connects as store with pw and returns a channel closed when the connection is lost.
	connected := func(store, pw string) chan struct{} {
		t.Helper()
		lost := make(chan struct{})
		o := mqtt.NewClientOptions().AddBroker(url).SetClientID(store).SetUsername(store).SetPassword(pw).
			SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
			SetConnectionLostHandler(func(mqtt.Client, error) { close(lost) })
		c := mqtt.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", store, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(10) })
		return lost
	}
	waitLost := func(lost chan struct{}, what string) {
		t.Helper()
		select {
		case <-lost:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: still connected after 15s", what)
		}
	}
	refused := func(store, pw string) {
		t.Helper()
		if c, err := mqttConnect(url, store, pw, store, nil); err == nil {
			c.Disconnect(10)
			t.Fatalf("%s connects with a password that should not work", store)
		}
	}
	alive := func(lost chan struct{}, what string) {
		t.Helper()
		select {
		case <-lost:
			t.Fatalf("%s was disconnected", what)
		default:
		}
	}

	lostA, lostB := connected("A", pwA), connected("B", pwB)
	cli("stores", "disable", "A")
	waitLost(lostA, "disabled A")
	refused("A", pwA)
	alive(lostB, "B (untouched)")
	cli("stores", "enable", "A")
	lostA = connected("A", pwA)

	// Rotation: the old password still works during the grace, the new one at once.
	newA := cli("stores", "rotate-credentials", "A", "--grace", "1h")
	lostNew := connected("A", newA)
	waitLost(lostA, "old session taken over by the new one") // same client id
	lostOld := connected("A", pwA)
	waitLost(lostNew, "taken over again")
	cli("stores", "rotate-credentials", "A", "--revoke-old")
	waitLost(lostOld, "session on the revoked password")
	refused("A", pwA)
	lostA = connected("A", newA)

	cli("stores", "remove", "A")
	waitLost(lostA, "removed A")
	refused("A", newA)
	alive(lostB, "B (untouched)")
	if out := cli("stores", "list"); !regexp.MustCompile(`(?m)^A\s+removed\s`).MatchString(out) {
		t.Fatalf("stores list:\n%s", out)
	}
}
