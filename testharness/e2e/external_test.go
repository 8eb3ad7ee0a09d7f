package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/sim"
)

// mosquitto is a private Mosquitto broker process on a random loopback port, so a test can stop
// and restart a real broker without touching the machine's own one on 1883.
type mosquitto struct {
	addr, conf, log string
	p               *proc
}

func startMosquitto(t testing.TB, dir string) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("mosquitto is not installed (apt-get install mosquitto); this test needs a real broker")
		}
	}
	m := &mosquitto{addr: freeAddr(t), conf: filepath.Join(dir, "mosquitto.conf"), log: filepath.Join(dir, "mosquitto.out")}
	_, port, _ := net.SplitHostPort(m.addr)
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n", port)
	if err := os.WriteFile(m.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m.start(t, bin)
	return m
}

func (m *mosquitto) start(t testing.TB, bin string) {
	t.Helper()
	if bin == "" {
		bin, _ = exec.LookPath("mosquitto")
		if bin == "" {
			bin = "/usr/sbin/mosquitto"
		}
	}
	f, _ := os.OpenFile(m.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	cmd := exec.Command(bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	p := &proc{t: t, name: "mosquitto", cmd: cmd, log: m.log, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(p.kill)
	m.p = p
	eventually(t, 10*time.Second, "mosquitto listening", func() error {
		c, err := net.Dial("tcp", m.addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

func writeHubConfig(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBrokerOutage: a real (external) broker is stopped for a while mid-stream, then comes back.
func TestBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	mq := startMosquitto(t, dir)
	hubCfg := writeHubConfig(t, dir, "hub.yaml", fmt.Sprintf("broker:\n  url: tcp://%s\n", mq.addr))
	h := startHub(t, dir, "--config", hubCfg)
	const store = "S003"
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+mq.addr, "--config", hubCfg), map[string]string{"T1": journal})
	simP := runSim(t, dir, journal, "T1", 3000, 300, 4)
	ag := startAgent(t, dir, store, cfg)

	h.waitAtLeast(t, store, 300, 30*time.Second)
	mq.p.cmd.Process.Signal(os.Interrupt)
	<-mq.p.done
	t.Log("broker stopped")
	before, _ := h.store(store)
	time.Sleep(4 * time.Second)
	mq.start(t, "")
	t.Log("broker restarted")
	<-simP.done
	h.waitRecords(t, store, 3000, 90*time.Second)
	if before.Records >= 3000 {
		t.Fatalf("the outage happened after everything was delivered (%d): test proves nothing", before.Records)
	}
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, journal)})
	ag.stop(t)
	checkLogs(t, dir)
}

// TestReplicasOnPostgres: the machine's Mosquitto on 1883, two hub replicas sharing one
// PostgreSQL schema through a shared subscription; one replica is SIGKILLed mid-stream.
func TestReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	pg := os.Getenv("LANEBRIDGE_TEST_PG_URL")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	suffix := fmt.Sprintf("%x", rand.Uint32())
	schema := "lbe2e_" + suffix
	broker := os.Getenv("LANEBRIDGE_TEST_MQTT_URL")
	if broker == "" {
		broker = "tcp://127.0.0.1:1883"
	}
	hubCfg := writeHubConfig(t, dir, "hub.yaml", fmt.Sprintf("broker:\n  url: %s\n  shared_group: lb-%s\nstore:\n  postgres_url: %s&search_path=%s\n", broker, suffix, pg, schema))
	t.Cleanup(func() { dropSchema(pg, schema) })

	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.MkdirAll(dirA, 0o755)
	os.MkdirAll(dirB, 0o755)
	hA := startHub(t, dirA, "--config", hubCfg)
	hB := startHub(t, dirB, "--config", hubCfg)
	store := "E" + suffix
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dirA, store, broker, "--config", hubCfg), map[string]string{"T1": journal})
	simP := runSim(t, dir, journal, "T1", 3000, 300, 5)
	ag := startAgent(t, dir, store, cfg)
	hB.waitAtLeast(t, store, 500, 60*time.Second)
	hA.p.kill()
	t.Log("replica A SIGKILLed")
	<-simP.done
	hB.waitRecords(t, store, 3000, 120*time.Second)
	verify(t, hB, store, map[string]sim.Totals{"T1": readTotals(t, journal)})
	ag.stop(t)
	checkLogs(t, dir)
}

func dropSchema(pg, schema string) {
	cmd := exec.Command("psql", pg, "-c", "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	cmd.Run()
}

func (h *hub) waitAtLeast(t testing.TB, store string, n int64, d time.Duration) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("at least %d records of %s", n, store), func() error {
		si, err := h.store(store)
		if err != nil {
			return err
		}
		if si.Records < n {
			return fmt.Errorf("hub has %d", si.Records)
		}
		return nil
	})
}
