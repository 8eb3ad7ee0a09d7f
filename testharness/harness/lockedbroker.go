package harness

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/testharness/mosquitto"
)

// LockedBroker is a private Mosquitto started with the files `lanebridge-hub export mosquitto`
// wrote (allow_anonymous false, password_file, acl_file), as the README tells operators.
type LockedBroker struct {
	MQ     *mosquitto.Broker
	HubCfg string            // hub.yaml with broker.url, broker.username, broker.password_file
	Agents map[string]string // store -> its agent.yaml from `stores add`, pointing at MQ
}

// brokerPlaceholder is the broker URL stores are enrolled with before Mosquitto has a port.
const brokerPlaceholder = "tcp://mosquitto.invalid:1883"

// WriteHubConfig writes a hub.yaml body to dir/name and returns its path.
func WriteHubConfig(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// StartLockedBroker enrols stores in the hub database of enrollDir (extraYAML adds hub.yaml
// lines after broker.password_file: more broker keys, then other sections), exports the
// Mosquitto files and starts Mosquitto with them.
func StartLockedBroker(t testing.TB, dir, enrollDir, extraYAML string, stores ...string) *LockedBroker {
	t.Helper()
	pwFile := filepath.Join(dir, "hub-broker.pw")
	if err := os.WriteFile(pwFile, []byte(fmt.Sprintf("e2e-hub-%x\n", rand.Uint64())), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "broker:\n  username: lanebridge-hub\n  password_file: " + pwFile + "\n" + extraYAML
	baseCfg := WriteHubConfig(t, dir, "hub-base.yaml", base)
	lb := &LockedBroker{Agents: map[string]string{}}
	for _, s := range stores {
		lb.Agents[s] = Enroll(t, enrollDir, s, brokerPlaceholder, "--config", baseCfg)
	}
	export := filepath.Join(dir, "mosquitto-export")
	cmd := exec.Command(Bin("lanebridge-hub"), "export", "mosquitto", "--out", export, "--config", baseCfg, "--data", filepath.Join(enrollDir, "hub"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export mosquitto: %v: %s", err, out)
	}
	mqDir := filepath.Join(dir, "mosquitto")
	if err := os.MkdirAll(mqDir, 0o755); err != nil {
		t.Fatal(err)
	}
	lb.MQ = mosquitto.Start(t, mqDir, export)
	for s, y := range lb.Agents {
		lb.Agents[s] = strings.ReplaceAll(y, brokerPlaceholder, lb.MQ.URL)
	}
	lb.HubCfg = WriteHubConfig(t, dir, "hub.yaml", strings.Replace(base, "broker:\n", "broker:\n  url: "+lb.MQ.URL+"\n", 1))
	return lb
}

// CheckLockedDown shows the test ran on a locked-down broker: an anonymous client is refused,
// and the hubs under dir logged their broker_insecure probe passing, never failing.
func (lb *LockedBroker) CheckLockedDown(t testing.TB, dir string) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(lb.MQ.URL).SetClientID("e2e-anonymous").SetConnectTimeout(5 * time.Second))
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
