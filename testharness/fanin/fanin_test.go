package fanin

import (
	"cmp"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestFanInExactlyOnce runs 50 emulated stores × 10 records/s for 10 s against a real hub
// (embedded broker + SQLite) and checks correctness only: every record made is acknowledged
// and stored exactly once per store. Timing is printed, not asserted (make fanin is the
// measurement).
func TestFanInExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hub")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "lanebridge-hub")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lanebridge/lanebridge/hub/cmd/lanebridge-hub").CombinedOutput(); err != nil {
		t.Fatalf("build hub: %v\n%s", err, out)
	}
	res, stop, err := Run(context.Background(), Config{HubBin: bin, Dir: dir, Stores: 50, Rate: 10, Duration: 10 * time.Second, Log: tlog{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := res.Verify(); err != nil {
		t.Fatal(err)
	}
	if res.Made < 50*10*5 || !res.Drained || res.Acked != res.Made {
		t.Fatalf("made %d, acked %d: want at least %d made, all acked", res.Made, res.Acked, 50*10*5)
	}
	for id, n := range res.Sent {
		if n == 0 {
			t.Fatalf("store %s made nothing", id)
		}
	}
	t.Logf("\n%s", res)
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }

// BenchmarkFanin runs LANEBRIDGE_BENCH_FANIN_STORES emulated stores (default 200; issue 11
// target 3 is 1,000) × LANEBRIDGE_BENCH_FANIN_RATE records/s (default 10) for
// LANEBRIDGE_BENCH_FANIN_DURATION (default 30s) against one real hub and reports what make
// fanin prints, as benchmark metrics: capture→ack p50/p99, backlog growth (mean unacknowledged
// over the last third less the first), hub CPU and RSS. Run it with -benchtime 1x.
func BenchmarkFanin(b *testing.B) {
	rate, _ := strconv.ParseFloat(os.Getenv("LANEBRIDGE_BENCH_FANIN_RATE"), 64)
	benchFanin(b, envInt("LANEBRIDGE_BENCH_FANIN_STORES", 200), cmp.Or(rate, 10), envDur("LANEBRIDGE_BENCH_FANIN_DURATION", 30*time.Second))
}

// BenchmarkFaninIdle holds LANEBRIDGE_BENCH_FANIN_IDLE idle connected agents (default 2,000;
// the target is 10,000) for LANEBRIDGE_BENCH_FANIN_IDLE_DURATION (default 20s) and reports the
// hub's peak RSS. Run it with -benchtime 1x.
func BenchmarkFaninIdle(b *testing.B) {
	benchFanin(b, envInt("LANEBRIDGE_BENCH_FANIN_IDLE", 2000), 0, envDur("LANEBRIDGE_BENCH_FANIN_IDLE_DURATION", 20*time.Second))
}

func envInt(key string, def int) int {
	v, _ := strconv.Atoi(os.Getenv(key))
	return cmp.Or(v, def)
}

func envDur(key string, def time.Duration) time.Duration {
	v, _ := time.ParseDuration(os.Getenv(key))
	return cmp.Or(v, def)
}

func benchFanin(b *testing.B, stores int, rate float64, dur time.Duration) {
	if _, err := RaiseFDLimit(); err != nil {
		b.Logf("raise open-file limit: %v", err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "lanebridge-hub")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lanebridge/lanebridge/hub/cmd/lanebridge-hub").CombinedOutput(); err != nil {
		b.Fatalf("build hub: %v\n%s", err, out)
	}
	for b.Loop() {
		res, stop, err := Run(context.Background(), Config{HubBin: bin, Dir: b.TempDir(), Stores: stores, Rate: rate, Duration: dur})
		if err != nil {
			b.Fatal(err)
		}
		err = res.Verify()
		stop()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("\n%s", res)
		if rate > 0 {
			b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(res.BacklogEnd-res.BacklogStart, "backlog-growth")
			b.ReportMetric(float64(res.Acked)/res.Elapsed.Seconds(), "records/s")
		}
		b.ReportMetric(100*res.HubCPU/res.Elapsed.Seconds(), "hub-cpu-%")
		b.ReportMetric(float64(res.HubPeak)/(1<<20), "hub-rss-peak-MiB")
		b.ReportMetric(float64(stores), "stores")
		b.ReportMetric(0, "ns/op")
	}
}
