package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// fixtureStore is what fillFixture needs; the store of 7f0d5c0 had the same methods.
type fixtureStore interface {
	AddStore(ctx context.Context, id, passwordHash string) error
	ApplyBatch(ctx context.Context, store, epoch string, recs []protocol.Record) (ApplyResult, error)
	PutStatus(ctx context.Context, st protocol.Status, at time.Time) error
	ClaimPostings(ctx context.Context, owner string, lease time.Duration, limit int) ([]Posting, error)
	FinishPosting(ctx context.Context, id int64, owner string, o PostingOutcome) error
	RaiseException(ctx context.Context, e Exception) (bool, error)
	AddCommand(ctx context.Context, store string, c protocol.Command) error
	PutCommandResult(ctx context.Context, store string, r protocol.CommandResult) (bool, error)
	PutClose(ctx context.Context, c CloseRecord) error
	PutERPStock(ctx context.Context, items []MasterItem, onHand map[string]map[string]string, pulledAt time.Time) error
	SaveInventory(ctx context.Context, store string, base uint64, st InventoryState, changed []protocol.Item, removed []string) error
}

var fixtureItems = []protocol.Item{
	{SKU: "A1", Description: "Apples", Price: 120, OnHand: "5", Available: "4"},
	{SKU: "B2", Description: "Bread", Price: 250, OnHand: "2.5", Available: "2.5"},
}

// fillFixture writes one of everything the store keeps.
func fillFixture(t *testing.T, s fixtureStore) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddStore(ctx, "s1", "hash-of-s1"))
	must(s.AddStore(ctx, "s2", "hash-of-s2"))
	batch := []protocol.Record{
		kindRec("s1", "e1", 1, protocol.KindSale, "1", 100),
		kindRec("s1", "e1", 2, protocol.KindSale, "2", 200),
		kindRec("s1", "e1", 3, protocol.KindSale, "4", 400),
		kindRec("s1", "e1", 4, protocol.KindReturn, "5", -100),
		kindRec("s1", "e1", 5, protocol.KindVoid, "6", 0),
	}
	if _, err := s.ApplyBatch(ctx, "s1", "e1", batch); err != nil {
		t.Fatal(err)
	}
	must(s.PutStatus(ctx, protocol.Status{V: 1, Store: "s1", State: "online", Epoch: "e1", LastSeq: 5, Backlog: 2}, time.Now()))
	ps, err := s.ClaimPostings(ctx, "o1", time.Millisecond, 10) // the lease of the one left unfinished has run out
	if err != nil || len(ps) != 4 {
		t.Fatalf("claim = %d, %v; want 4", len(ps), err)
	}
	must(s.FinishPosting(ctx, ps[0].ID, "o1", PostingOutcome{Done: true, Ref: "SO-1"}))
	must(s.FinishPosting(ctx, ps[1].ID, "o1", PostingOutcome{Rejected: true, Error: "unknown sku"}))
	must(s.FinishPosting(ctx, ps[2].ID, "o1", PostingOutcome{Error: "timeout", RetryAt: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}))
	if _, err := s.RaiseException(ctx, Exception{Store: "s1", Reason: ReasonSpoolAlarm, Key: "disk", Detail: "spool 90% full"}); err != nil {
		t.Fatal(err)
	}
	must(s.AddCommand(ctx, "s1", protocol.Command{V: 1, ID: "c1", Type: "replay", Terminal: "T1", FromReceipt: 3, ToReceipt: 3}))
	must(s.AddCommand(ctx, "s1", protocol.Command{V: 1, ID: "c2", Type: "replay", Terminal: "T1", FromReceipt: 9, ToReceipt: 9}))
	if _, err := s.PutCommandResult(ctx, "s1", protocol.CommandResult{ID: "c1", OK: true, Detail: "none found", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	must(s.PutClose(ctx, CloseRecord{Store: "s1", BusinessDate: testDate, State: "exceptions", Body: []byte(`{"state":"exceptions"}`)}))
	must(s.PutERPStock(ctx, []MasterItem{{SKU: "A1", Description: "Apples", Price: 120}, {SKU: "B2", Description: "Bread", Price: 250}},
		map[string]map[string]string{"s1": {"A1": "5", "B2": "2.5"}}, time.Now()))
	must(s.SaveInventory(ctx, "s1", 0, InventoryState{Version: 1, Epoch: "e1", AppliedThrough: 5}, fixtureItems, nil))
}

// TestWriteFixture writes a fixture database (see the top of this file); it runs only when
// LANEBRIDGE_WRITE_FIXTURE names a directory.
func TestWriteFixture(t *testing.T) {
	dir := os.Getenv("LANEBRIDGE_WRITE_FIXTURE")
	if dir == "" {
		t.Skip("LANEBRIDGE_WRITE_FIXTURE not set")
	}
	s, err := OpenSQLite(context.Background(), filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	fillFixture(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := OpenPostgresSchema(context.Background(), pgURL(), "lbfixture")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fillFixture(t, p)
}
