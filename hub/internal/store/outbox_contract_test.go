package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// kindRec builds a sealed record of kind with receipt r on terminal T1.
func kindRec(store, epoch string, seq uint64, kind protocol.Kind, receipt string, total int64) protocol.Record {
	return sealed(protocol.Record{
		Kind: kind, Store: store, Terminal: "T1", Receipt: receipt, BusinessDate: testDate, Total: total,
		Epoch: epoch, Seq: seq,
		Lines: []protocol.Line{{SKU: "A1", Quantity: "1", UnitPrice: total, Amount: total}},
	})
}

func postingStates(t *testing.T, s *DB, f PostingFilter) map[string]string {
	t.Helper()
	ps, err := s.Postings(context.Background(), f)
	if err != nil {
		t.Fatalf("Postings(%+v): %v", f, err)
	}
	out := map[string]string{}
	for _, p := range ps {
		if _, dup := out[p.Key]; dup {
			t.Fatalf("posting key %s listed twice", p.Key)
		}
		out[p.Key] = p.State
	}
	return out
}

// runOutboxContract runs the outbox, replay, command and close contract against fresh stores.
// deleteRecords removes stored records behind the store's back (what an operator or a broken
// disk might do), for the replay cases.
func runOutboxContract(t *testing.T, open func(t *testing.T) *DB, deleteRecords func(t *testing.T, s *DB, store, epoch string, from, to uint64)) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, s *DB)
	}{
		{"enqueue once per business key", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			b := []protocol.Record{
				kindRec("s1", "e1", 1, protocol.KindSale, "1", 500),
				kindRec("s1", "e1", 2, protocol.KindReturn, "2", -200),
				kindRec("s1", "e1", 3, protocol.KindVoid, "3", 0),
				kindRec("s1", "e1", 4, protocol.KindNoSale, "4", 0),
				kindRec("s1", "e1", 5, protocol.KindPaidOut, "5", -100),
			}
			mustApply(t, s, "s1", "e1", b)
			mustApply(t, s, "s1", "e1", b) // a resend
			want := map[string]string{"s1|T1|" + testDate + "|1|sale": PostingPending, "s1|T1|" + testDate + "|2|return": PostingPending}
			if got := postingStates(t, s, PostingFilter{Store: "s1"}); !mapsEqual(got, want) {
				t.Fatalf("postings = %v, want %v", got, want)
			}
			// The same receipts captured again in a new epoch (same content): nothing new, no alarm.
			again := []protocol.Record{kindRec("s1", "e2", 1, protocol.KindSale, "1", 500), kindRec("s1", "e2", 2, protocol.KindReturn, "2", -200)}
			mustApply(t, s, "s1", "e2", again)
			if got := postingStates(t, s, PostingFilter{}); len(got) != 2 {
				t.Fatalf("postings after re-capture = %v, want 2", got)
			}
			// The same key with other content: one duplicate_receipt exception, first posting kept.
			other := []protocol.Record{kindRec("s1", "e2", 3, protocol.KindSale, "1", 999)}
			mustApply(t, s, "s1", "e2", other)
			mustApply(t, s, "s1", "e2", other)
			ex, err := s.Exceptions(ctx, ExceptionFilter{Reason: ReasonDuplicateReceipt})
			if err != nil || len(ex) != 1 || ex[0].Store != "s1" {
				t.Fatalf("duplicate_receipt exceptions = %+v, %v; want one", ex, err)
			}
			ps, _ := s.Postings(ctx, PostingFilter{Key: "s1|T1|" + testDate + "|1|sale"})
			if len(ps) != 1 || ps[0].Total != 500 || ps[0].Epoch != "e1" || ps[0].Seq != 1 {
				t.Fatalf("posting of receipt 1 = %+v, want the first capture", ps)
			}
			// Both captures of a receipt in one batch: the first is queued, the second raises.
			twice := []protocol.Record{kindRec("s1", "e2", 4, protocol.KindSale, "8", 800), kindRec("s1", "e2", 5, protocol.KindSale, "8", 801)}
			mustApply(t, s, "s1", "e2", twice)
			ex, err = s.Exceptions(ctx, ExceptionFilter{Reason: ReasonDuplicateReceipt})
			if err != nil || len(ex) != 2 || !strings.Contains(ex[0].Detail, "receipt 8") {
				t.Fatalf("duplicate_receipt exceptions = %+v, %v; want one more, for receipt 8", ex, err)
			}
			if ps, _ := s.Postings(ctx, PostingFilter{Key: "s1|T1|" + testDate + "|8|sale"}); len(ps) != 1 || ps[0].Total != 800 {
				t.Fatalf("posting of receipt 8 = %+v, want the first capture", ps)
			}
		}},
		{"claim, lease and outcomes", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			var b []protocol.Record
			for i := uint64(1); i <= 5; i++ {
				b = append(b, kindRec("s1", "e1", i, protocol.KindSale, strconv.FormatUint(i, 10), int64(i*100)))
			}
			mustApply(t, s, "s1", "e1", b)
			got, err := s.ClaimPostings(ctx, "A", time.Minute, 3)
			if err != nil || len(got) != 3 {
				t.Fatalf("ClaimPostings(A, 3) = %d, %v; want 3", len(got), err)
			}
			for i, p := range got {
				if p.Record == nil || p.Record.Seq != p.Seq || p.Record.Receipt != p.Receipt || p.Record.Hash != b[i].Hash {
					t.Fatalf("claimed posting %d carries record %+v", p.ID, p.Record)
				}
			}
			other, err := s.ClaimPostings(ctx, "B", time.Minute, 10)
			if err != nil || len(other) != 2 {
				t.Fatalf("ClaimPostings(B) = %d, %v; want the 2 not leased", len(other), err)
			}
			if more, _ := s.ClaimPostings(ctx, "C", time.Minute, 10); len(more) != 0 {
				t.Fatalf("ClaimPostings while all are leased = %d, want 0", len(more))
			}
			if err := s.FinishPosting(ctx, got[0].ID, "B", PostingOutcome{Done: true, Ref: "x"}); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("FinishPosting by non-owner = %v, want ErrLeaseLost", err)
			}
			if err := s.FinishPosting(ctx, 99999, "A", PostingOutcome{Done: true}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("FinishPosting(unknown) = %v, want ErrNotFound", err)
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(s.FinishPosting(ctx, got[0].ID, "A", PostingOutcome{Done: true, Ref: "sale.sale/7"}))
			must(s.FinishPosting(ctx, got[1].ID, "A", PostingOutcome{Error: "timeout", RetryAt: time.Now().Add(time.Hour)}))
			must(s.FinishPosting(ctx, got[2].ID, "A", PostingOutcome{Rejected: true, Error: "unknown SKU A1"}))
			if err := s.FinishPosting(ctx, got[0].ID, "A", PostingOutcome{Done: true}); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("second FinishPosting = %v, want ErrLeaseLost (no longer pending)", err)
			}
			// The retry is not due; B's two are leased until released.
			if more, _ := s.ClaimPostings(ctx, "C", time.Minute, 10); len(more) != 0 {
				t.Fatalf("ClaimPostings = %d, want 0 (retry not due, others leased)", len(more))
			}
			must(s.ReleaseLeases(ctx, "B"))
			if more, _ := s.ClaimPostings(ctx, "C", time.Minute, 10); len(more) != 2 {
				t.Fatalf("ClaimPostings after release = %d, want 2", len(more))
			}
			ps, err := s.Postings(ctx, PostingFilter{Key: got[0].Key})
			if err != nil || len(ps) != 1 || ps[0].State != PostingDone || ps[0].Ref != "sale.sale/7" || ps[0].PostedAt.IsZero() || ps[0].Attempts != 1 {
				t.Fatalf("done posting = %+v, %v", ps, err)
			}
			ps, _ = s.Postings(ctx, PostingFilter{Key: got[1].Key})
			if ps[0].State != PostingPending || ps[0].LastError != "timeout" || ps[0].NextAt.Before(time.Now().Add(50*time.Minute)) {
				t.Fatalf("retried posting = %+v", ps[0])
			}
			ex, err := s.Exceptions(ctx, ExceptionFilter{Reason: ReasonERPRejected})
			if err != nil || len(ex) != 1 || ex[0].Key != got[2].Key {
				t.Fatalf("erp_rejected exceptions = %+v, %v", ex, err)
			}
			// Re-post: pending again and claimable; the exception is reopened if it fails again.
			if _, err := s.UpdateException(ctx, ex[0].ID, StateReposted, "ops", "SKU created"); err != nil {
				t.Fatal(err)
			}
			must(s.RepostPosting(ctx, got[2].ID))
			if err := s.RepostPosting(ctx, got[0].ID); !errors.Is(err, ErrExists) {
				t.Fatalf("RepostPosting(done) = %v, want ErrExists", err)
			}
			again, err := s.ClaimPostings(ctx, "D", time.Minute, 10)
			if err != nil || len(again) != 1 || again[0].ID != got[2].ID || again[0].Attempts != 0 {
				t.Fatalf("claim after repost = %+v, %v", again, err)
			}
			must(s.FinishPosting(ctx, again[0].ID, "D", PostingOutcome{Rejected: true, Error: "still unknown"}))
			e, err := s.Exception(ctx, ex[0].ID)
			if err != nil || e.State != StateOpen || e.UpdatedBy != "" {
				t.Fatalf("exception after second rejection = %+v, %v; want open again", e, err)
			}
			if e.Count != 2 || e.LastSeen.IsZero() {
				t.Fatalf("exception after second rejection = %+v; want it counted twice and last seen", e)
			}
			wantHistory(t, s, e.ID, "hub raised →open", "ops changed open→reposted SKU created", "hub reopened reposted→open")
			if states := postingStates(t, s, PostingFilter{State: PostingRejected}); len(states) != 1 {
				t.Fatalf("rejected postings = %v", states)
			}
		}},
		{"an expired lease can be taken over", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			mustApply(t, s, "s1", "e1", []protocol.Record{kindRec("s1", "e1", 1, protocol.KindSale, "1", 100)})
			a, err := s.ClaimPostings(ctx, "A", 50*time.Millisecond, 1)
			if err != nil || len(a) != 1 {
				t.Fatalf("claim A = %v, %v", a, err)
			}
			time.Sleep(120 * time.Millisecond)
			b, err := s.ClaimPostings(ctx, "B", time.Minute, 1)
			if err != nil || len(b) != 1 {
				t.Fatalf("claim B after A's lease expired = %v, %v", b, err)
			}
			if err := s.FinishPosting(ctx, a[0].ID, "A", PostingOutcome{Done: true}); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("finish by expired owner = %v, want ErrLeaseLost", err)
			}
		}},
		{"replay restores missing records once", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			var b []protocol.Record
			for i := uint64(1); i <= 10; i++ {
				b = append(b, kindRec("s1", "e1", i, protocol.KindSale, strconv.FormatUint(i, 10), int64(i*100)))
			}
			mustApply(t, s, "s1", "e1", b)
			deleteRecords(t, s, "s1", "e1", 4, 6)
			d, err := s.Day(ctx, "s1", testDate)
			if err != nil || len(d.Terminals) != 1 || len(d.Terminals[0].Gaps) != 1 {
				t.Fatalf("Day after delete = %+v, %v; want one gap", d, err)
			}
			replay := append(append([]protocol.Record{}, b[2:7]...), kindRec("s1", "e1", 12, protocol.KindSale, "12", 1))
			res, err := s.ApplyReplay(ctx, "s1", "e1", replay)
			want := ReplayResult{AppliedThrough: 10, Restored: 3, Duplicates: 2, Ahead: 1}
			if err != nil || res != want {
				t.Fatalf("ApplyReplay = %+v, %v; want %+v", res, err, want)
			}
			res, err = s.ApplyReplay(ctx, "s1", "e1", replay)
			want = ReplayResult{AppliedThrough: 10, Duplicates: 5, Ahead: 1}
			if err != nil || res != want {
				t.Fatalf("ApplyReplay again = %+v, %v; want %+v", res, err, want)
			}
			checkContiguousHashes(t, s, "s1", "e1", b)
			if got := postingStates(t, s, PostingFilter{}); len(got) != 10 {
				t.Fatalf("postings after replay = %d, want 10 (no re-enqueue)", len(got))
			}
			bad := b[4]
			bad.Total++
			bad.Seal()
			res, err = s.ApplyReplay(ctx, "s1", "e1", []protocol.Record{bad})
			if err != nil || res.Conflicts != 1 {
				t.Fatalf("ApplyReplay(conflict) = %+v, %v", res, err)
			}
			if _, err := s.ApplyReplay(ctx, "s1", "e1", []protocol.Record{b[5], b[4]}); !errors.Is(err, ErrBadBatch) {
				t.Fatalf("ApplyReplay(descending) = %v, want ErrBadBatch", err)
			}
			if _, err := s.ApplyReplay(ctx, "nope", "e1", []protocol.Record{kindRec("nope", "e1", 1, protocol.KindSale, "1", 1)}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("ApplyReplay(unknown store) = %v, want ErrNotFound", err)
			}
			// A record removed by hand and replayed with other content: restored (nothing to
			// compare it with), but its queued posting differs, so duplicate_receipt is raised.
			deleteRecords(t, s, "s1", "e1", 8, 8)
			other := b[7]
			other.Total = 999
			other.Seal()
			if res, err := s.ApplyReplay(ctx, "s1", "e1", []protocol.Record{other}); err != nil || res.Restored != 1 {
				t.Fatalf("ApplyReplay(other content) = %+v, %v", res, err)
			}
			if ex, err := s.Exceptions(ctx, ExceptionFilter{Reason: ReasonDuplicateReceipt}); err != nil || len(ex) != 1 {
				t.Fatalf("duplicate_receipt after replaying other content = %+v, %v; want one", ex, err)
			}
		}},
		{"commands and results", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			c := protocol.Command{V: 1, ID: "c1", Type: protocol.CommandReplay, Terminal: "T1", BusinessDate: testDate, FromReceipt: 4, ToReceipt: 6}
			if err := s.AddCommand(ctx, "s1", c); err != nil {
				t.Fatal(err)
			}
			if err := s.AddCommand(ctx, "s1", c); !errors.Is(err, ErrExists) {
				t.Fatalf("AddCommand twice = %v, want ErrExists", err)
			}
			cr, err := s.Command(ctx, "c1")
			if err != nil || cr.Result != nil || cr.Command != c || cr.Store != "s1" {
				t.Fatalf("Command before result = %+v, %v", cr, err)
			}
			r := protocol.CommandResult{ID: "c1", OK: true, Found: 3, Seqs: []uint64{4, 5, 6}, At: time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)}
			if ok, err := s.PutCommandResult(ctx, "s2", r); err != nil || ok {
				t.Fatalf("PutCommandResult(other store) = %v, %v; want ignored", ok, err)
			}
			if ok, err := s.PutCommandResult(ctx, "s1", r); err != nil || !ok {
				t.Fatalf("PutCommandResult = %v, %v", ok, err)
			}
			if ok, err := s.PutCommandResult(ctx, "s1", r); err != nil || ok {
				t.Fatalf("PutCommandResult again = %v, %v; want no change", ok, err)
			}
			if ok, _ := s.PutCommandResult(ctx, "s1", protocol.CommandResult{ID: "zz"}); ok {
				t.Fatal("PutCommandResult(unknown id) stored something")
			}
			cr, err = s.Command(ctx, "c1")
			if err != nil || cr.Result == nil || cr.Result.Found != 3 || len(cr.Result.Seqs) != 3 || cr.ResultAt.IsZero() {
				t.Fatalf("Command after result = %+v, %v", cr, err)
			}
			if _, err := s.Command(ctx, "zz"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Command(unknown) = %v", err)
			}
		}},
		{"closes", func(t *testing.T, s *DB) {
			if _, err := s.GetClose(ctx, "s1", testDate); !errors.Is(err, ErrNotFound) {
				t.Fatalf("GetClose(never) = %v, want ErrNotFound", err)
			}
			for _, st := range []string{"exceptions", "closed"} {
				if err := s.PutClose(ctx, CloseRecord{Store: "s1", BusinessDate: testDate, State: st, Body: []byte(`{"state":"` + st + `"}`)}); err != nil {
					t.Fatal(err)
				}
			}
			c, err := s.GetClose(ctx, "s1", testDate)
			if err != nil || c.State != "closed" || string(c.Body) != `{"state": "closed"}` && string(c.Body) != `{"state":"closed"}` || c.ClosedAt.IsZero() {
				t.Fatalf("GetClose = %+v (%s), %v", c, c.Body, err)
			}
		}},
		{"day states", func(t *testing.T, s *DB) {
			for _, id := range []string{"s1", "s2"} {
				if err := s.AddStore(ctx, id, "h"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.ApplyBatch(ctx, "s1", "e1", recs("s1", "e1", 1, 3)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ApplyBatch(ctx, "s2", "e1", recs("s2", "e1", 1, 1)); err != nil {
				t.Fatal(err)
			}
			for _, c := range []CloseRecord{{Store: "s1", BusinessDate: testDate, State: "closed"}, {Store: "s2", BusinessDate: "2024-04-30", State: "exceptions"},
				{Store: "s2", BusinessDate: "2024-06-01", State: "closed"}} {
				c.Body = []byte(`{}`)
				if err := s.PutClose(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.DayStates(ctx, nil, "2024-04-01", "2024-05-31")
			if err != nil {
				t.Fatal(err)
			}
			var brief []string
			for _, d := range got {
				brief = append(brief, fmt.Sprintf("%s %s %d %s %v", d.Store, d.BusinessDate, d.Records, d.Close, d.ClosedAt.IsZero()))
			}
			want := []string{"s1 2024-05-01 3 closed false", "s2 2024-04-30 0 exceptions false", "s2 2024-05-01 1  true"}
			if !reflect.DeepEqual(brief, want) {
				t.Fatalf("DayStates = %q, want %q", brief, want)
			}
			if got, _ := s.DayStates(ctx, []string{"s2"}, "2024-05-01", "2024-05-01"); len(got) != 1 || got[0].Store != "s2" {
				t.Fatalf("DayStates(s2, one day) = %+v", got)
			}
			if got, err := s.DayStates(ctx, []string{}, "2024-01-01", "2024-12-31"); err != nil || len(got) != 0 {
				t.Fatalf("DayStates(no stores) = %+v, %v", got, err)
			}
		}},
		{"exception lifecycle", func(t *testing.T, s *DB) {
			if _, err := s.RaiseException(ctx, Exception{Store: "s1", Reason: "missing_receipts", Key: "k"}); err != nil {
				t.Fatal(err)
			}
			ex, _ := s.Exceptions(ctx, ExceptionFilter{})
			id := ex[0].ID
			e, err := s.UpdateException(ctx, id, StateAcknowledged, "alice", "looking")
			if err != nil || e.State != StateAcknowledged || e.UpdatedBy != "alice" || e.Comment != "looking" {
				t.Fatalf("UpdateException = %+v, %v", e, err)
			}
			if _, err := s.UpdateException(ctx, id, "bogus", "a", ""); err == nil {
				t.Fatal("UpdateException(bogus state) succeeded")
			}
			if _, err := s.UpdateException(ctx, id+99, StateResolved, "a", ""); !errors.Is(err, ErrNotFound) {
				t.Fatalf("UpdateException(unknown) = %v", err)
			}
			ex, _ = s.Exceptions(ctx, ExceptionFilter{State: StateAcknowledged})
			if len(ex) != 1 || ex[0].UpdatedBy != "alice" || ex[0].Comment != "looking" {
				t.Fatalf("Exceptions(acknowledged) = %+v", ex)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

func checkContiguousHashes(t *testing.T, s *DB, store, epoch string, want []protocol.Record) {
	t.Helper()
	got, err := s.Records(context.Background(), store, epoch, 0, len(want)+10)
	if err != nil || len(got) != len(want) {
		t.Fatalf("Records = %d, %v; want %d", len(got), err, len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || got[i].Hash != want[i].Hash {
			t.Fatalf("record %d = seq %d hash %s, want seq %d hash %s", i, got[i].Seq, got[i].Hash, want[i].Seq, want[i].Hash)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSQLiteOutboxContract(t *testing.T) {
	runOutboxContract(t, func(t *testing.T) *DB {
		return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db"))
	}, func(t *testing.T, s *DB, store, epoch string, from, to uint64) {
		execT(t, s, `DELETE FROM records WHERE store = ? AND epoch = ? AND seq BETWEEN ? AND ?`, store, epoch, int64(from), int64(to))
	})
}

func TestPostgresOutboxContract(t *testing.T) {
	runOutboxContract(t, func(t *testing.T) *DB {
		return openPostgresT(t, pgSchema(t))
	}, func(t *testing.T, s *DB, store, epoch string, from, to uint64) {
		execT(t, s, `DELETE FROM records WHERE store = ? AND epoch = ? AND seq BETWEEN ? AND ?`, store, epoch, int64(from), int64(to))
	})
}

// Two replicas (pools) claiming concurrently never get the same posting.
func TestPostgresClaimDisjoint(t *testing.T) {
	schema := pgSchema(t)
	a, b := openPostgresT(t, schema), openPostgresT(t, schema)
	mustAddStore(t, a, "s1")
	const n = 120
	var batch []protocol.Record
	for i := uint64(1); i <= n; i++ {
		batch = append(batch, kindRec("s1", "e1", i, protocol.KindSale, strconv.FormatUint(i, 10), int64(i)))
	}
	mustApply(t, a, "s1", "e1", batch)
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for g, s := range []*DB{a, b, a, b} {
		owner := "owner" + strconv.Itoa(g)
		wg.Go(func() {
			for {
				ps, err := s.ClaimPostings(context.Background(), owner, time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ps) == 0 {
					return
				}
				mu.Lock()
				for _, p := range ps {
					if prev, dup := seen[p.ID]; dup {
						t.Errorf("posting %d claimed by %s and %s", p.ID, prev, owner)
					}
					seen[p.ID] = owner
				}
				mu.Unlock()
				for _, p := range ps {
					if err := s.FinishPosting(context.Background(), p.ID, owner, PostingOutcome{Done: true, Ref: owner}); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d postings in total, want %d", len(seen), n)
	}
	var done int
	if err := queryRowT(t, a, `SELECT count(*) FROM postings WHERE state = 'done'`, &done); err != nil || done != n {
		t.Fatalf("done postings = %d, %v", done, err)
	}
}
