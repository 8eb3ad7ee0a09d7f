package inventory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

func TestQty(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"2", "2"}, {"-1", "-1"}, {"0.456", "0.456"}, {"1.500000", "1.5"}, {"-0.000001", "-0.000001"},
		{"", "0"}, {"000012", "12"}, {"999999999999.999999", "999999999999.999999"},
	}
	for _, tt := range tests {
		q, err := ParseQty(tt.in)
		if err != nil || q.String() != tt.want {
			t.Errorf("ParseQty(%q) = %s, %v, want %s", tt.in, q, err, tt.want)
		}
	}
	for _, bad := range []string{"1e3", "1.2345678", "abc", "1.", "+1", "0.1.2"} {
		if _, err := ParseQty(bad); err == nil {
			t.Errorf("ParseQty(%q) succeeded, want error", bad)
		}
	}
	a, _ := ParseQty("0.1")
	b, _ := ParseQty("0.2")
	if s, _ := a.Add(b); s.String() != "0.3" { // the float classic
		t.Errorf("0.1+0.2 = %s", s)
	}
	big, _ := ParseQty("999999999999")
	var sum Qty
	var err error
	for range 10 {
		if sum, err = sum.Add(big); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrOverflow) {
		t.Errorf("10 × 999999999999 = %s, %v; want ErrOverflow", sum, err)
	}
}

func openDB(t testing.TB) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "inventory.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func item(sku, avail string) protocol.Item {
	return protocol.Item{SKU: sku, Description: "item " + sku, Price: 199, Status: protocol.ItemActive, OnHand: avail, Available: avail}
}

func snapshot(v uint64, items ...protocol.Item) *protocol.Inventory {
	return &protocol.Inventory{V: 1, Store: "S1", Kind: protocol.InventorySnapshot, Version: v, Items: items}
}

func delta(base, v uint64, removed []string, items ...protocol.Item) *protocol.Inventory {
	return &protocol.Inventory{V: 1, Store: "S1", Kind: protocol.InventoryDelta, BaseVersion: base, Version: v, Items: items, Removed: removed}
}

