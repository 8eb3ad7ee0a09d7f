package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/mosquitto"
)

// runAgentCLI runs lanebridge-agent and returns its stdout, stderr and error.
func runAgentCLI(args ...string) (string, string, error) {
	cmd := exec.Command(filepath.Join(binDir, "lanebridge-agent"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestEnrollOverHTTPS: issue 10's enrolment with the real binaries. A hub serving HTTPS issues a
// one-time token; `lanebridge-agent enroll` fetches the credentials once and writes the config
// and a password file (0600); the token's second use, an expired token and a plain http URL
// are refused, guessing is throttled; the agent then delivers through the embedded broker, and
// the same password opens a Mosquitto locked down with `export mosquitto`'s files.
func TestEnrollOverHTTPS(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	defer dumpOnFailure(t, dir)
	caFile, certFile, keyFile := writeTestPKI(t, dir)
	pwFile := filepath.Join(dir, "hub-broker.pw")
	if err := os.WriteFile(pwFile, []byte("e2e-hub-broker-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hubCfg := writeHubConfig(t, dir, "hub.yaml", fmt.Sprintf("http:\n  cert_file: %s\n  key_file: %s\nbroker:\n  username: lanebridge-hub\n  password_file: %s\n",
		certFile, keyFile, pwFile))
	data := filepath.Join(dir, "hub")
	token := strings.TrimSpace(runCLI(t, "", "stores", "add", "S001", "--enroll-token", "--create", "--data", data, "--config", hubCfg))
	if !strings.HasPrefix(token, "lbe_") || strings.Contains(token, "\n") {
		t.Fatalf("stores add --enroll-token printed %q, want the token alone", token)
	}

	httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
	p := start(t, "lanebridge-hub", filepath.Join(dir, "hub.log"), "serve", "--config", hubCfg, "--data", data, "--http", httpAddr, "--mqtt", mqttAddr)
	defer p.Stop(t)
	pem, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	hubURL := "https://" + httpAddr
	eventually(t, 60*time.Second, "hub healthz over https", func() error {
		resp, err := hc.Get(hubURL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})

	agentCfg := filepath.Join(dir, "agent", "agent.yaml")
	if err := os.MkdirAll(filepath.Dir(agentCfg), 0o700); err != nil {
		t.Fatal(err)
	}
	agentData := filepath.Join(dir, "agent-data")
	if _, stderr, err := runAgentCLI("enroll", "--hub", "http://"+httpAddr, "--token", token, "--config", agentCfg); err == nil || !strings.Contains(stderr, "plain http") {
		t.Fatalf("plain http accepted: %v %s", err, stderr)
	}
	// No CA: the hub's certificate is not trusted, nothing is fetched (the token stays usable).
	if _, stderr, err := runAgentCLI("enroll", "--hub", hubURL, "--token", token, "--config", agentCfg); err == nil || !strings.Contains(stderr, "certificate") {
		t.Fatalf("untrusted hub certificate accepted: %v %s", err, stderr)
	}
	stdout, stderr, err := runAgentCLI("enroll", "--hub", hubURL, "--token", token, "--config", agentCfg, "--ca", caFile, "--data-dir", agentData)
	if err != nil {
		t.Fatalf("enroll: %v\n%s\n%s", err, stdout, stderr)
	}
	pwPath := filepath.Join(filepath.Dir(agentCfg), "agent.password")
	if !strings.Contains(stdout, "enrolled store S001") || !strings.Contains(stdout, pwPath) || !strings.Contains(stdout, ": OK") {
		t.Fatalf("enroll output:\n%s", stdout)
	}
	if m := mode(t, agentCfg); m != 0o600 {
		t.Errorf("agent.yaml mode %04o, want 0600", m)
	}
	if m := mode(t, pwPath); m != 0o600 {
		t.Errorf("password file mode %04o, want 0600", m)
	}
	cfgText, _ := os.ReadFile(agentCfg)
	pwb, _ := os.ReadFile(pwPath)
	password := strings.TrimSpace(string(pwb))
	if len(password) < 40 || strings.Contains(string(cfgText), password) || !strings.Contains(string(cfgText), "password_file: agent.password") ||
		!strings.Contains(string(cfgText), "broker: tcp://"+mqttAddr) {
		t.Fatalf("agent.yaml:\n%s", cfgText)
	}

	if _, stderr, err := runAgentCLI("enroll", "--hub", hubURL, "--token", token, "--config", agentCfg, "--ca", caFile); err == nil || !strings.Contains(stderr, "already used") {
		t.Fatalf("second use: %v %s", err, stderr)
	}
	short := strings.TrimSpace(runCLI(t, "", "stores", "enroll-token", "S001", "--expires", "1s", "--data", data, "--config", hubCfg))
	time.Sleep(1500 * time.Millisecond)
	if _, stderr, err := runAgentCLI("enroll", "--hub", hubURL, "--token", short, "--config", filepath.Join(dir, "other.yaml"), "--ca", caFile); err == nil || !strings.Contains(stderr, "expired") {
		t.Fatalf("expired token: %v %s", err, stderr)
	}
	throttled := false
	for i := range 8 {
		_, stderr, err := runAgentCLI("enroll", "--hub", hubURL, "--token", fmt.Sprintf("lbe_guess%d", i), "--config", filepath.Join(dir, "other.yaml"), "--ca", caFile)
		if err == nil {
			t.Fatal("a guessed token enrolled")
		}
		if strings.Contains(stderr, "too many failed enrolment attempts") {
			throttled = true
			break
		}
	}
	if !throttled {
		t.Fatal("8 wrong tokens in a row were never throttled")
	}
	if _, err := os.Stat(filepath.Join(dir, "other.yaml")); err == nil {
		t.Fatal("a refused enrolment wrote a config")
	}

	// The enrolled credentials deliver through the embedded broker.
	journal := filepath.Join(dir, "T1.jsonl")
	f, _ := os.OpenFile(agentCfg, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "listen: %s\nterminals:\n  - {id: T1, source: \"file://%s\", profile: canonical-jsonl}\n", freeAddr(t), journal)
	f.Close()
	sim := runSim(t, dir, journal, "T1", 20, 200, 1)
	<-sim.Done
	a := start(t, "lanebridge-agent", filepath.Join(dir, "agent-S001.log"), "run", "--config", agentCfg)
	admin := strings.SplitN(runCLI(t, "", "tokens", "add", "--name", "e2e", "--role", "admin", "--data", data, "--config", hubCfg), "\n", 2)[0]
	eventually(t, 30*time.Second, "20 records at the hub", func() error {
		req, _ := http.NewRequest("GET", hubURL+"/api/v1/stores/S001", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var si struct{ Records int64 }
		if err := json.NewDecoder(resp.Body).Decode(&si); err != nil {
			return err
		}
		if si.Records != 20 {
			return fmt.Errorf("%d records", si.Records)
		}
		return nil
	})
	a.Stop(t)

	// The same password opens a Mosquitto locked down with the exported files; a wrong one does not.
	export := filepath.Join(dir, "mosquitto-export")
	runCLI(t, "", "export", "mosquitto", "--out", export, "--config", hubCfg, "--data", data)
	mqDir := filepath.Join(dir, "mosquitto")
	os.MkdirAll(mqDir, 0o755)
	mq := mosquitto.Start(t, mqDir, export)
	if err := publishAs(t, mq.Addr, "S001", password, protocol.StatusTopic("S001"), []byte(`{}`)); err != nil {
		t.Fatalf("enrolled password on the locked-down Mosquitto: %v", err)
	}
	if err := publishAs(t, mq.Addr, "S001", password+"x", protocol.StatusTopic("S001"), []byte(`{}`)); err == nil {
		t.Fatal("a wrong password was accepted by the locked-down Mosquitto")
	}
	checkLogs(t, dir)
}
