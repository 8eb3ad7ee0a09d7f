package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/mosquitto"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

const drainN = 100_000

// BenchmarkDrain measures how fast a 100,000-record backlog captured while the hub was down
// drains agent → embedded broker → hub store, applied and acknowledged, with the real binaries.
// The raw baseline, run in the same process, pushes the same batch payloads through a private
// Mosquitto from one paho client to another (QoS 1, no storage): the ratio says what durable
// apply-and-ack costs over bare MQTT transport.
func BenchmarkDrain(b *testing.B) {
	dir := b.TempDir()
	dumpOnFailure(b, dir)
	journal := filepath.Join(dir, "T1.jsonl")
	g := sim.New("T1", "2026-11-26", 9, nil, 1)
	payloads := writeJournal(b, journal, g, drainN)

	raw := rawBaseline(b, dir, payloads)

	h := &hub{dir: dir, http: freeAddr(b), mqtt: freeAddr(b)}
	if pp := os.Getenv("LANEBRIDGE_BENCH_PPROF"); pp != "" {
		h.extra = []string{"--pprof", pp} // e.g. 127.0.0.1:6060, then: go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=5
	}
	const store = "S900"
	cfg := agentConfig(b, dir, store, enroll(b, dir, store, "tcp://"+h.mqtt), map[string]string{"T1": journal})
	listen := agentListen(b, cfg)
	ag := startAgent(b, dir, store, cfg)
	waitCaptured(b, listen, drainN)
	b.ResetTimer()
	h.start(b)
	var hubCPU0, agentCPU0 float64
	el := drainTimed(b, listen, drainN, func() {
		hubCPU0, agentCPU0 = cpuSeconds(h.p), cpuSeconds(ag)
		if os.Getenv("LANEBRIDGE_BENCH_PPROF") != "" {
			b.Logf("agent profile: go tool pprof http://%s/debug/pprof/profile?seconds=4", listen)
		}
	})
	b.StopTimer()
	hubCPU, agentCPU := cpuSeconds(h.p)-hubCPU0, cpuSeconds(ag)-agentCPU0
	si, err := h.store(store)
	if err != nil || si.Records != drainN {
		b.Fatalf("hub has %d records (%v), want %d", si.Records, err, drainN)
	}
	rate := float64(drainN) / el.Seconds()
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(raw, "raw-records/s")
	b.ReportMetric(rate/raw, "ratio")
	// CPU per record is steadier than a rate on a shared machine: compare these across runs.
	b.ReportMetric(hubCPU*1e6/drainN, "hub-cpu-µs/record")
	b.ReportMetric(agentCPU*1e6/drainN, "agent-cpu-µs/record")
	b.Logf("drained %d records in %v: %.0f records/s (raw MQTT baseline %.0f records/s, ratio %.2f)", drainN, el.Round(time.Millisecond), rate, raw, rate/raw)
	ag.stop(b)
	h.p.stop(b)
}

// waitCaptured waits until the agent at listen has captured n records.
func waitCaptured(b *testing.B, listen string, n uint64) {
	b.Helper()
	eventually(b, 120*time.Second, "agent captured the backlog", func() error {
		st, err := agentStatus(listen)
		if err != nil {
			return err
		}
		if st.LastSeq != n {
			return fmt.Errorf("captured %d", st.LastSeq)
		}
		return nil
	})
}

// drainTimed waits until the agent at listen is connected (its reconnect back-off is not the
// drain), calls connected, then waits until the hub has acknowledged n records, and returns
// the time from connected to acknowledged.
func drainTimed(b *testing.B, listen string, n uint64, connected func()) time.Duration {
	b.Helper()
	var t0 time.Time
	eventually(b, 60*time.Second, "agent connected", func() error {
		st, err := agentStatus(listen)
		if err != nil {
			return err
		}
		if !st.Connected {
			return fmt.Errorf("not connected")
		}
		t0 = time.Now()
		return nil
	})
	connected()
	eventually(b, 300*time.Second, "backlog drained and acked", func() error {
		st, err := agentStatus(listen)
		if err != nil {
			return err
		}
		if st.LastAck != n {
			return fmt.Errorf("acked %d", st.LastAck)
		}
		return nil
	})
	return time.Since(t0)
}

func writeJournal(b *testing.B, path string, g *sim.Generator, n int) [][]byte {
	b.Helper()
	var lines []byte
	var batch []protocol.Record
	var payloads [][]byte
	for i := range n {
		r := g.Next()
		j, _ := json.Marshal(r)
		lines = append(append(lines, j...), '\n')
		r.Store, r.Epoch, r.Seq, r.CapturedAt = "S901", "raw", uint64(i+1), time.Now().UTC()
		r.Seal()
		batch = append(batch, r)
		if len(batch) == 256 || i == n-1 {
			p, _ := json.Marshal(protocol.Batch{V: 1, Store: "S901", Epoch: "raw", Records: batch})
			payloads = append(payloads, p)
			batch = nil
		}
	}
	if err := writeFile(path, lines); err != nil {
		b.Fatal(err)
	}
	return payloads
}

// rawBaseline returns records/s for the same payloads through a private Mosquitto.
func rawBaseline(b *testing.B, dir string, payloads [][]byte) float64 {
	mq := mosquitto.Start(b, dir, "") // anonymous: the baseline is the raw broker
	opts := func(id string) *mqtt.ClientOptions {
		return mqtt.NewClientOptions().AddBroker(mq.URL).SetClientID(id).SetCleanSession(true)
	}
	var got atomic.Int64
	done := make(chan struct{})
	sub := mqtt.NewClient(opts("raw-sub"))
	if t := sub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatalf("raw subscriber: %v", t.Error())
	}
	defer sub.Disconnect(100)
	total := int64(0)
	for range payloads {
		total++
	}
	t := sub.Subscribe("raw/records", 1, func(_ mqtt.Client, m mqtt.Message) {
		if got.Add(1) == total {
			close(done)
		}
	})
	t.WaitTimeout(10 * time.Second)
	pub := mqtt.NewClient(opts("raw-pub"))
	if t := pub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatalf("raw publisher: %v", t.Error())
	}
	defer pub.Disconnect(100)
	t0 := time.Now()
	for _, p := range payloads {
		pub.Publish("raw/records", 1, false, p)
	}
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		b.Fatalf("raw baseline: received %d of %d messages", got.Load(), total)
	}
	mq.Stop()
	return float64(drainN) / time.Since(t0).Seconds()
}

func agentListen(b *testing.B, cfgPath string) string {
	b.Helper()
	data, err := readFile(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	var addr string
	for _, l := range splitLines(string(data)) {
		if _, err := fmt.Sscanf(l, "listen: %s", &addr); err == nil {
			return addr
		}
	}
	b.Fatal("no listen in agent config")
	return ""
}

type agentLocal struct {
	LastSeq   uint64 `json:"last_seq"`
	LastAck   uint64 `json:"last_ack"`
	Connected bool   `json:"connected"`
}

func agentStatus(listen string) (agentLocal, error) {
	var st agentLocal
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + listen + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// cpuSeconds is the user and system CPU time process p has used so far (Linux /proc; 0
// elsewhere).
func cpuSeconds(p *proc) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	i := bytes.LastIndexByte(b, ')')
	if err != nil || i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state); utime and stime are 14 and 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ is 100 on Linux
}
