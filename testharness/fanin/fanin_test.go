package fanin

import (
	"context"
	"os/exec"
	"path/filepath"
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
