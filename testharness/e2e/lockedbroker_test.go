package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/mosquitto"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// lockedBroker is a private Mosquitto started with the files `lanebridge-hub export mosquitto`
// wrote (allow_anonymous false, password_file, acl_file), as the README tells operators.
type lockedBroker struct {
	mq     *mosquitto.Broker
	hubCfg string            // hub.yaml with broker.url, broker.username, broker.password_file
	agents map[string]string // store -> its agent.yaml from `stores add`, pointing at mq
}

// brokerPlaceholder is the broker URL stores are enrolled with before Mosquitto has a port.
const brokerPlaceholder = "tcp://mosquitto.invalid:1883"

// startLockedBroker enrols stores in the hub database of enrollDir (extraYAML adds hub.yaml
// lines after broker.password_file: more broker keys, then other sections), exports the
// Mosquitto files and starts Mosquitto with them.
func startLockedBroker(t testing.TB, dir, enrollDir, extraYAML string, stores ...string) *lockedBroker {
	t.Helper()
	pwFile := filepath.Join(dir, "hub-broker.pw")
	if err := os.WriteFile(pwFile, []byte(fmt.Sprintf("e2e-hub-%x\n", rand.Uint64())), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "broker:\n  username: lanebridge-hub\n  password_file: " + pwFile + "\n" + extraYAML
	baseCfg := writeHubConfig(t, dir, "hub-base.yaml", base)
	lb := &lockedBroker{agents: map[string]string{}}
	for _, s := range stores {
		lb.agents[s] = enroll(t, enrollDir, s, brokerPlaceholder, "--config", baseCfg)
	}
	export := filepath.Join(dir, "mosquitto-export")
	cmd := exec.Command(filepath.Join(binDir, "lanebridge-hub"), "export", "mosquitto", "--out", export, "--config", baseCfg, "--data", filepath.Join(enrollDir, "hub"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export mosquitto: %v: %s", err, out)
	}
	mqDir := filepath.Join(dir, "mosquitto")
	if err := os.MkdirAll(mqDir, 0o755); err != nil {
		t.Fatal(err)
	}
	lb.mq = mosquitto.Start(t, mqDir, export)
	for s, y := range lb.agents {
		lb.agents[s] = strings.ReplaceAll(y, brokerPlaceholder, lb.mq.URL)
	}
	lb.hubCfg = writeHubConfig(t, dir, "hub.yaml", strings.Replace(base, "broker:\n", "broker:\n  url: "+lb.mq.URL+"\n", 1))
	return lb
}

// checkLockedDown shows the test ran on a locked-down broker: an anonymous client is refused,
// and the hubs under dir logged their broker_insecure probe passing, never failing.
func (lb *lockedBroker) checkLockedDown(t testing.TB, dir string) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(lb.mq.URL).SetClientID("e2e-anonymous").SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(10)
		t.Error("the external broker of this test accepts anonymous clients")
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "hub.log"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "hub.log"))
	passed := 0
	for _, l := range append(logs, more...) {
		b, _ := os.ReadFile(l)
		if bytes.Contains(b, []byte("external broker is not locked down")) {
			t.Errorf("%s: the hub found its broker open", l)
		}
		passed += bytes.Count(b, []byte("external broker is locked down"))
	}
	if passed == 0 {
		t.Error("no hub logged its broker lockdown probe passing")
	}
}

// TestForgedAcksRefusedByLockedBroker: the reported attack. An agent holds 200 unacknowledged
// records (no hub yet); another store's credentials, the store's own credentials (its agent.yaml
// leaked) and an anonymous client each publish an ack "through 100" on its down/acks. On an
// anonymous broker the agent takes the forged ack (the attack works: it would drop 100 records
// the hub never had); on the broker locked down with the exported files none of them reaches
// it, and once the hub starts every record arrives exactly once.
func TestForgedAcksRefusedByLockedBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const victim, other, n = "S020", "S021", 200
	// holding starts an agent of victim on brokerURL and waits until it holds n unsent records.
	holding := func(t *testing.T, dir, agentYAML string) (journal, listen, epoch string) {
		journal = filepath.Join(dir, "T1.jsonl")
		cfg := agentConfig(t, dir, victim, agentYAML, map[string]string{"T1": journal})
		runSim(t, dir, journal, "T1", n, 1000, 7)
		startAgent(t, dir, victim, cfg)
		listen = agentListenT(t, cfg)
		eventually(t, 30*time.Second, "agent holding every record", func() error {
			st, err := agentStatus(listen)
			if err == nil && (st.LastSeq != n || st.LastAck != 0) {
				err = fmt.Errorf("agent status %+v", st)
			}
			return err
		})
		b, _ := os.ReadFile(filepath.Join(dir, "agent-"+victim+".log"))
		m := regexp.MustCompile(`msg="spool created".* epoch=(\S+)`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no epoch in the agent log:\n%s", b)
		}
		return journal, listen, string(m[1])
	}
	forge := func(url, user, pw, epoch string) error {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("forger-%d", rand.Uint32())).
			SetUsername(user).SetPassword(pw).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			return fmt.Errorf("connect as %q: %v", user, tok.Error())
		}
		defer c.Disconnect(50)
		ack, _ := json.Marshal(protocol.Ack{V: protocol.Version, Store: victim, Epoch: epoch, AppliedThrough: 100})
		tok := c.Publish(protocol.AcksTopic(victim), 1, false, ack)
		tok.WaitTimeout(5 * time.Second)
		return tok.Error()
	}

	t.Run("anonymous broker: the attack works", func(t *testing.T) {
		dir := t.TempDir()
		dumpOnFailure(t, dir)
		mq := mosquitto.Start(t, dir, "")
		_, listen, epoch := holding(t, dir, enroll(t, dir, victim, mq.URL))
		if err := forge(mq.URL, "", "", epoch); err != nil {
			t.Fatal(err)
		}
		eventually(t, 15*time.Second, "the agent taking the forged ack", func() error {
			st, err := agentStatus(listen)
			if err == nil && st.LastAck != 100 {
				err = fmt.Errorf("agent status %+v", st)
			}
			return err
		})
	})

	t.Run("exported ACL: every forger refused", func(t *testing.T) {
		dir := t.TempDir()
		dumpOnFailure(t, dir)
		lb := startLockedBroker(t, dir, dir, "", victim, other)
		journal, _, epoch := holding(t, dir, lb.agents[victim])
		if err := forge(lb.mq.URL, "", "", epoch); err == nil {
			t.Fatal("anonymous forger connected")
		}
		for _, s := range []string{other, victim} {
			if err := forge(lb.mq.URL, s, passwordOf(t, lb.agents[s]), epoch); err != nil {
				t.Logf("forger with %s's credentials: %v", s, err) // a drop is fine too
			}
		}
		h := startHub(t, dir, "--config", lb.hubCfg)
		h.waitRecords(t, victim, n, 60*time.Second)
		verify(t, h, victim, map[string]sim.Totals{"T1": readTotals(t, journal)})
		checkLogs(t, dir)
		lb.checkLockedDown(t, dir)
	})
}
