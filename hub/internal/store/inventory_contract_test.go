package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// runInventoryContract runs the inventory part of the store contract against fresh stores.
func runInventoryContract(t *testing.T, open func(t *testing.T) *DB) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, s *DB)
	}{
		{"erp stock replaces per store and keeps items when nil", func(t *testing.T, s *DB) {
			items := []MasterItem{{SKU: "B", Description: "Bee", Price: 250, TaxCode: "STD", Status: protocol.ItemActive}, {SKU: "A", Price: 100}}
			t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
			if err := s.PutERPStock(ctx, items, map[string]map[string]string{"s1": {"A": "5", "B": "1.5"}, "s2": {"A": "7"}}, t0); err != nil {
				t.Fatal(err)
			}
			// An on-hand-only pull for s1 keeps the item master and s2's stock.
			t1 := t0.Add(time.Minute)
			if err := s.PutERPStock(ctx, nil, map[string]map[string]string{"s1": {"A": "4"}}, t1); err != nil {
				t.Fatal(err)
			}
			got, err := s.ERPStock(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			wantItems := []MasterItem{{SKU: "A", Price: 100}, {SKU: "B", Description: "Bee", Price: 250, TaxCode: "STD", Status: protocol.ItemActive}}
			if !slices.Equal(got.Items, wantItems) {
				t.Errorf("items = %+v, want %+v", got.Items, wantItems)
			}
			if len(got.OnHand) != 1 || got.OnHand["A"] != "4" || !got.PulledAt.Equal(t1) {
				t.Errorf("s1 on hand = %v (pulled %v), want A=4 only, pulled %v", got.OnHand, got.PulledAt, t1)
			}
			got2, err := s.ERPStock(ctx, "s2")
			if err != nil || got2.OnHand["A"] != "7" || !got2.PulledAt.Equal(t0) {
				t.Errorf("s2 on hand = %v at %v, %v; want A=7 at %v", got2.OnHand, got2.PulledAt, err, t0)
			}
			none, err := s.ERPStock(ctx, "s9")
			if err != nil || len(none.OnHand) != 0 || !none.PulledAt.IsZero() {
				t.Errorf("unknown store stock = %+v, %v; want empty", none, err)
			}
			// A new item master replaces the old one entirely.
			if err := s.PutERPStock(ctx, []MasterItem{{SKU: "C", Price: 1}}, nil, t1); err != nil {
				t.Fatal(err)
			}
			got, _ = s.ERPStock(ctx, "s1")
			if len(got.Items) != 1 || got.Items[0].SKU != "C" {
				t.Errorf("items after replace = %+v, want only C", got.Items)
			}
		}},
		{"unposted records are pending and rejected sales and returns with progress", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			if _, err := s.UnpostedRecords(ctx, "nope", time.Time{}); !errors.Is(err, ErrNotFound) {
				t.Errorf("UnpostedRecords(unknown) = %v, want ErrNotFound", err)
			}
			u, err := s.UnpostedRecords(ctx, "s1", time.Time{})
			if err != nil || u.Epoch != "" || u.AppliedThrough != 0 || len(u.Records) != 0 {
				t.Fatalf("empty store: %+v, %v", u, err)
			}
			mustApply(t, s, "s1", "e1", []protocol.Record{
				kindRec("s1", "e1", 1, protocol.KindSale, "1", 500),
				kindRec("s1", "e1", 2, protocol.KindReturn, "2", -200),
				kindRec("s1", "e1", 3, protocol.KindNoSale, "3", 0),
				kindRec("s1", "e1", 4, protocol.KindSale, "4", 300),
			})
			ps, err := s.ClaimPostings(ctx, "me", time.Minute, 10)
			if err != nil || len(ps) != 3 {
				t.Fatalf("claim = %d postings, %v", len(ps), err)
			}
			for _, p := range ps {
				var o PostingOutcome
				switch p.Seq {
				case 1:
					o = PostingOutcome{Done: true, Ref: "x"}
				case 2:
					o = PostingOutcome{Rejected: true, Error: "no"}
				default:
					continue // seq 4 stays pending (leased)
				}
				if err := s.FinishPosting(ctx, p.ID, "me", o); err != nil {
					t.Fatal(err)
				}
			}
			// Pulled now: the posting done just before is in the ERP's on-hand.
			u, err = s.UnpostedRecords(ctx, "s1", time.Now().Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			var seqs []uint64
			for _, r := range u.Records {
				seqs = append(seqs, r.Seq)
				if len(r.Lines) != 1 || r.Lines[0].SKU != "A1" {
					t.Errorf("record %d lines = %+v", r.Seq, r.Lines)
				}
			}
			if u.Epoch != "e1" || u.AppliedThrough != 4 || !slices.Equal(seqs, []uint64{2, 4}) {
				t.Errorf("unposted = epoch %q through %d seqs %v, want e1 4 [2 4]", u.Epoch, u.AppliedThrough, seqs)
			}
			// On-hand pulled before the posting was done does not reflect it: it counts.
			u, err = s.UnpostedRecords(ctx, "s1", time.Now().Add(-time.Hour))
			if err != nil || len(u.Records) != 3 {
				t.Errorf("unposted with an old pull = %d records, %v; want 3", len(u.Records), err)
			}
			// A new epoch is the current stream; unposted records of the old one still count.
			mustApply(t, s, "s1", "e2", []protocol.Record{kindRec("s1", "e2", 1, protocol.KindSale, "9", 100)})
			u, _ = s.UnpostedRecords(ctx, "s1", time.Now().Add(time.Second))
			if u.Epoch != "e2" || u.AppliedThrough != 1 || len(u.Records) != 3 {
				t.Errorf("after new epoch: %q %d %d records, want e2 1 3", u.Epoch, u.AppliedThrough, len(u.Records))
			}
		}},
		{"save inventory is a compare-and-set on the version", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			st, items, err := s.InventoryItems(ctx, "s1")
			if err != nil || st.Version != 0 || len(items) != 0 {
				t.Fatalf("fresh: %+v %v %v", st, items, err)
			}
			a := protocol.Item{SKU: "A", Price: 100, Status: "active", OnHand: "5", Available: "4"}
			b := protocol.Item{SKU: "B", Description: "Bee", Price: 200, OnHand: "1", Available: "1"}
			if err := s.SaveInventory(ctx, "s1", 0, InventoryState{Version: 1, Epoch: "e1", AppliedThrough: 7}, []protocol.Item{b, a}, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveInventory(ctx, "s1", 0, InventoryState{Version: 2}, nil, nil); !errors.Is(err, ErrVersionConflict) {
				t.Errorf("save on stale base = %v, want ErrVersionConflict", err)
			}
			if err := s.SaveInventory(ctx, "s1", 1, InventoryState{Version: 1}, nil, nil); err == nil {
				t.Errorf("save of a version not above base succeeded")
			}
			a2 := a
			a2.Available = "3"
			c := protocol.Item{SKU: "C", OnHand: "0", Available: "-1"}
			if err := s.SaveInventory(ctx, "s1", 1, InventoryState{Version: 5, Epoch: "e1", AppliedThrough: 9}, []protocol.Item{a2, c}, []string{"B"}); err != nil {
				t.Fatal(err)
			}
			st, items, err = s.InventoryItems(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != 5 || st.Epoch != "e1" || st.AppliedThrough != 9 || st.Items != 2 || st.UpdatedAt.IsZero() {
				t.Errorf("state = %+v", st)
			}
			if !slices.Equal(items, []protocol.Item{a2, c}) {
				t.Errorf("items = %+v, want %+v", items, []protocol.Item{a2, c})
			}
			vs, err := s.InventoryVersions(ctx)
			if err != nil || vs["s1"].Version != 5 || len(vs) != 1 {
				t.Errorf("versions = %v, %v", vs, err)
			}
		}},
		{"large snapshot round trip", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			const n = 3000
			items := make([]protocol.Item, n)
			master := make([]MasterItem, n)
			onHand := map[string]string{}
			for i := range items {
				sku := fmt.Sprintf("SKU%06d", i)
				items[i] = protocol.Item{SKU: sku, Price: int64(i), OnHand: "1", Available: "1"}
				master[i] = MasterItem{SKU: sku, Price: int64(i)}
				onHand[sku] = "1"
			}
			if err := s.PutERPStock(ctx, master, map[string]map[string]string{"s1": onHand}, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveInventory(ctx, "s1", 0, InventoryState{Version: 1}, items, nil); err != nil {
				t.Fatal(err)
			}
			st, got, err := s.InventoryItems(ctx, "s1")
			if err != nil || st.Items != n || len(got) != n {
				t.Fatalf("got %d items (state %+v), %v", len(got), st, err)
			}
			es, err := s.ERPStock(ctx, "s1")
			if err != nil || len(es.Items) != n || len(es.OnHand) != n {
				t.Fatalf("erp stock %d items %d on hand, %v", len(es.Items), len(es.OnHand), err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

func TestSQLiteInventoryContract(t *testing.T) {
	runInventoryContract(t, func(t *testing.T) *DB {
		return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db"))
	})
}

func TestPostgresInventoryContract(t *testing.T) {
	runInventoryContract(t, func(t *testing.T) *DB {
		return openPostgresT(t, pgSchema(t))
	})
}

// With postings off (erp.kind none) records are stored and nothing is enqueued.
func TestPostingSwitch(t *testing.T) {
	ctx := context.Background()
	for name, open := range map[string]func(t *testing.T) *DB{
		"sqlite":   func(t *testing.T) *DB { return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")) },
		"postgres": func(t *testing.T) *DB { return openPostgresT(t, pgSchema(t)) },
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			mustAddStore(t, s, "s1")
			s.SetPostings(false)
			mustApply(t, s, "s1", "e1", []protocol.Record{kindRec("s1", "e1", 1, protocol.KindSale, "1", 500)})
			if ps, err := s.Postings(ctx, PostingFilter{}); err != nil || len(ps) != 0 {
				t.Fatalf("postings with postings off = %d, %v", len(ps), err)
			}
			s.SetPostings(true)
			mustApply(t, s, "s1", "e1", []protocol.Record{kindRec("s1", "e1", 2, protocol.KindSale, "2", 500)})
			if ps, err := s.Postings(ctx, PostingFilter{}); err != nil || len(ps) != 1 {
				t.Fatalf("postings with postings on = %d, %v; want 1", len(ps), err)
			}
		})
	}
}

// Two replicas saving a store's first inventory version at once: exactly one wins, the other
// gets ErrVersionConflict (never a duplicate-key error, never both).
func TestPostgresFirstInventorySaveRace(t *testing.T) {
	schema := pgSchema(t)
	a, b := openPostgresT(t, schema), openPostgresT(t, schema)
	const stores = 40
	for i := range stores {
		mustAddStore(t, a, fmt.Sprintf("s%d", i))
	}
	for i := range stores {
		id := fmt.Sprintf("s%d", i)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for j, s := range []*DB{a, b} {
			wg.Go(func() {
				errs[j] = s.SaveInventory(context.Background(), id, 0, InventoryState{Version: 1, Epoch: "e1"},
					[]protocol.Item{{SKU: "A", OnHand: "1", Available: "1"}, {SKU: fmt.Sprint("B", j), OnHand: "2", Available: "2"}}, nil)
			})
		}
		wg.Wait()
		ok, conflicts := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrVersionConflict):
				conflicts++
			default:
				t.Fatalf("store %s: SaveInventory error %v; want nil or ErrVersionConflict", id, err)
			}
		}
		if ok != 1 || conflicts != 1 {
			t.Fatalf("store %s: %d saves and %d conflicts; want one of each", id, ok, conflicts)
		}
		if st, items, err := a.InventoryItems(context.Background(), id); err != nil || st.Version != 1 || len(items) != 2 {
			t.Fatalf("store %s: inventory %+v %+v, %v; want version 1 with one replica's 2 items", id, st, items, err)
		}
	}
}
