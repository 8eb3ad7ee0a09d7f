package peers

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/sim"
)

// peersUnder returns the three peers, each with its own directory under dir.
func peersUnder(dir string) []Peer {
	return []Peer{
		&MosquittoBridge{Dir: filepath.Join(dir, "mosq_default")},
		&MosquittoBridge{Dir: filepath.Join(dir, "mosq_autosave"), Autosave: true},
		&NATSLeaf{Dir: filepath.Join(dir, "nats")},
	}
}

func testGen() *sim.Generator { return sim.New("T1", "2026-11-26", 9, nil, 1) }

func skipShort(t *testing.T) {
	if testing.Short() {
		if os.Getenv("CI") == "true" {
			t.Fatal("peers tests need the real mosquitto and nats-server binaries; do not run them with -short under CI")
		}
		t.Skip("starts real brokers")
	}
}

// TestPeersDeliverAnOutage checks the harness itself: with no fault, every peer delivers
// every record published during an outage, exactly the records published. Without it a loss
// reported by OutageKill could be a counting bug.
func TestPeersDeliverAnOutage(t *testing.T) {
	skipShort(t)
	_, records, _ := Backlog(testGen(), 500)
	for _, p := range peersUnder(t.TempDir()) {
		t.Run(p.Name(), func(t *testing.T) {
			res := Drain(t, p, records, 60*time.Second)
			t.Logf("%s: published %d in %v, moved in %v (%.0f records/s)", p.Name(), res.Records, res.Publish.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond), res.RecordsPer)
		})
	}
}

func TestSeqOf(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{`{"store":"S1","seq":42,"x":1}`, 42, true},
		{`{"seq":7}`, 7, true},
		{`{"store":"S1"}`, 0, false},
		{`{"seq":"x"}`, 0, false},
	} {
		got, ok := seqOf([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("seqOf(%q) = %d, %v, want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestBacklog(t *testing.T) {
	journal, records, batches := Backlog(testGen(), 600)
	if len(records) != 600 || len(batches) != 3 {
		t.Fatalf("Backlog(testGen(), 600): %d records, %d batches, want 600 and 3", len(records), len(batches))
	}
	if n := len(splitLines(journal)); n != 600 {
		t.Fatalf("journal has %d lines, want 600", n)
	}
	for i, r := range records {
		if s, ok := seqOf(r); !ok || s != i+1 {
			t.Fatalf("record %d has seq %d (%v)", i, s, ok)
		}
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}