// state returns "sku=available" for every item, in SKU order.
func state(t *testing.T, db *DB) (uint64, string) {
	t.Helper()
	var parts []string
	m, err := db.ForEach(func(it protocol.Item) error {
		parts = append(parts, it.SKU+"="+it.Available)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Items != len(parts) {
		t.Errorf("meta says %d items, bucket holds %d", m.Items, len(parts))
	}
	return m.Version, strings.Join(parts, " ")
}

func TestApply(t *testing.T) {
	type step struct {
		msg         *protocol.Inventory
		want        Outcome
		wantVersion uint64
		wantState   string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"snapshot", []step{
			{snapshot(3, item("B", "2"), item("A", "1")), Applied, 3, "A=1 B=2"},
		}},
		{"snapshot replaces all", []step{
			{snapshot(1, item("A", "1"), item("B", "2")), Applied, 1, "A=1 B=2"},
			{snapshot(2, item("C", "3")), Applied, 2, "C=3"},
		}},
		{"deltas in order", []step{
			{snapshot(1, item("A", "1"), item("B", "2")), Applied, 1, "A=1 B=2"},
			{delta(1, 2, nil, item("A", "5")), Applied, 2, "A=5 B=2"},
			{delta(2, 3, []string{"B"}, item("C", "0.5")), Applied, 3, "A=5 C=0.5"},
			{delta(3, 4, []string{"nope"}), Applied, 4, "A=5 C=0.5"},
		}},
		{"delta on wrong base ignored", []step{
			{snapshot(1, item("A", "1")), Applied, 1, "A=1"},
			{delta(2, 3, nil, item("A", "9")), IgnoredBase, 1, "A=1"},
			{delta(1, 2, nil, item("A", "2")), Applied, 2, "A=2"},
			{delta(1, 2, nil, item("A", "7")), IgnoredBase, 2, "A=2"}, // repeated delivery
		}},
		{"delta before any snapshot ignored", []step{
			{delta(1, 2, nil, item("A", "1")), IgnoredBase, 0, ""},
		}},
		{"stale snapshot ignored", []step{
			{snapshot(5, item("A", "5")), Applied, 5, "A=5"},
			{snapshot(4, item("A", "4")), IgnoredStale, 5, "A=5"},
			{snapshot(5, item("A", "4")), IgnoredStale, 5, "A=5"},
		}},
		{"duplicate skus: last wins", []step{
			{snapshot(1, item("A", "1"), item("A", "2")), Applied, 1, "A=2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t)
			for i, s := range tt.steps {
				got, _, err := db.Apply(s.msg)
				if err != nil || got != s.want {
					t.Fatalf("step %d: Apply = %v, %v, want %v", i, got, err, s.want)
				}
				v, st := state(t, db)
				if v != s.wantVersion || st != s.wantState {
					t.Fatalf("step %d: version %d, items %q; want %d, %q", i, v, st, s.wantVersion, s.wantState)
				}
			}
		})
	}
}

// TestOfflineThrough500Deltas: an agent that missed 500 deltas ignores the next one, reports its
// version, and catches up with one snapshot.
func TestOfflineThrough500Deltas(t *testing.T) {
	db := openDB(t)
	s, err := New(db, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := s.Apply(snapshot(1, item("A", "100"), item("B", "100"))); out != Applied {
		t.Fatalf("first snapshot: %v", out)
	}
	// Hub side: 500 deltas the agent never sees (offline), each selling one A.
	hub := map[string]string{"A": "100", "B": "100"}
	for v := uint64(2); v <= 501; v++ {
		hub["A"] = fmt.Sprint(100 - (v - 1))
	}
	// Back online: the next delta is on base 501, the agent is at 1.
	if out, _ := s.Apply(delta(501, 502, nil, item("B", "99"))); out != IgnoredBase {
		t.Fatalf("delta after outage: %v, want IgnoredBase", out)
	}
	if s.Version() != 1 {
		t.Fatalf("reported version %d, want 1", s.Version())
	}
	hub["B"] = "99"
	// The hub sees version 1 in the status and sends one snapshot.
	if out, _ := s.Apply(snapshot(502, item("A", hub["A"]), item("B", hub["B"]))); out != Applied {
		t.Fatalf("catch-up snapshot: %v", out)
	}
	if out, _ := s.Apply(delta(502, 503, nil, item("A", "0"))); out != Applied {
		t.Fatalf("delta after snapshot: %v", out)
	}
	if v, st := state(t, db); v != 503 || st != "A=0 B=99" {
		t.Fatalf("after catch-up: v%d %s", v, st)
	}
	if s.C.Applied.Load() != 3 || s.C.IgnoredBase.Load() != 1 {
		t.Fatalf("counters applied=%d ignored=%d", s.C.Applied.Load(), s.C.IgnoredBase.Load())
	}
}

func openSpool(t *testing.T) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{Store: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

type ln struct {
	sku, qty string
	voided   bool
}

func capture(t *testing.T, sp *spool.Spool, kind protocol.Kind, lines ...ln) uint64 {
	t.Helper()
	r := protocol.Record{Kind: kind, Terminal: "T1", BusinessDate: "2026-11-27"}
	for _, l := range lines {
		r.Lines = append(r.Lines, protocol.Line{SKU: l.sku, Quantity: l.qty, Voided: l.voided})
	}
	recs, err := sp.Commit(context.Background(), spool.Capture{Source: "T1", Records: []protocol.Record{r}})
	if err != nil {
		t.Fatal(err)
	}
	return recs[0].Seq
}

func TestOverlay(t *testing.T) {
	sp := openSpool(t)
	db := openDB(t)
	ep := sp.Epoch()
	// Captured before the service starts: seq 1 and 2.
	capture(t, sp, protocol.KindSale, ln{"A", "1", false})   // seq 1
	capture(t, sp, protocol.KindSale, ln{"A", "2.5", false}) // seq 2
	s, err := New(db, sp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("A"); !errors.Is(err, ErrNoItemMaster) {
		t.Fatalf("lookup before any snapshot: %v, want ErrNoItemMaster", err)
	}
	// The hub's figures account for seq 1 only.
	snap := snapshot(1, item("A", "10"), item("B", "4"))
	snap.Epoch, snap.AppliedThrough = ep, 1
	if _, err := s.Apply(snap); err != nil {
		t.Fatal(err)
	}
	check := func(step, sku, want string) {
		t.Helper()
		v, err := s.Lookup(sku)
		if err != nil {
			t.Fatalf("%s: Lookup(%s): %v", step, sku, err)
		}
		if v.Available != want {
			t.Fatalf("%s: available(%s) = %s (hub %s, local %s), want %s", step, sku, v.Available, v.HubAvailable, v.LocalSold, want)
		}
	}
	check("after snapshot", "A", "7.5") // 10 − 2.5 (seq 2)
	check("after snapshot", "B", "4")

	capture(t, sp, protocol.KindSale, ln{"A", "1", false}, ln{"B", "1", true}, ln{"B", "0.25", false}) // seq 3
	capture(t, sp, protocol.KindReturn, ln{"A", "-2", false})                                          // seq 4
	capture(t, sp, protocol.KindVoid, ln{"A", "5", false})                                             // seq 5: moves no stock
	capture(t, sp, protocol.KindNoSale)                                                                // seq 6
	check("after sales and a return", "A", "8.5")                                                      // 10 − 2.5 − 1 + 2
	check("after sales and a return", "B", "3.75")

	// A new version whose figures account for everything through seq 4 resets the base.
	d := delta(1, 2, nil, item("A", "8.5"))
	d.Epoch, d.AppliedThrough = ep, 4
	if _, err := s.Apply(d); err != nil {
		t.Fatal(err)
	}
	check("after new version", "A", "8.5")
	check("after new version", "B", "4")                     // B's hub figure is still v1's 4, seq 3 is now counted by the hub
	capture(t, sp, protocol.KindSale, ln{"A", "0.5", false}) // seq 7
	check("after new version", "A", "8")

	// Figures of another epoch (the spool was recreated): every record of ours counts.
	other := snapshot(3, item("A", "20"))
	other.Epoch, other.AppliedThrough = "0123456789abcdef0123456789abcdef", 100
	if _, err := s.Apply(other); err != nil {
		t.Fatal(err)
	}
	check("other epoch", "A", "17") // 20 − (1 + 2.5 + 1 − 2 + 0.5)

	// A restart rebuilds the same overlay from the spool; so does a read-only lookup.
	s2, err := New(db, sp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s2.Lookup("A"); err != nil || v.Available != "17" {
		t.Fatalf("after restart: %+v, %v", v, err)
	}
	if v, err := LookupOnce(db, sp, "A"); err != nil || v.Available != "17" || v.Version != 3 {
		t.Fatalf("LookupOnce: %+v, %v", v, err)
	}
	if _, err := s.Lookup("ZZZ"); !errors.Is(err, ErrUnknownSKU) {
		t.Fatalf("unknown sku: %v", err)
	}
}

func TestPLUFile(t *testing.T) {
	sp := openSpool(t)
	db := openDB(t)
	path := filepath.Join(t.TempDir(), "plu.csv")
	s, err := New(db, sp, Options{PLU: &PLUFile{Path: path, Format: "csv", Columns: []string{"sku", "description", "price_major", "available"}, Comma: ';', Header: true}})
	if err != nil {
		t.Fatal(err)
	}
	capture(t, sp, protocol.KindSale, ln{"A", "1", false})
	off := item("C", "1")
	off.Status = protocol.ItemInactive
	semi := item("B", "3")
	semi.Description, semi.Price = `Soap; "lavender"`, 5
	if _, err := s.Apply(snapshot(1, item("A", "10"), semi, off)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "sku;description;price_major;available\nA;item A;1.99;9\nB;\"Soap; \"\"lavender\"\"\";0.05;3\n"
	if string(b) != want {
		t.Fatalf("PLU file:\n%s\nwant:\n%s", b, want)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".plu.csv.tmp-*")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Apply(snapshot(7, item("A", "1"))); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, _ := os.ReadFile(path)
	for i := 0; i < 2*4096 && i < len(b); i++ { // both meta pages
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := db.Meta()
	if m.Version != 0 || len(db.Alarms()) != 1 {
		t.Fatalf("after corruption: version %d alarms %v; want 0 and one alarm", m.Version, db.Alarms())
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt file not kept: %v", aside)
	}
	// After a restart the corrupt file still lies there: it stays an alarm until removed.
	db.Close()
	for _, tt := range []struct {
		name   string
		remove bool
		alarms int
	}{{"restart", false, 1}, {"after removal", true, 0}} {
		if tt.remove {
			if err := os.Remove(aside[0]); err != nil {
				t.Fatal(err)
			}
		}
		db, err = Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		al := db.Alarms()
		db.Close()
		if len(al) != tt.alarms || (tt.alarms == 1 && !strings.Contains(al[0], aside[0])) {
			t.Errorf("%s: alarms %v, want %d naming %s", tt.name, al, tt.alarms, aside[0])
		}
	}
}

func TestReadOnlyWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := OpenReadOnly(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenReadOnly while held: %v, want ErrLocked", err)
	}
}

// TestReorderedDeltas: deliveries may overtake each other; a delta that arrives before the one
// it builds on is kept and applied once its base is there.
func TestReorderedDeltas(t *testing.T) {
	s, err := New(openDB(t), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		msg  *protocol.Inventory
		want Outcome
		v    uint64
	}{
		{delta(1, 2, nil, item("A", "2")), IgnoredBase, 0}, // before the snapshot
		{delta(3, 4, nil, item("A", "4")), IgnoredBase, 0},
		{snapshot(1, item("A", "1")), Applied, 2},          // 1, then parked 1→2
		{delta(2, 3, nil, item("A", "3")), Applied, 4},     // 3, then parked 3→4
		{delta(2, 3, nil, item("A", "9")), IgnoredBase, 4}, // late repeat: not parked
		{snapshot(4, item("A", "0")), IgnoredStale, 4},
	}
	for i, st := range steps {
		out, err := s.Apply(st.msg)
		if err != nil || out != st.want || s.Version() != st.v {
			t.Fatalf("step %d: %v, %v, version %d; want %v, version %d", i, out, err, s.Version(), st.want, st.v)
		}
	}
	if v, err := s.Lookup("A"); err != nil || v.Available != "4" {
		t.Fatalf("Lookup = %+v, %v", v, err)
	}
	if len(s.parked) != 0 {
		t.Fatalf("parked left: %v", s.parked)
	}
}
