// Package peers runs, side by side with Lanebridge, the store-and-forward an integrator would
// deploy instead, as private processes on loopback ports (never the machine's shared Mosquitto
// on 1883 or NATS on 4222):
//
//   - [MosquittoBridge]: a store-side Mosquitto bridged (QoS 1, cleansession false) to a central
//     Mosquitto, both with persistence; with defaults (autosave every 1,800 s) or saving on
//     every change (autosave_on_changes true, autosave_interval 1);
//   - [NATSLeaf]: a store-side NATS leaf node with JetStream (domain "store", stream STORE)
//     whose records a central nats-server with JetStream (domain "hub") sources into its
//     stream CENTRAL;
//   - [RawQoS1]: the floor, two paho clients through a private Mosquitto without storage.
//
// Each peer carries one record per message (a POS publishes each sale as it happens); the
// records are the same canonical records, about 690 bytes of JSON each, that the Lanebridge
// agent captures ([Backlog]). Lanebridge's own side of the comparison runs in testharness/e2e,
// whose harness builds and drives the real agent and hub.
//
// # Scenarios
//
// [Drain]: the link is down (the central side is not running), N records are published to the
// store side and acknowledged by it, the link comes up, and the clock runs from the first
// record's arrival centrally to the N-th (so reconnect back-off is not counted, a bias in the
// peer's favour). [OutageKill]: the same outage, but the store-side process is SIGKILLed after
// the N acknowledgements and started again before the link comes up; what does not arrive
// centrally is lost. A peer losing records is a finding about the peer, not a test failure.
//
// # Caveats
//
//   - Link down means the central process is stopped (cleanly), as in the drain benchmark where
//     the hub is started after the backlog is captured; no proxy sits in the measured path.
//   - Figures are from a shared 2-core machine: compare ratios from one run, not absolutes.
package peers

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// Peer is one store-and-forward deployment: a store side and a central side. Methods are
// called from one goroutine, in the order Start, Publish, [KillStore, RestartStore], LinkUp,
// Count and Distinct any number of times, then Stop; a cleanup on the testing.TB kills what is
// left running.
type Peer interface {
	// Name is a short metric-friendly name (mosq_default, mosq_autosave, nats).
	Name() string
	// Start starts both sides, prepares the central side to receive, then takes the link
	// down (stops the central side).
	Start(t testing.TB)
	// Publish sends every record to the store side and returns once the store side has
	// acknowledged each one (PUBACK, JetStream publish ack).
	Publish(t testing.TB, records [][]byte)
	// KillStore SIGKILLs the store-side process; RestartStore starts it again on its files.
	KillStore(t testing.TB)
	RestartStore(t testing.TB)
	// LinkUp starts the central side again; the store side reconnects on its own.
	LinkUp(t testing.TB)
	// Count is how many records have arrived centrally so far, duplicates included.
	Count(t testing.TB) int
	// Distinct is how many different records (by seq) have arrived centrally.
	Distinct(t testing.TB) int
	// Stop stops both sides (cleanly) so that an idle peer costs nothing in a later
	// measurement of the same run.
	Stop(t testing.TB)
}

// Backlog makes n records with g (sim.New("T1", "2026-11-26", 9, nil, 1) in the benchmarks):
// journal is the canonical-jsonl lines a Lanebridge agent captures; records the same records,
// sealed for store S901 with seq 1..n, one JSON message each (what a peer carries); batches
// those in protocol batches of 256 (the raw baseline's payloads, as the agent sends them).
func Backlog(g *sim.Generator, n int) (journal []byte, records, batches [][]byte) {
	var batch []protocol.Record
	for i := range n {
		r := g.Next()
		j, _ := json.Marshal(r)
		journal = append(append(journal, j...), '\n')
		r.Store, r.Epoch, r.Seq, r.CapturedAt = "S901", "raw", uint64(i+1), time.Now().UTC()
		r.Seal()
		rec, _ := json.Marshal(r)
		records = append(records, rec)
		batch = append(batch, r)
		if len(batch) == 256 || i == n-1 {
			p, _ := json.Marshal(protocol.Batch{V: 1, Store: "S901", Epoch: "raw", Records: batch})
			batches = append(batches, p)
			batch = nil
		}
	}
	return journal, records, batches
}

