package chaos

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/harness"
	"github.com/lanebridge/lanebridge/testharness/pgcluster"
)

// TestChaosPostgresRestart: the hub's PostgreSQL (a private cluster) is crashed (immediate
// shutdown: crash recovery from the WAL on start) or restarted cleanly at random moments while
// two terminals write 150 records a second. A hub that exits on a lost connection is started
// again, as its service manager would.
func TestChaosPostgresRestart(t *testing.T) {
	r := newRun(t, "postgres-restart")
	pg := pgcluster.Start(t)
	const store = "C004"
	journals := r.terminals(store, 2, 1200)
	h, cfg, out := r.embedded(store, journals, nil, fmt.Sprintf("store:\n  postgres_url: %s&search_path=chaos\n", pg.URL))
	ag := harness.StartAgent(t, r.dir, store, cfg)
	stop := r.load(150)
	r.cycles = cycles(t, 6, 100)
	for range r.cycles {
		time.Sleep(r.between(500*time.Millisecond, 2500*time.Millisecond))
		if r.rng.IntN(2) == 0 {
			pg.Crash(t)
			r.fault("postgres_crash")
		} else {
			pg.Restart(t)
			r.fault("postgres_restart")
		}
		time.Sleep(r.between(100*time.Millisecond, 2*time.Second))
		if pg.Stopped() {
			pg.Start(t)
		}
		if h.P.Exited() {
			h.Start(t)
			r.fault("hub_exited_restarted")
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "the hub to be up", func() error {
		if h.P.Exited() {
			h.Start(t)
			r.fault("hub_exited_restarted")
		}
		_, err := h.Get("/healthz")
		return err
	})
	r.finish(h, out)
	ag.Stop(t)
}

// TestPostgresDurabilityRefused: `lanebridge-hub serve` on a PostgreSQL with fsync off, then
// with synchronous_commit off, refuses to start and names the setting and the override;
// store.allow_nondurable starts it anyway; a durable server starts without it.
func TestPostgresDurabilityRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL 15 server programs")
	}
	t.Parallel()
	dir := t.TempDir()
	harness.DumpOnFailure(t, dir)
	pg := pgcluster.Start(t, "fsync=off")
	storeYAML := fmt.Sprintf("store:\n  postgres_url: %s&search_path=durable\n", pg.URL)
	strict := harness.WriteHubConfig(t, dir, "strict.yaml", storeYAML)
	lax := harness.WriteHubConfig(t, dir, "lax.yaml", storeYAML+"  allow_nondurable: true\n")

	refused := func(setting string) {
		t.Helper()
		logPath := filepath.Join(dir, "refused-"+setting+".log")
		p := harness.Start(t, "lanebridge-hub", logPath, "serve", "--config", strict, "--data", filepath.Join(dir, "hub"),
			"--http", harness.FreeAddr(t), "--mqtt", harness.FreeAddr(t))
		select {
		case <-p.Done:
		case <-time.After(60 * time.Second):
			t.Fatalf("the hub kept running on a PostgreSQL with %s off", setting)
		}
		b, _ := os.ReadFile(logPath)
		if p.Err == nil {
			t.Fatalf("the hub exited 0 on a PostgreSQL with %s off:\n%s", setting, b)
		}
		for _, want := range []string{setting + " = off", "store.allow_nondurable"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("refusal (%s off) does not say %q:\n%s", setting, want, b)
			}
		}
	}
	starts := func(cfg string) {
		t.Helper()
		h := harness.StartHub(t, dir, "--config", cfg)
		h.P.Stop(t)
	}
	refused("fsync")
	starts(lax)
	pg.Restart(t, "synchronous_commit=off")
	refused("synchronous_commit")
	pg.Restart(t)
	starts(strict)
}
