package chaos

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// cleanHistory is a terminal's 30 transactions over two business days (two Z reports), the
// records a hub that kept the promise applies, and the postings an ERP that did holds.
func cleanHistory(t *testing.T) (*History, []protocol.Record, []Posting) {
	t.Helper()
	h := NewHistory()
	term, err := NewTerminal(h, "S1", "T1", filepath.Join(t.TempDir(), "j.jsonl"), time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 15, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := term.Emit(30); err != nil {
		t.Fatal(err)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	var applied []protocol.Record
	var posted []Posting
	for i, k := range h.order {
		r := h.emitted[k]
		r.Store, r.Epoch, r.Seq = "S1", "e1", uint64(i+1)
		r.Seal()
		applied = append(applied, r)
		if r.Kind == protocol.KindSale || r.Kind == protocol.KindReturn {
			posted = append(posted, Posting{Key: k.String(), File: "LB_S1_" + r.BusinessDate + ".csv", Total: r.Total})
		}
	}
	return h, applied, posted
}

// TestCheckerCatchesEveryBreach: the clean history passes; each breach of the promise, made
// on a copy of it, is reported with the right counts. A checker that cannot fail proves
// nothing.
func TestCheckerCatchesEveryBreach(t *testing.T) {
	firstSale := func(recs []protocol.Record) int {
		return slices.IndexFunc(recs, func(r protocol.Record) bool { return r.Kind == protocol.KindSale })
	}
	cases := []struct {
		name      string
		mutate    func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting)
		problem   string
		lost, dup int
	}{
		{"clean", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) { return a, p }, "", 0, 0},
		{"record lost", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) {
			return a[:len(a)-1], p // the last Z report; seq stays contiguous
		}, "never applied", 1, 0},
		{"record lost mid-stream", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) {
			return slices.Delete(a, 3, 4), p
		}, "seq not contiguous", 1, 0},
		{"applied twice under a new seq", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) {
			r := a[2]
			r.Seq = uint64(len(a) + 1)
			r.Seal()
			return append(a, r), p
		}, "applied 2 times", 0, 1},
		{"seq applied twice", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) {
			r := a[4]
			r.Receipt = "999" // a different record under an existing seq
			r.Seal()
			return append(a, r), p
		}, "seq 5 applied twice", 0, 1},
		{"amount altered", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) {
			i := firstSale(a)
			a[i].Total++
			a[i].Seal()
			return a, p
		}, "differs from what the terminal emitted", 0, 0},
		{"phantom record", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) {
			r := a[0]
			r.Receipt, r.Seq = "4242", uint64(len(a)+1)
			r.Seal()
			return append(a, r), p
		}, "never emitted by a terminal", 0, 0},
		{"posted twice", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) {
			d := p[0]
			d.File = "LB_other.csv"
			return a, append(p, d)
		}, "posted 2 times", 0, 1},
		{"never posted", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) {
			return a, p[1:]
		}, "never posted", 1, 0},
		{"posted with another total", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) {
			p[0].Total += 1
			return a, p
		}, "posted with total", 0, 0},
		{"Z report disagrees", func(h *History, a []protocol.Record, p []Posting) ([]protocol.Record, []Posting) {
			for k, r := range h.emitted {
				if r.Kind == protocol.KindZReport {
					z := *r.Z
					z.GrandTotal++
					r.Z = &z
					h.emitted[k] = r
					break
				}
			}
			return a, p
		}, "Z report", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, a, p := cleanHistory(t)
			a, p = c.mutate(h, a, p)
			rep := h.Check(map[string][]protocol.Record{"S1": a}, p)
			if c.problem == "" {
				if !rep.OK() {
					t.Fatalf("clean history reported: %s", rep)
				}
				if rep.Captured != 32 || rep.Applied != 32 || rep.Posted == 0 {
					t.Fatalf("clean history counted %s", rep)
				}
				return
			}
			if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), c.problem) {
				t.Fatalf("want a problem containing %q, got %s", c.problem, rep)
			}
			if rep.Lost != c.lost || rep.Duplicated != c.dup {
				t.Fatalf("lost %d duplicated %d, want %d and %d: %s", rep.Lost, rep.Duplicated, c.lost, c.dup, rep)
			}
		})
	}
}

// TestCheckerKeepsNotKeptApart: records a terminal emitted but did not keep are counted
// apart: missing at the hub is not a loss, present is counted, never as captured.
func TestCheckerKeepsNotKeptApart(t *testing.T) {
	h, a, p := cleanHistory(t)
	gone := protocol.Record{Kind: protocol.KindNoSale, Terminal: "T1", Receipt: "900", BusinessDate: "2026-11-20"}
	seen := protocol.Record{Kind: protocol.KindNoSale, Terminal: "T1", Receipt: "901", BusinessDate: "2026-11-20"}
	for _, r := range []protocol.Record{gone, seen} {
		if err := h.Emit("S1", r, false); err != nil {
			t.Fatal(err)
		}
	}
	seen.Store, seen.Epoch, seen.Seq = "S1", "e1", uint64(len(a)+1)
	seen.Seal()
	rep := h.Check(map[string][]protocol.Record{"S1": append(a, seen)}, p)
	if rep.Lost != 0 || rep.Captured != 32 || rep.NotKept != 2 || rep.NotKeptApplied != 1 {
		t.Fatalf("not-kept records mixed in: %s", rep)
	}
	if err := h.Emit("S1", gone, false); err == nil {
		t.Fatal("a business key emitted twice by the source went unnoticed")
	}
}