// seqOf reads the "seq" field of a record message without decoding all of it.
func seqOf(msg []byte) (int, bool) {
	i := bytes.Index(msg, []byte(`"seq":`))
	if i < 0 {
		return 0, false
	}
	msg = msg[i+len(`"seq":`):]
	j := 0
	for j < len(msg) && msg[j] >= '0' && msg[j] <= '9' {
		j++
	}
	n, err := strconv.Atoi(string(msg[:j]))
	return n, err == nil
}

// tally counts arrivals by seq; safe for concurrent use (message handlers call add).
type tally struct {
	mu       sync.Mutex
	seen     map[int]bool
	arrivals int
}

func newTally() *tally { return &tally{seen: map[int]bool{}} }

func (c *tally) add(msg []byte) {
	seq, ok := seqOf(msg)
	c.mu.Lock()
	c.arrivals++
	if ok {
		c.seen[seq] = true
	}
	c.mu.Unlock()
}

func (c *tally) counts() (arrivals, distinct int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.arrivals, len(c.seen)
}

// DrainResult is one drain's figures.
type DrainResult struct {
	Records    int
	Publish    time.Duration // publishing the backlog to the store side, all acknowledged
	Elapsed    time.Duration // first central arrival → last
	RecordsPer float64       // Records / Elapsed
}

// Drain publishes records while the link is down, brings it up and times the move (see the
// package comment). It fails the test if the records do not all arrive within timeout.
func Drain(t testing.TB, p Peer, records [][]byte, timeout time.Duration) DrainResult {
	t.Helper()
	p.Start(t)
	t0 := time.Now()
	p.Publish(t, records)
	res := DrainResult{Records: len(records), Publish: time.Since(t0)}
	p.LinkUp(t)
	var first time.Time
	deadline := time.Now().Add(timeout)
	for {
		n := p.Count(t)
		now := time.Now()
		if n > 0 && first.IsZero() {
			first = now
		}
		if n >= len(records) {
			res.Elapsed = now.Sub(first)
			break
		}
		if now.After(deadline) {
			t.Fatalf("%s: %d of %d records arrived centrally within %v", p.Name(), n, len(records), timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := p.Distinct(t); d != len(records) {
		t.Fatalf("%s: %d distinct records arrived centrally, want %d", p.Name(), d, len(records))
	}
	p.Stop(t)
	res.Elapsed = max(res.Elapsed, time.Millisecond)
	res.RecordsPer = float64(len(records)) / res.Elapsed.Seconds()
	return res
}

// OutageKill publishes records while the link is down, SIGKILLs the store side, restarts it,
// brings the link up and returns how many records never arrived centrally: it waits until all
// have arrived or nothing new has arrived for quiet (after at least quiet since the link came up).
func OutageKill(t testing.TB, p Peer, records [][]byte, quiet time.Duration) (lost int) {
	t.Helper()
	p.Start(t)
	p.Publish(t, records)
	p.KillStore(t)
	p.RestartStore(t)
	p.LinkUp(t)
	lost = len(records) - WaitQuiet(t, p.Count, p.Distinct, len(records), quiet)
	p.Stop(t)
	return lost
}

// WaitQuiet polls count until it reaches want or stops changing for quiet (and at least quiet
// has passed), then returns distinct().
func WaitQuiet(t testing.TB, count func(testing.TB) int, distinct func(testing.TB) int, want int, quiet time.Duration) int {
	t.Helper()
	last, changed := -1, time.Now()
	for {
		n := count(t)
		if n != last {
			last, changed = n, time.Now()
		}
		if n >= want || time.Since(changed) >= quiet {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return distinct(t)
}

// waitFor polls cond every 20 ms until it returns nil or d passes, then fails the test.
func waitFor(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", d, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
