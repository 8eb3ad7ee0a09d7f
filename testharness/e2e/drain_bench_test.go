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
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/harness"
	"github.com/lanebridge/lanebridge/testharness/peers"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// drainN is the drain benchmarks' default backlog.
const drainN = 100_000

// benchN is the backlog size of BenchmarkDrain and BenchmarkPeers: LANEBRIDGE_BENCH_N, default
// drainN (make bench sets the 1,000,000).
func benchN() int {
	if v, err := strconv.Atoi(os.Getenv("LANEBRIDGE_BENCH_N")); err == nil && v > 0 {
		return v
	}
	return drainN
}

// newBenchGen is the generator of every drain benchmark's records (peers.Backlog's note).
func newBenchGen() *sim.Generator { return sim.New("T1", "2026-11-26", 9, nil, 1) }

// writeJournal writes n records of g to path as the agent's canonical-jsonl journal and returns
// them as the raw baseline's payloads (batches of 256, peers.Backlog).
func writeJournal(b testing.TB, path string, g *sim.Generator, n int) [][]byte {
	b.Helper()
	lines, _, batches := peers.Backlog(g, n)
	if err := writeFile(path, lines); err != nil {
		b.Fatal(err)
	}
	return batches
}

// rawBaseline returns records/s for the batch payloads through a private Mosquitto between two
// paho clients (peers.RawQoS1).
func rawBaseline(b testing.TB, dir string, payloads [][]byte) float64 {
	b.Helper()
	n := 0
	for _, p := range payloads {
		n += bytes.Count(p, []byte(`"seq":`)) // one per record; a batch has no seq of its own
	}
	return peers.RawQoS1(b, dir, payloads, n)
}

// BenchmarkDrain measures how fast a backlog (LANEBRIDGE_BENCH_N records, default 100,000)
// captured while the hub was down drains agent → embedded broker → hub store, applied and
// acknowledged, with the real binaries. Two baselines run in the same process, before it, on
// the same records: the NATS leaf node + JetStream peer moving the same backlog (one record per
// message; see testharness/peers) and raw QoS 1 between two paho clients through a private
// Mosquitto without storage (the agent's batches of 256). x_nats and x_raw are Lanebridge's
// rate over theirs (issue 11 target 1: x_nats ≥ 3, x_raw ≥ 0.3).
func BenchmarkDrain(b *testing.B) {
	drainN := benchN()
	dir := b.TempDir()
	dumpOnFailure(b, dir)
	journal := filepath.Join(dir, "T1.jsonl")
	lines, records, batches := peers.Backlog(newBenchGen(), drainN)
	if err := writeFile(journal, lines); err != nil {
		b.Fatal(err)
	}

	raw := rawBaseline(b, dir, batches)
	nats := peers.Drain(b, &peers.NATSLeaf{Dir: filepath.Join(dir, "nats")}, records, 10*time.Minute)
	records, batches = nil, nil

	h := &hub{&harness.Hub{Dir: dir, HTTP: freeAddr(b), MQTT: freeAddr(b)}}
	if pp := os.Getenv("LANEBRIDGE_BENCH_PPROF"); pp != "" {
		h.Extra = []string{"--pprof", pp} // e.g. 127.0.0.1:6060, then: go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=5
	}
	const store = "S900"
	cfg := agentConfig(b, dir, store, enroll(b, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": journal})
	listen := agentListen(b, cfg)
	ag := startAgent(b, dir, store, cfg)
	waitCaptured(b, listen, uint64(drainN))
	b.ResetTimer()
	h.Start(b)
	var hubCPU0, agentCPU0 float64
	el := drainTimed(b, listen, uint64(drainN), func() {
		hubCPU0, agentCPU0 = cpuSeconds(h.P), cpuSeconds(ag)
		if os.Getenv("LANEBRIDGE_BENCH_PPROF") != "" {
			b.Logf("agent profile: go tool pprof http://%s/debug/pprof/profile?seconds=4", listen)
		}
	})
	b.StopTimer()
	hubCPU, agentCPU := cpuSeconds(h.P)-hubCPU0, cpuSeconds(ag)-agentCPU0
	si, err := h.Store(store)
	if err != nil || si.Records != int64(drainN) {
		b.Fatalf("hub has %d records (%v), want %d", si.Records, err, drainN)
	}
	rate := float64(drainN) / el.Seconds()
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(nats.RecordsPer, "nats-records/s")
	b.ReportMetric(raw, "raw-records/s")
	b.ReportMetric(rate/nats.RecordsPer, "x_nats")
	b.ReportMetric(rate/raw, "x_raw")
	b.ReportMetric(float64(drainN), "records")
	// CPU per record is steadier than a rate on a shared machine: compare these across runs.
	b.ReportMetric(hubCPU*1e6/float64(drainN), "hub-cpu-µs/record")
	b.ReportMetric(agentCPU*1e6/float64(drainN), "agent-cpu-µs/record")
	b.Logf("drained %d records in %v: %.0f records/s; NATS leaf + JetStream %.0f records/s (x%.2f); raw QoS 1 %.0f records/s (x%.3f)",
		drainN, el.Round(time.Millisecond), rate, nats.RecordsPer, rate/nats.RecordsPer, raw, rate/raw)
	ag.Stop(b)
	h.P.Stop(b)
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

func agentListen(b testing.TB, cfgPath string) string {
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
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
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
