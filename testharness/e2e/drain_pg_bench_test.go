package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/sim"
)

// pgBenchURL is the PostgreSQL the benchmarks use: LANEBRIDGE_TEST_PG_URL, or this machine's.
func pgBenchURL() string {
	if pg := os.Getenv("LANEBRIDGE_TEST_PG_URL"); pg != "" {
		return pg
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// pgDrain is one drain of a backlog through a private Mosquitto (locked down with the hub's
// exported ACL) into hubs sharing one PostgreSQL schema of its own.
type pgDrain struct {
	stores, perStore, replicas int
}

// pgDrainResult is what run measured: records/s from the agents connected to every record
// acknowledged, and the hubs' CPU-seconds over that time.
type pgDrainResult struct {
	rate, hubCPU float64
	took         time.Duration
}

// run captures perStore records in each of stores agents while the broker is down, stops the
// agents, starts the broker and the hubs, starts the agents again and times the drain. Every
// record must be at the hub exactly once at the end.
func (d pgDrain) run(b *testing.B) pgDrainResult {
	b.Helper()
	dir := b.TempDir()
	dumpOnFailure(b, dir)
	suffix := fmt.Sprintf("%x", rand.Uint32())
	schema := "lbbench_" + suffix
	b.Cleanup(func() { dropSchema(pgBenchURL(), schema) })
	ids := make([]string, d.stores)
	for i := range ids {
		ids[i] = fmt.Sprintf("P%s%02d", suffix, i)
	}
	hubDirs := make([]string, d.replicas)
	for i := range hubDirs {
		hubDirs[i] = filepath.Join(dir, fmt.Sprintf("hub%d", i))
		if err := os.MkdirAll(hubDirs[i], 0o755); err != nil {
			b.Fatal(err)
		}
	}
	lb := startLockedBroker(b, dir, hubDirs[0], fmt.Sprintf("  shared_group: lb-%s\nstore:\n  postgres_url: %s&search_path=%s\n", suffix, pgBenchURL(), schema), ids...)
	lb.MQ.Stop() // the backlog builds up with the link down
	type agentRun struct{ cfg, listen string }
	ags := make([]agentRun, len(ids))
	for i, id := range ids {
		sdir := filepath.Join(dir, id)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			b.Fatal(err)
		}
		journal := filepath.Join(sdir, "T1.jsonl")
		writeJournal(b, journal, sim.New("T1", "2026-11-26", uint64(9+i), nil, 1), d.perStore)
		cfg := agentConfig(b, sdir, id, lb.Agents[id], map[string]string{"T1": journal})
		ags[i] = agentRun{cfg: cfg, listen: agentListen(b, cfg)}
		p := startAgent(b, sdir, id, cfg)
		waitCaptured(b, ags[i].listen, uint64(d.perStore))
		p.Stop(b)
	}
	lb.MQ.Start(b)
	hubs := make([]*hub, d.replicas)
	for i := range hubs {
		hubs[i] = startHub(b, hubDirs[i], "--config", lb.HubCfg)
	}
	var cpu0 float64
	for _, h := range hubs {
		cpu0 += cpuSeconds(h.P)
	}
	procs := make([]*proc, len(ids))
	t0 := time.Now()
	for i, id := range ids {
		procs[i] = startAgent(b, filepath.Join(dir, id), id, ags[i].cfg)
	}
	for _, a := range ags {
		drainTimed(b, a.listen, uint64(d.perStore), func() {})
	}
	took := time.Since(t0) // agent start-up is in it: short beside the drain
	var cpu float64
	for _, h := range hubs {
		cpu += cpuSeconds(h.P)
	}
	for _, id := range ids {
		si, err := hubs[0].Store(id)
		if err != nil || si.Records != int64(d.perStore) {
			b.Fatalf("hub has %d records of %s (%v), want %d", si.Records, id, err, d.perStore)
		}
	}
	for _, p := range procs {
		p.Stop(b)
	}
	for _, h := range hubs {
		h.P.Stop(b)
	}
	n := float64(d.stores * d.perStore)
	return pgDrainResult{rate: n / took.Seconds(), hubCPU: cpu - cpu0, took: took}
}

// BenchmarkDrainPostgres is BenchmarkDrain on the deployment an integrator scales out: a
// 100,000-record backlog of one store drains agent → private Mosquitto (locked down with the
// exported ACL) → one hub on PostgreSQL, applied and acknowledged. The raw baseline, in the
// same process, is the same payloads through a private Mosquitto between two paho clients.
func BenchmarkDrainPostgres(b *testing.B) {
	if testing.Short() {
		b.Skip("end-to-end")
	}
	dir := b.TempDir()
	g := sim.New("T1", "2026-11-26", 9, nil, 1)
	raw := rawBaseline(b, dir, writeJournal(b, filepath.Join(dir, "raw.jsonl"), g, drainN))
	b.ResetTimer()
	r := pgDrain{stores: 1, perStore: drainN, replicas: 1}.run(b)
	b.StopTimer()
	b.ReportMetric(r.rate, "records/s")
	b.ReportMetric(raw, "raw-records/s")
	b.ReportMetric(r.rate/raw, "ratio")
	b.ReportMetric(r.hubCPU*1e6/drainN, "hub-cpu-µs/record")
	b.Logf("drained %d records (Mosquitto + PostgreSQL) in %v: %.0f records/s (raw MQTT baseline %.0f records/s, ratio %.2f)",
		drainN, r.took.Round(time.Millisecond), r.rate, raw, r.rate/raw)
}

// pgReplicaStores and pgReplicaRecords size BenchmarkPGReplicas: enough stores for a shared
// subscription to spread, few enough agent processes for two shared cores.
const (
	pgReplicaStores  = 8
	pgReplicaRecords = 10_000 // per store
)

// BenchmarkPGReplicas measures what one hub replica applies when 1 and then 2 replicas share
// one PostgreSQL schema and one shared subscription on a private Mosquitto: a backlog of
// pgReplicaStores stores × pgReplicaRecords records drains, applied and acknowledged.
// Metrics: records/s (all replicas), records/s/replica, hub-cpu-µs/record, and, in the
// 2-replica run, ratio-vs-1-replica (records/s of 2 over 1, measured in the same process just
// before). Both replicas run on this one machine: the ratio is a lower bound of what a second
// machine adds (they share its two cores with Mosquitto, PostgreSQL and the agents).
func BenchmarkPGReplicas(b *testing.B) {
	if testing.Short() {
		b.Skip("end-to-end")
	}
	var one float64
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			r := pgDrain{stores: pgReplicaStores, perStore: pgReplicaRecords, replicas: n}.run(b)
			b.ReportMetric(r.rate, "records/s")
			b.ReportMetric(r.rate/float64(n), "records/s/replica")
			b.ReportMetric(r.hubCPU*1e6/float64(pgReplicaStores*pgReplicaRecords), "hub-cpu-µs/record")
			if n == 1 {
				one = r.rate
			} else if one > 0 {
				b.ReportMetric(r.rate/one, "ratio-vs-1-replica")
			}
			b.Logf("%d replica(s): %d records in %v: %.0f records/s, %.0f records/s/replica, hub CPU %.1f s",
				n, pgReplicaStores*pgReplicaRecords, r.took.Round(time.Millisecond), r.rate, r.rate/float64(n), r.hubCPU)
		})
	}
}
