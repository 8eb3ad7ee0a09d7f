package store

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

func availEngines(t *testing.T, fn func(t *testing.T, s *DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db"))) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgresT(t, pgSchema(t))) })
}

// inputs is every SKU's rows, without versions.
func inputs(t *testing.T, s *DB) map[string][]AvailRow {
	t.Helper()
	as, _, err := s.AvailabilitySince(context.Background(), 0, nil, 100000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]AvailRow{}
	for _, a := range as {
		out[a.SKU] = a.Stores
	}
	return out
}

func saleOf(store string, seq uint64, sku, q string) protocol.Record {
	r := rec(store, "e1", seq)
	r.Lines[0].SKU, r.Lines[0].Quantity = sku, q
	return sealed(r)
}

// TestAvailabilityRebuildMatchesIncremental: the inputs kept incrementally equal the ones
// computed from scratch from the stored on-hand, postings and reservations (migration 14's
// backfill), after sales, returns, postings done before and after a pull, a reservation and a
// fulfilled one.
func TestAvailabilityRebuildMatchesIncremental(t *testing.T) {
	availEngines(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		mustAddStore(t, s, "s1")
		mustAddStore(t, s, "s2")
		items := []MasterItem{{SKU: "A1", Price: 100, Status: protocol.ItemActive}, {SKU: "B2", Price: 50, Status: protocol.ItemActive}}
		if err := s.PutERPStock(ctx, items, map[string]map[string]string{"s1": {"A1": "10", "B2": "3"}, "s2": {"A1": "4"}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		mustApply(t, s, "s1", "e1", []protocol.Record{saleOf("s1", 1, "A1", "2"), saleOf("s1", 2, "B2", "1.5")})
		mustApply(t, s, "s2", "e1", []protocol.Record{saleOf("s2", 1, "A1", "-1")})
		finish := func(n int) {
			ps, err := s.ClaimPostings(ctx, "t", time.Minute, n)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if err := s.FinishPosting(ctx, p.ID, "t", PostingOutcome{Done: true, Ref: "r"}); err != nil {
					t.Fatal(err)
				}
			}
		}
		finish(2)
		time.Sleep(2 * time.Millisecond)
		if err := s.PutERPStock(ctx, nil, map[string]map[string]string{"s1": {"A1": "8", "B2": "1.5"}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		finish(1) // posted after s2's pull: still unposted for it
		mustApply(t, s, "s1", "e1", []protocol.Record{saleOf("s1", 3, "A1", "1")})
		plan := func(store string) ReservePlan {
			return func(map[string]AvailSKU) ([]ReservationLine, error) {
				return []ReservationLine{{SKU: "A1", Quantity: "2", Store: store}}, nil
			}
		}
		if _, _, err := s.Reserve(ctx, "web", "o1", "h1", []string{"A1"}, plan("s1")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Reserve(ctx, "web", "o2", "h2", []string{"A1"}, plan("s2")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.FulfilReservation(ctx, "web", "o2", func(v Reservation) ([]protocol.Record, error) {
			r := protocol.Record{Kind: protocol.KindSale, Store: "s2", Terminal: "web", Receipt: "o2", BusinessDate: testDate, Epoch: "channel:web", Seq: 1,
				Lines: []protocol.Line{{SKU: "A1", Quantity: "2", UnitPrice: 100, Amount: 200}}, Total: 200}
			return []protocol.Record{sealed(r)}, nil
		}); err != nil {
			t.Fatal(err)
		}
		before := inputs(t, s)
		want := map[string][]AvailRow{
			"A1": {{Store: "s1", OnHand: 8e6, Unposted: 1e6, Reserved: 2e6}, {Store: "s2", OnHand: 4e6, Unposted: 1e6}},
			"B2": {{Store: "s1", OnHand: 1.5e6}},
		}
		if !reflect.DeepEqual(before, want) {
			t.Errorf("incremental inputs = %+v, want %+v", before, want)
		}
		if err := s.write(ctx, func(tx tx) error {
			for _, tbl := range []string{"avail_stock", "avail_pending", "avail_skus"} {
				if _, err := tx.exec(ctx, `DELETE FROM `+tbl); err != nil {
					return err
				}
			}
			return s.rebuildAvailability(ctx, tx)
		}); err != nil {
			t.Fatal(err)
		}
		if after := inputs(t, s); !reflect.DeepEqual(after, before) {
			t.Errorf("rebuilt inputs = %+v, incremental %+v", after, before)
		}
	})
}

// TestAvailabilityVersionsNeverSkipped: writers of different stores and SKUs commit
// concurrently while a reader follows since_version; at the end the reader has seen every
// SKU's final inputs (a version that became visible after a higher one would be skipped).
func TestAvailabilityVersionsNeverSkipped(t *testing.T) {
	availEngines(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		const writers, each = 4, 25
		for w := range writers {
			mustAddStore(t, s, fmt.Sprintf("s%d", w))
		}
		var wg sync.WaitGroup
		done := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := fmt.Sprintf("s%d", w)
				for i := 1; i <= each; i++ {
					// each record touches its store's own SKU and a SKU of its own per step
					r := rec(st, "e1", uint64(i))
					r.Lines = []protocol.Line{{SKU: fmt.Sprintf("K%d-%d", w, i%5), Quantity: "1", UnitPrice: 100, Amount: 100}}
					if _, err := s.ApplyBatch(ctx, st, "e1", []protocol.Record{sealed(r)}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		go func() { wg.Wait(); close(done) }()
		seen := map[string][]AvailRow{}
		var cursor int64
		poll := func() {
			as, cur, err := s.AvailabilitySince(ctx, cursor, nil, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range as {
				seen[a.SKU] = a.Stores
			}
			if len(as) == 7 {
				cur = as[len(as)-1].Version
			}
			cursor = cur
		}
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			default:
			}
			poll()
		}
		for range 50 { // drain what is left after the last writer
			poll()
		}
		if final := inputs(t, s); !reflect.DeepEqual(seen, final) {
			t.Errorf("following since_version saw %d SKUs %+v, final %+v", len(seen), seen, final)
		}
	})
}

// TestAvailabilityConcurrentChangesNoDeadlock: applies, pulls and reservations touching the
// same stores and SKUs in different orders run together without a deadlock or a lost update
// (rows are locked in (sku, store) order and the version counter last).
func TestAvailabilityConcurrentChangesNoDeadlock(t *testing.T) {
	availEngines(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		stores, skus := []string{"s0", "s1", "s2", "s3"}, []string{"K0", "K1", "K2", "K3"}
		for _, st := range stores {
			mustAddStore(t, s, st)
		}
		oh := map[string]map[string]string{}
		for _, st := range stores {
			oh[st] = map[string]string{}
			for _, k := range skus {
				oh[st][k] = "100"
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		run := func(fn func(i int) error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					if err := fn(i); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		for w, st := range stores {
			run(func(i int) error {
				r := rec(st, "e1", uint64(i+1))
				r.Lines = []protocol.Line{{SKU: skus[(i+w)%4], Quantity: "1"}, {SKU: skus[(i+w+2)%4], Quantity: "1"}}
				_, err := s.ApplyBatch(ctx, st, "e1", []protocol.Record{sealed(r)})
				return err
			})
		}
		run(func(int) error { return s.PutERPStock(ctx, nil, oh, time.Now()) })
		for w := range 2 {
			run(func(i int) error {
				// lines in descending order of store, each reservation crossing stores and SKUs
				lines := []ReservationLine{{SKU: skus[(i+w)%4], Quantity: "1", Store: stores[3-(i%4)]}, {SKU: skus[(i+w+1)%4], Quantity: "1", Store: stores[i%4]}}
				_, _, err := s.Reserve(ctx, "web", fmt.Sprintf("o%d-%d", w, i), "h", nil, func(map[string]AvailSKU) ([]ReservationLine, error) { return lines, nil })
				return err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// Every reserved unit is counted: 2 reservers × 20 orders × 2 lines.
		var reserved protocol.Qty
		for _, rows := range inputs(t, s) {
			for _, r := range rows {
				reserved += r.Reserved
			}
		}
		if reserved != 80e6 {
			t.Errorf("reserved %s, want 80", reserved)
		}
	})
}
