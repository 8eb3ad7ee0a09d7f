package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// TestHubRolloutEngine drives the serving hub's rollout part with a real MQTT client standing
// in for the agent (the real agent's update is the lead's end-to-end test): the CLI publishes
// and starts a rollout beside the running hub, the hub offers the release on the store's
// commands topic, the store downloads it with its broker credentials, reports healthy, and
// the rollout finishes. rollouts.tick 50ms and an all-day window keep it quick.
func TestHubRolloutEngine(t *testing.T) {
	cfg := testConfig(t)
	cfg.Rollouts.Tick, cfg.Rollouts.ResendAfter, cfg.Rollouts.StoreTimeout = 50*time.Millisecond, 2*time.Second, time.Minute
	cfg.Rollouts.MaintenanceWindow = "Mon-Sun 00:00-24:00"
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	data := cfg.DataDir
	yml := filepath.Join(t.TempDir(), "agent.yaml")
	if code, _, errOut := cli(t, "", "stores", "add", "S001", "--data", data, "--create", "--out", yml); code != 0 {
		t.Fatal(errOut)
	}
	b, _ := os.ReadFile(yml)
	pw := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(string(b))[1]
	s := startHub(t, cfg, nil)
	h := s.h

	o := mqtt.NewClientOptions().AddBroker("tcp://" + h.mqttAddr).SetClientID("S001").SetUsername("S001").SetPassword(pw)
	agent := mqtt.NewClient(o)
	if tok := agent.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer agent.Disconnect(100)
	cmds := make(chan protocol.Command, 16)
	if tok := agent.Subscribe(protocol.CommandsTopic("S001"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if c, err := protocol.DecodeCommand(m.Payload()); err == nil {
			cmds <- *c
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	status := func(version string, u *protocol.UpdateReport) {
		st := protocol.Status{V: protocol.Version, Store: "S001", State: "online", Version: version, Clock: time.Now(), OS: "linux", Arch: "amd64", Update: u}
		payload, _ := json.Marshal(st)
		agent.Publish(protocol.StatusTopic("S001"), 1, true, payload).WaitTimeout(time.Second)
	}
	st := openData(t, data)
	ctx := context.Background()
	status("v1.0.0", nil)
	eventually(t, 5*time.Second, "the hub to keep the status", func() error {
		si, err := st.GetStore(ctx, "S001")
		if err != nil || si.Status == nil || si.Status.OS != "linux" {
			return fmt.Errorf("%+v %v", si.Status, err)
		}
		return nil
	})

	dir := t.TempDir()
	bin := filepath.Join(dir, "agent")
	os.WriteFile(bin, []byte(strings.Repeat("v1.1.0 binary ", 1000)), 0o755)
	sec, pubPath := goKey(t, dir)
	if code, _, errOut := cli(t, "", "releases", "publish", "--binary", bin, "--version", "v1.1.0", "--os", "linux", "--arch", "amd64", "--key", sec, "--data", data); code != 0 {
		t.Fatal(errOut)
	}
	if code, out, errOut := cli(t, "", "rollouts", "start", "--release", "v1.1.0", "--waves", "100%", "--max-failures", "0", "--data", data); code != 0 {
		t.Fatal(out, errOut)
	}
	var c protocol.Command
	select {
	case c = <-cmds:
	case <-time.After(10 * time.Second):
		t.Fatal("no update command within 10s")
	}
	pub, _ := minisign.PublicKeyFromFile(pubPath)
	m, err := protocol.VerifyManifest([]minisign.PublicKey{pub}, *c.Manifest)
	if err != nil || c.Type != protocol.CommandUpdate || m.Version != "v1.1.0" {
		t.Fatalf("command %+v: %v", c, err)
	}
	req, _ := http.NewRequest("GET", "http://"+h.httpAddr+c.URL, nil)
	req.SetBasicAuth("S001", pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(body)
	if resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != m.SHA256 || int64(len(body)) != m.Size {
		t.Fatalf("download %s: %d, %d bytes", c.URL, resp.StatusCode, len(body))
	}
	// Unanswered, the same command comes again after resend_after.
	select {
	case again := <-cmds:
		if again.ID != c.ID {
			t.Fatalf("resend has id %s, want %s", again.ID, c.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no resend")
	}
	status("v1.1.0", &protocol.UpdateReport{CommandID: c.ID, Version: "v1.1.0", From: "v1.0.0", State: protocol.UpdateHealthy, At: time.Now()})
	eventually(t, 10*time.Second, "the rollout to finish", func() error {
		ro, err := st.Rollout(ctx, 1)
		if err != nil || ro.State != store.RolloutDone {
			return fmt.Errorf("%s %s %v", ro.State, ro.Reason, err)
		}
		return nil
	})
	_, out, _ := cli(t, "", "tokens", "add", "--name", "m", "--role", "viewer", "--data", data)
	tok := strings.TrimSpace(out)
	code, metrics, _ := request(t, "GET", "http://"+h.httpAddr+"/metrics", "", "Authorization: Bearer "+tok)
	if code != 200 || !strings.Contains(metrics, `lanebridge_hub_rollouts{state="done"} 1`) {
		t.Fatalf("metrics %d:\n%s", code, grepLines(metrics, "rollout"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
