package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/mosquitto"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

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
		journal, _, epoch := holding(t, dir, lb.Agents[victim])
		if err := forge(lb.MQ.URL, "", "", epoch); err == nil {
			t.Fatal("anonymous forger connected")
		}
		for _, s := range []string{other, victim} {
			if err := forge(lb.MQ.URL, s, passwordOf(t, lb.Agents[s]), epoch); err != nil {
				t.Logf("forger with %s's credentials: %v", s, err) // a drop is fine too
			}
		}
		h := startHub(t, dir, "--config", lb.HubCfg)
		h.WaitRecords(t, victim, n, 60*time.Second)
		verify(t, h, victim, map[string]sim.Totals{"T1": readTotals(t, journal)})
		checkLogs(t, dir)
		lb.CheckLockedDown(t, dir)
	})
}
