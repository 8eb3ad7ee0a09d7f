package peers

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/testharness/mosquitto"
)

// MosquittoBridge is a store-side Mosquitto bridged to a central Mosquitto: records are
// published QoS 1 to records/S901 on the store side, the bridge forwards records/# out at
// QoS 1 with a persistent session (cleansession false) and a 1 s restart timeout, and a paho
// subscriber with a persistent session (QoS 1) counts them centrally. Both brokers have
// persistence on and no queue limit (max_queued_messages 0: the default of 1,000 would drop
// the backlog by design, which is not what is measured here). With Autosave false they save
// with Mosquitto's defaults (every 1,800 s and at a clean shutdown); with Autosave true after
// every change (autosave_on_changes true, autosave_interval 1).
type MosquittoBridge struct {
	Dir      string
	Autosave bool

	store, central *mosquitto.Broker
	sub            mqtt.Client
	tally          *tally
}

// Name implements Peer.
func (m *MosquittoBridge) Name() string {
	if m.Autosave {
		return "mosq_autosave"
	}
	return "mosq_default"
}

func (m *MosquittoBridge) persistence(dir string) string {
	conf := fmt.Sprintf("allow_anonymous true\npersistence true\npersistence_location %s/\nmax_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 100\n", dir)
	if m.Autosave {
		conf += "autosave_on_changes true\nautosave_interval 1\n"
	}
	return conf
}

// Start implements Peer.
func (m *MosquittoBridge) Start(t testing.TB) {
	t.Helper()
	storeDir, centralDir := filepath.Join(m.Dir, "store"), filepath.Join(m.Dir, "central")
	for _, d := range []string{storeDir, centralDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m.central = mosquitto.StartConf(t, centralDir, "", m.persistence(centralDir))
	bridge := fmt.Sprintf("connection central\naddress %s\ntopic records/# out 1\ncleansession false\n"+
		"clientid store-S901-bridge\nrestart_timeout 1\ntry_private true\nnotifications false\n", m.central.Addr)
	m.store = mosquitto.StartConf(t, storeDir, "", m.persistence(storeDir)+bridge)
	m.tally = newTally()
	opts := mqtt.NewClientOptions().AddBroker(m.central.URL).SetClientID("central-counter").
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(100 * time.Millisecond).
		SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetOnConnectHandler(func(c mqtt.Client) {
			c.Subscribe("records/#", 1, func(_ mqtt.Client, msg mqtt.Message) { m.tally.add(msg.Payload()) })
		})
	m.sub = mqtt.NewClient(opts)
	if tk := m.sub.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("central subscriber: %v", tk.Error())
	}
	t.Cleanup(func() { m.sub.Disconnect(100) })
	// The subscription is in place (and saved at the clean stop) before the link goes down.
	waitFor(t, 10*time.Second, "central subscription", func() error {
		tk := m.sub.Subscribe("records/#", 1, func(_ mqtt.Client, msg mqtt.Message) { m.tally.add(msg.Payload()) })
		if !tk.WaitTimeout(time.Second) {
			return fmt.Errorf("no SUBACK")
		}
		return tk.Error()
	})
	m.central.Stop()
}

// Publish implements Peer.
func (m *MosquittoBridge) Publish(t testing.TB, records [][]byte) {
	t.Helper()
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(m.store.URL).SetClientID("pos-S901").SetCleanSession(true))
	if tk := pub.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("store-side publisher: %v", tk.Error())
	}
	defer pub.Disconnect(100)
	tokens := make([]mqtt.Token, len(records))
	for i, r := range records {
		tokens[i] = pub.Publish("records/S901", 1, false, r)
	}
	for i, tk := range tokens {
		if !tk.WaitTimeout(5*time.Minute) || tk.Error() != nil {
			t.Fatalf("publish record %d to the store side: no PUBACK (%v)", i+1, tk.Error())
		}
	}
}

// KillStore implements Peer.
func (m *MosquittoBridge) KillStore(t testing.TB) { m.store.Kill() }

// RestartStore implements Peer.
func (m *MosquittoBridge) RestartStore(t testing.TB) { m.store.Start(t) }

// LinkUp implements Peer.
func (m *MosquittoBridge) LinkUp(t testing.TB) { m.central.Start(t) }

// Count implements Peer.
func (m *MosquittoBridge) Count(testing.TB) int { n, _ := m.tally.counts(); return n }

// Distinct implements Peer.
func (m *MosquittoBridge) Distinct(testing.TB) int { _, d := m.tally.counts(); return d }

// Stop implements Peer.
func (m *MosquittoBridge) Stop(testing.TB) {
	m.sub.Disconnect(100)
	m.store.Stop()
	m.central.Stop()
}
