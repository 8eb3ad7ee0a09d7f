package chaos

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/harness"
)

// Environment of the suite.
const (
	modeEnv   = "LANEBRIDGE_CHAOS"        // "long": the long versions (make chaos)
	seedEnv   = "LANEBRIDGE_CHAOS_SEED"   // replay a run
	cyclesEnv = "LANEBRIDGE_CHAOS_CYCLES" // override every scenario's cycle count
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // the scenarios skip; the checker's own tests run
	}
	// No race detector: the kill loops measure cycles, and the e2e suite runs the same
	// binaries under -race.
	dir, err := harness.Build(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func long() bool { return os.Getenv(modeEnv) == "long" }

// cycles is the scenario's cycle count: short by default, long under LANEBRIDGE_CHAOS=long,
// LANEBRIDGE_CHAOS_CYCLES when set.
func cycles(t *testing.T, short, longN int) int {
	if s := os.Getenv(cyclesEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of cycles", cyclesEnv, s)
		}
		return n
	}
	if long() {
		return longN
	}
	return short
}

// run is one scenario run: its seed, its randomness, its history and what it injected.
type run struct {
	t      *testing.T
	name   string
	seed   uint64
	rng    *rand.Rand
	dir    string
	began  time.Time
	h      *History
	mu     sync.Mutex
	faults map[string]int
	cycles int
	terms  []*Terminal
}

func newRun(t *testing.T, name string) *run {
	if testing.Short() {
		t.Skip("chaos scenario: runs the real binaries (go test without -short, make chaos-short)")
	}
	t.Parallel()
	seed := rand.Uint64() >> 1
	if s := os.Getenv(seedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a decimal seed", seedEnv, s)
		}
		seed = v
	}
	f := fnv.New64a()
	f.Write([]byte(name))
	dir := t.TempDir()
	harness.DumpOnFailure(t, dir)
	r := &run{t: t, name: name, seed: seed, rng: rand.New(rand.NewPCG(seed, f.Sum64())), dir: dir, began: time.Now(), h: NewHistory(), faults: map[string]int{}}
	t.Logf("scenario %s seed %d (replay: %s)", name, seed, r.replay())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("scenario %s FAILED with seed %d; replay it with:\n  %s", name, seed, r.replay())
		}
	})
	return r
}

func (r *run) replay() string {
	mode := ""
	if long() {
		mode = modeEnv + "=long "
	}
	if c := os.Getenv(cyclesEnv); c != "" {
		mode += cyclesEnv + "=" + c + " "
	}
	return fmt.Sprintf("%s%s=%d go test -count=1 -v -timeout 60m -run '^%s$' ./testharness/chaos/", mode, seedEnv, r.seed, r.t.Name())
}

func (r *run) fault(name string) {
	r.mu.Lock()
	r.faults[name]++
	r.mu.Unlock()
}

// between is a random duration in [lo, hi).
func (r *run) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.rng.Int64N(int64(hi-lo)))
}

// terminals creates n journal terminals of store (T1…Tn), perDay transactions a business day
// from 2026-11-20 on, and returns their journals for harness.AgentConfig.
func (r *run) terminals(store string, n, perDay int) map[string]string {
	r.t.Helper()
	journals := map[string]string{}
	first := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("T%d", i)
		path := filepath.Join(r.dir, store+"-"+id+".jsonl")
		term, err := NewTerminal(r.h, store, id, path, first, perDay, r.rng.Uint64())
		if err != nil {
			r.t.Fatal(err)
		}
		r.terms = append(r.terms, term)
		journals[id] = path
	}
	return journals
}

// load emits rate records a second across the terminals until stop is called; stop returns
// the first write error. finish closes the terminals (each prints its last Z report).
func (r *run) load(rate int) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		owed, i := 0.0, 0
		for {
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-tick.C:
			}
			// One write and fsync per terminal per tick, as a busy store's terminals append.
			owed += float64(rate) / 50
			n := int(owed)
			owed -= float64(n)
			for j := range r.terms {
				k := n / len(r.terms)
				if (i+j)%len(r.terms) < n%len(r.terms) {
					k++
				}
				if k == 0 {
					continue
				}
				if err := r.terms[j].Emit(k); err != nil {
					done <- err
					return
				}
			}
			i += n
		}
	}()
	return func() error {
		cancel()
		return <-done
	}
}

// erpYAML is the hub config section that posts to a flat-file ERP in dir/erp-out, and that
// folder.
func (r *run) erpYAML() (string, string) {
	out := filepath.Join(r.dir, "erp-out")
	return fmt.Sprintf("erp:\n  kind: flatfile\n  flatfile:\n    outbound: %s\n    state: %s\n", out, filepath.Join(r.dir, "erp-state")), out
}

// embedded starts a hub with its embedded broker posting to the flat-file ERP (extraYAML adds
// config sections), enrols store (its agent pointed at via(hub's MQTT address), or at the hub
// itself when via is nil) and returns the hub, the agent config and the ERP folder.
func (r *run) embedded(store string, journals map[string]string, via func(mqtt string) string, extraYAML string) (*harness.Hub, string, string) {
	r.t.Helper()
	erp, out := r.erpYAML()
	cfg := harness.WriteHubConfig(r.t, r.dir, "hub.yaml", erp+extraYAML)
	h := &harness.Hub{Dir: r.dir, HTTP: harness.FreeAddr(r.t), MQTT: harness.FreeAddr(r.t), Extra: []string{"--config", cfg}}
	broker := "tcp://" + h.MQTT
	if via != nil {
		broker = via(h.MQTT)
	}
	agentCfg := harness.AgentConfig(r.t, r.dir, store, harness.Enroll(r.t, r.dir, store, broker, "--config", cfg), journals)
	h.Start(r.t)
	return h, agentCfg, out
}

// finish waits until the hub holds every record each store emitted and the ERP every sale
// and return (or the time runs out), then checks the history, writes the Result and fails
// the test, with the replay command, on any breach of the promise.
func (r *run) finish(h *harness.Hub, outbound string) {
	r.t.Helper()
	for _, t := range r.terms {
		if err := t.Close(); err != nil {
			r.t.Fatal(err)
		}
	}
	want := map[string]int{}
	r.h.mu.Lock()
	wantPosted := 0
	for k, kept := range r.h.kept {
		if kept {
			want[k.Store]++
			if k.Kind == protocol.KindSale || k.Kind == protocol.KindReturn {
				wantPosted++
			}
		}
	}
	r.h.mu.Unlock()
	drain := 3 * time.Minute
	if long() {
		drain = 15 * time.Minute
	}
	deadline := time.Now().Add(drain)
	for store, n := range want {
		for time.Now().Before(deadline) {
			if si, err := h.Store(store); err == nil && si.Records >= int64(n) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var postings []Posting
	if outbound != "" {
		for {
			var err error
			postings, err = ReadPostings(outbound)
			if err != nil {
				r.t.Errorf("ERP postings: %v", err)
			}
			distinct := map[string]bool{}
			for _, p := range postings {
				distinct[p.Key] = true
			}
			if len(distinct) >= wantPosted || !time.Now().Before(deadline) {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		time.Sleep(time.Second) // a posting written twice would show by now
		postings, _ = ReadPostings(outbound)
	}
	applied := map[string][]protocol.Record{}
	for store := range want {
		recs, err := h.FetchRecords(store)
		if err != nil {
			r.t.Fatalf("records of %s: %v", store, err)
		}
		applied[store] = recs
	}
	rep := r.h.Check(applied, postings)
	res := Result{Scenario: r.name, Seed: r.seed, Cycles: r.cycles, Faults: r.faults, Captured: rep.Captured, Applied: rep.Applied,
		Lost: rep.Lost, Duplicated: rep.Duplicated, Posted: rep.Posted, Replay: r.replay(), DurationS: time.Since(r.began).Round(time.Millisecond).Seconds()}
	if dir := os.Getenv(OutEnv); dir != "" {
		if err := res.Write(dir); err != nil {
			r.t.Error(err)
		}
	}
	r.t.Logf("%s: %d cycles, faults %v, %s", r.name, r.cycles, r.faults, rep)
	if rep.Captured == 0 {
		r.t.Error("nothing was captured: the scenario proved nothing")
	}
	if !rep.OK() {
		r.t.Errorf("the promise does not hold under %s (seed %d):\n%s\nreplay: %s", r.name, r.seed, rep, r.replay())
	}
	harness.CheckLogs(r.t, r.dir)
}
