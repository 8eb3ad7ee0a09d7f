package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

const testDate = "2024-05-01"

// rec builds a sealed sale record with receipt = seq and total = seq*100.
func rec(store, epoch string, seq uint64) protocol.Record {
	return sealed(protocol.Record{
		Kind: protocol.KindSale, Store: store, Terminal: "T1", Receipt: strconv.FormatUint(seq, 10),
		BusinessDate: testDate, Total: int64(seq) * 100, Epoch: epoch, Seq: seq,
		CapturedAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second),
		Lines:      []protocol.Line{{SKU: "A1", Quantity: "1", UnitPrice: int64(seq) * 100, Amount: int64(seq) * 100}},
		Tenders:    []protocol.Tender{{Type: protocol.TenderCash, Amount: int64(seq) * 100}},
	})
}

func sealed(r protocol.Record) protocol.Record {
	r.Seal()
	return r
}

// recs builds sealed records from..to inclusive.
func recs(store, epoch string, from, to uint64) []protocol.Record {
	var out []protocol.Record
	for s := from; s <= to; s++ {
		out = append(out, rec(store, epoch, s))
	}
	return out
}

func mustAddStore(t testing.TB, s *DB, id string) {
	t.Helper()
	if err := s.AddStore(context.Background(), id, "hash-of-"+id); err != nil {
		t.Fatalf("AddStore(%q): %v", id, err)
	}
}

func mustApply(t testing.TB, s *DB, store, epoch string, rs []protocol.Record) ApplyResult {
	t.Helper()
	res, err := s.ApplyBatch(context.Background(), store, epoch, rs)
	if err != nil {
		t.Fatalf("ApplyBatch(%s/%s, %d records): %v", store, epoch, len(rs), err)
	}
	return res
}

func wantResult(t *testing.T, got, want ApplyResult) {
	t.Helper()
	if got != want {
		t.Fatalf("ApplyBatch = %+v, want %+v", got, want)
	}
}

// checkContiguous asserts that the epoch holds exactly seqs 1..n with the hashes of rec().
func checkContiguous(t *testing.T, s *DB, store, epoch string, n uint64) {
	t.Helper()
	got, err := s.Records(context.Background(), store, epoch, 0, int(n)+10)
	if err != nil {
		t.Fatalf("Records(%s/%s): %v", store, epoch, err)
	}
	if uint64(len(got)) != n {
		t.Fatalf("Records(%s/%s) returned %d records, want %d", store, epoch, len(got), n)
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) {
			t.Fatalf("Records(%s/%s)[%d].Seq = %d, want %d", store, epoch, i, r.Seq, i+1)
		}
		if want := rec(store, epoch, r.Seq).Hash; r.Hash != want {
			t.Fatalf("record seq %d hash = %s, want %s", r.Seq, r.Hash, want)
		}
		if h := r.ComputeHash(); h != r.Hash {
			t.Fatalf("record seq %d read back does not match its hash", r.Seq)
		}
	}
}

// applyConcurrently has one goroutine per entry of stores apply shuffled, overlapping batches
// covering seqs 1..n of one stream until the stream is complete. It checks that every seq was
// applied exactly once in total.
func applyConcurrently(t *testing.T, stores []*DB, store, epoch string, n uint64) {
	t.Helper()
	ctx := context.Background()
	var batches [][]protocol.Record
	for start := uint64(1); start <= n; start += 7 {
		batches = append(batches, recs(store, epoch, start, min(start+12, n)))
	}
	var (
		mu       sync.Mutex
		applied  int
		firstErr error
		wg       sync.WaitGroup
	)
	for g, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 42))
			// Redelivery is out of order locally: each batch moves up to 3 places.
			order := make([]int, len(batches))
			for i := range order {
				order[i] = i
			}
			for i := range order {
				j := min(i+rnd.IntN(4), len(order)-1)
				order[i], order[j] = order[j], order[i]
			}
			for pass := 0; pass < len(batches)+1; pass++ {
				for _, i := range order {
					res, err := s.ApplyBatch(ctx, store, epoch, batches[i])
					if err == nil && res.Conflicts != 0 {
						err = fmt.Errorf("batch %d: %d conflicts", i, res.Conflicts)
					}
					if err == nil && res.ResendFrom == 0 && res.Applied+res.Duplicates != len(batches[i]) {
						err = fmt.Errorf("batch %d: applied %d + duplicates %d != %d", i, res.Applied, res.Duplicates, len(batches[i]))
					}
					mu.Lock()
					applied += res.Applied
					if err != nil && firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					if err != nil {
						return
					}
					if res.AppliedThrough == n {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("concurrent apply: %v", firstErr)
	}
	if applied != int(n) {
		t.Fatalf("concurrent apply: %d records applied in total, want exactly %d", applied, n)
	}
	checkContiguous(t, stores[0], store, epoch, n)
	ex, err := stores[0].Exceptions(ctx, ExceptionFilter{Store: store})
	if err != nil || len(ex) != 0 {
		t.Fatalf("Exceptions after concurrent apply = %v, %v; want none", ex, err)
	}
	info, err := stores[0].GetStore(ctx, store)
	if err != nil || info.Records != int64(n) {
		t.Fatalf("GetStore after concurrent apply = %+v, %v; want %d records", info, err, n)
	}
}

// runContract runs the Store contract against fresh stores made by open.
func runContract(t *testing.T, open func(t *testing.T) *DB) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, s *DB)
	}{
		{"apply in order", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			wantResult(t, mustApply(t, s, "s1", "e1", recs("s1", "e1", 1, 10)), ApplyResult{AppliedThrough: 10, Applied: 10})
			wantResult(t, mustApply(t, s, "s1", "e1", recs("s1", "e1", 11, 20)), ApplyResult{AppliedThrough: 20, Applied: 10})
			checkContiguous(t, s, "s1", "e1", 20)
			info, err := s.GetStore(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			if info.Records != 20 || len(info.Streams) != 1 || info.Streams[0].Epoch != "e1" || info.Streams[0].AppliedThrough != 20 {
				t.Fatalf("GetStore = %+v, want 20 records in stream e1", info)
			}
			// An empty batch reports progress and changes nothing.
			wantResult(t, mustApply(t, s, "s1", "e1", nil), ApplyResult{AppliedThrough: 20})
		}},
		{"duplicate batch", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			b := recs("s1", "e1", 1, 10)
			wantResult(t, mustApply(t, s, "s1", "e1", b), ApplyResult{AppliedThrough: 10, Applied: 10})
			for range 2 {
				wantResult(t, mustApply(t, s, "s1", "e1", b), ApplyResult{AppliedThrough: 10, Duplicates: 10})
			}
			checkContiguous(t, s, "s1", "e1", 10)
			if ex, err := s.Exceptions(ctx, ExceptionFilter{}); err != nil || len(ex) != 0 {
				t.Fatalf("Exceptions = %v, %v; want none", ex, err)
			}
		}},
		{"conflict raises one exception", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			mustApply(t, s, "s1", "e1", recs("s1", "e1", 1, 5))
			b := recs("s1", "e1", 3, 7)
			b[1].Total = 999 // seq 4 with other content
			b[1].Seal()
			wantResult(t, mustApply(t, s, "s1", "e1", b), ApplyResult{AppliedThrough: 7, Applied: 2, Duplicates: 2, Conflicts: 1})
			wantResult(t, mustApply(t, s, "s1", "e1", b), ApplyResult{AppliedThrough: 7, Duplicates: 4, Conflicts: 1})
			ex, err := s.Exceptions(ctx, ExceptionFilter{Store: "s1", Reason: ReasonHashConflict})
			if err != nil {
				t.Fatal(err)
			}
			if len(ex) != 1 || ex[0].Key != "e1:4" || ex[0].State != StateOpen {
				t.Fatalf("Exceptions = %+v, want one open hash_conflict with key e1:4", ex)
			}
			checkContiguous(t, s, "s1", "e1", 7) // seq 4 kept its first content
		}},
		{"gap asks for resend and applies nothing", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			mustApply(t, s, "s1", "e1", recs("s1", "e1", 1, 5))
			wantResult(t, mustApply(t, s, "s1", "e1", recs("s1", "e1", 8, 10)), ApplyResult{AppliedThrough: 5, ResendFrom: 6})
			wantResult(t, mustApply(t, s, "s1", "e2", recs("s1", "e2", 3, 4)), ApplyResult{ResendFrom: 1})
			checkContiguous(t, s, "s1", "e1", 5)
			checkContiguous(t, s, "s1", "e2", 0)
			wantResult(t, mustApply(t, s, "s1", "e1", recs("s1", "e1", 6, 10)), ApplyResult{AppliedThrough: 10, Applied: 5})
		}},
		{"overlapping batch", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			mustApply(t, s, "s1", "e1", recs("s1", "e1", 1, 10))
			wantResult(t, mustApply(t, s, "s1", "e1", recs("s1", "e1", 6, 15)), ApplyResult{AppliedThrough: 15, Applied: 5, Duplicates: 5})
			checkContiguous(t, s, "s1", "e1", 15)
		}},
		{"two epochs", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			mustApply(t, s, "s1", "old", recs("s1", "old", 1, 5))
			wantResult(t, mustApply(t, s, "s1", "new", recs("s1", "new", 1, 3)), ApplyResult{AppliedThrough: 3, Applied: 3})
			checkContiguous(t, s, "s1", "old", 5)
			checkContiguous(t, s, "s1", "new", 3)
			latest, err := s.Records(ctx, "s1", "", 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(latest) != 3 || latest[0].Epoch != "new" {
				t.Fatalf("Records(epoch \"\") = %d records of %v, want 3 of the latest epoch", len(latest), latest)
			}
			info, err := s.GetStore(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			var eps []string
			for _, st := range info.Streams {
				eps = append(eps, st.Epoch+":"+strconv.FormatUint(st.AppliedThrough, 10))
			}
			if !reflect.DeepEqual(eps, []string{"old:5", "new:3"}) || info.Records != 8 {
				t.Fatalf("GetStore streams = %v, records %d; want [old:5 new:3], 8", eps, info.Records)
			}
		}},
		{"unknown store", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "known")
			if _, err := s.ApplyBatch(ctx, "nope", "e1", recs("nope", "e1", 1, 2)); !errors.Is(err, ErrNotFound) {
				t.Errorf("ApplyBatch(unknown) error = %v, want ErrNotFound", err)
			}
			if _, err := s.Records(ctx, "nope", "", 0, 10); !errors.Is(err, ErrNotFound) {
				t.Errorf("Records(unknown) error = %v, want ErrNotFound", err)
			}
			if _, err := s.Day(ctx, "nope", testDate); !errors.Is(err, ErrNotFound) {
				t.Errorf("Day(unknown) error = %v, want ErrNotFound", err)
			}
			if _, err := s.GetStore(ctx, "nope"); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetStore(unknown) error = %v, want ErrNotFound", err)
			}
			if err := s.PutStatus(ctx, protocol.Status{V: 1, Store: "nope"}, time.Now()); !errors.Is(err, ErrNotFound) {
				t.Errorf("PutStatus(unknown) error = %v, want ErrNotFound", err)
			}
			if got, err := s.Records(ctx, "known", "", 0, 10); err != nil || len(got) != 0 {
				t.Errorf("Records(store without streams) = %v, %v; want empty", got, err)
			}
		}},
		{"invalid batch", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			holey := append(recs("s1", "e1", 1, 2), rec("s1", "e1", 4))
			other := recs("s1", "e2", 1, 2)
			zero := []protocol.Record{rec("s1", "e1", 0)}
			for name, b := range map[string][]protocol.Record{"not contiguous": holey, "other epoch": other, "seq 0": zero} {
				if _, err := s.ApplyBatch(ctx, "s1", "e1", b); !errors.Is(err, ErrBadBatch) {
					t.Errorf("ApplyBatch(%s) error = %v, want ErrBadBatch", name, err)
				}
			}
			checkContiguous(t, s, "s1", "e1", 0)
		}},
		{"concurrent apply of one store", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			applyConcurrently(t, []*DB{s, s, s, s}, "s1", "e1", 150)
		}},
		{"records paging", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			mustApply(t, s, "s1", "e1", recs("s1", "e1", 1, 25))
			for _, tc := range []struct {
				after      uint64
				limit      int
				first, num uint64
			}{{0, 10, 1, 10}, {10, 10, 11, 10}, {20, 10, 21, 5}, {25, 10, 0, 0}, {0, 0, 1, 25}, {3, 1, 4, 1}} {
				got, err := s.Records(ctx, "s1", "e1", tc.after, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				if uint64(len(got)) != tc.num || (tc.num > 0 && (got[0].Seq != tc.first || got[len(got)-1].Seq != tc.first+tc.num-1)) {
					t.Errorf("Records(after %d, limit %d) = %d records, want %d from seq %d", tc.after, tc.limit, len(got), tc.num, tc.first)
				}
			}
		}},
		{"day totals and receipt gaps", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			type r struct {
				kind          protocol.Kind
				term, receipt string
				date          string
				total         int64
			}
			in := []r{
				{protocol.KindSale, "T1", "1", testDate, 100},
				{protocol.KindSale, "T1", "2", testDate, 250},
				{protocol.KindSale, "T1", "5", testDate, 50},
				{protocol.KindReturn, "T1", "6", testDate, -40},
				{protocol.KindZReport, "T1", "Z9", testDate, 360},
				{protocol.KindNoSale, "T1", "9", testDate, 0},
				{protocol.KindSale, "T2", "A-7", testDate, 10},
				{protocol.KindSale, "T2", "0100", testDate, 20},
				{protocol.KindVoid, "T2", "0103", testDate, 0},
				{protocol.KindSale, "T3", "", testDate, 5},
				{protocol.KindSale, "T1", "3", "2024-05-02", 999}, // another day
			}
			var batch []protocol.Record
			for i, x := range in {
				batch = append(batch, sealed(protocol.Record{Kind: x.kind, Store: "s1", Terminal: x.term, Receipt: x.receipt,
					BusinessDate: x.date, Total: x.total, Epoch: "e1", Seq: uint64(i + 1)}))
			}
			mustApply(t, s, "s1", "e1", batch)
			got, err := s.Day(ctx, "s1", testDate)
			if err != nil {
				t.Fatal(err)
			}
			want := Day{Store: "s1", BusinessDate: testDate,
				Kinds: []KindTotal{
					{protocol.KindSale, 6, 435}, {protocol.KindReturn, 1, -40}, {protocol.KindVoid, 1, 0},
					{protocol.KindNoSale, 1, 0}, {protocol.KindZReport, 1, 360},
				},
				Terminals: []TerminalDay{
					{Terminal: "T1", Count: 6, FirstReceipt: "1", LastReceipt: "9", Gaps: [][2]int64{{3, 4}, {7, 8}}},
					{Terminal: "T2", Count: 3, FirstReceipt: "0100", LastReceipt: "0103", Gaps: [][2]int64{{101, 102}}},
					{Terminal: "T3", Count: 1, Gaps: [][2]int64{}},
				},
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Day =\n%+v\nwant\n%+v", got, want)
			}
			empty, err := s.Day(ctx, "s1", "2020-01-01")
			if err != nil || len(empty.Kinds) != 0 || len(empty.Terminals) != 0 {
				t.Fatalf("Day(no records) = %+v, %v; want empty", empty, err)
			}
		}},
		{"exceptions idempotent and filtered", func(t *testing.T, s *DB) {
			raise := func(e Exception, want bool) {
				t.Helper()
				got, err := s.RaiseException(ctx, e)
				if err != nil || got != want {
					t.Fatalf("RaiseException(%+v) = %v, %v; want %v", e, got, err, want)
				}
			}
			raise(Exception{Store: "s1", Reason: ReasonSpoolAlarm, Key: "disk", Detail: "spool 90% full"}, true)
			raise(Exception{Store: "s1", Reason: ReasonSpoolAlarm, Key: "disk", Detail: "again"}, false)
			raise(Exception{Store: "s1", Reason: ReasonQuarantine, Key: "q1"}, true)
			raise(Exception{Store: "s2", Reason: ReasonSpoolAlarm, Key: "disk"}, true)
			if _, err := s.RaiseException(ctx, Exception{Store: "s1"}); err == nil {
				t.Fatal("RaiseException without reason succeeded")
			}
			for _, tc := range []struct {
				f    ExceptionFilter
				want []string // store/reason/key, newest first
			}{
				{ExceptionFilter{}, []string{"s2/agent_alarm/disk", "s1/capture_quarantined/q1", "s1/agent_alarm/disk"}},
				{ExceptionFilter{Store: "s1"}, []string{"s1/capture_quarantined/q1", "s1/agent_alarm/disk"}},
				{ExceptionFilter{Reason: ReasonSpoolAlarm}, []string{"s2/agent_alarm/disk", "s1/agent_alarm/disk"}},
				{ExceptionFilter{Store: "s1", Reason: ReasonSpoolAlarm, State: StateOpen}, []string{"s1/agent_alarm/disk"}},
				{ExceptionFilter{State: StateResolved}, nil},
				{ExceptionFilter{Limit: 1}, []string{"s2/agent_alarm/disk"}},
			} {
				ex, err := s.Exceptions(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range ex {
					got = append(got, e.Store+"/"+e.Reason+"/"+e.Key)
					if e.ID == 0 || e.CreatedAt.IsZero() || e.State != StateOpen {
						t.Errorf("exception %+v lacks id, time or open state", e)
					}
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("Exceptions(%+v) = %v, want %v", tc.f, got, tc.want)
				}
			}
			ex, _ := s.Exceptions(ctx, ExceptionFilter{Store: "s1", Reason: ReasonSpoolAlarm})
			if len(ex) != 1 || ex[0].Detail != "spool 90% full" || ex[0].Count != 2 || ex[0].LastSeen.Before(ex[0].CreatedAt) {
				t.Fatalf("first raise must be kept: %+v", ex)
			}
			if e, err := s.UpdateException(ctx, ex[0].ID, StateResolved, "ops", "disk replaced"); err != nil ||
				e.State != StateResolved || e.UpdatedBy != "ops" || e.Comment != "disk replaced" || e.Detail != "spool 90% full" {
				t.Fatalf("UpdateException = %+v, %v", e, err)
			}
			if _, err := s.UpdateException(ctx, ex[0].ID+1000, StateResolved, "ops", ""); !errors.Is(err, ErrNotFound) {
				t.Fatalf("UpdateException(unknown id) error = %v, want ErrNotFound", err)
			}
			if _, err := s.UpdateException(ctx, ex[0].ID, "bogus", "ops", ""); err == nil {
				t.Fatal("UpdateException(bogus) succeeded")
			}
			res, err := s.Exceptions(ctx, ExceptionFilter{State: StateResolved})
			if err != nil || len(res) != 1 || res[0].ID != ex[0].ID {
				t.Fatalf("Exceptions(resolved) = %+v, %v; want the one resolved", res, err)
			}
			// A resolved exception still deduplicates its key.
			raise(Exception{Store: "s1", Reason: ReasonSpoolAlarm, Key: "disk"}, false)
		}},
		{"stores and credentials", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "b")
			mustAddStore(t, s, "a")
			if err := s.AddStore(ctx, "a", "other"); !errors.Is(err, ErrExists) {
				t.Fatalf("AddStore(existing) error = %v, want ErrExists", err)
			}
			if err := s.AddStore(ctx, "bad/id", "x"); !errors.Is(err, protocol.ErrBadStoreID) {
				t.Fatalf("AddStore(bad/id) error = %v, want ErrBadStoreID", err)
			}
			if c, err := s.Credentials(ctx, "a"); err != nil || c.Hash != "hash-of-a" || c.State != StoreActive {
				t.Fatalf("Credentials(a) = %+v, %v; want hash-of-a, active", c, err)
			}
			if _, err := s.Credentials(ctx, "zz"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Credentials(unknown) error = %v, want ErrNotFound", err)
			}
			list, err := s.ListStores(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" || list[0].CreatedAt.IsZero() || list[0].Streams == nil {
				t.Fatalf("ListStores = %+v, want a and b", list)
			}
		}},
		{"status", func(t *testing.T, s *DB) {
			mustAddStore(t, s, "s1")
			if info, err := s.GetStore(ctx, "s1"); err != nil || info.Status != nil || !info.StatusAt.IsZero() {
				t.Fatalf("GetStore before status = %+v, %v; want no status", info, err)
			}
			t1 := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
			st := protocol.Status{V: 1, Store: "s1", State: "online", Epoch: "e1", LastSeq: 42, Backlog: 3,
				Clock: t1, LastCapture: map[string]time.Time{"T1": t1}, Alarms: []string{"spool_quota"}}
			if err := s.PutStatus(ctx, st, t1); err != nil {
				t.Fatal(err)
			}
			older := st
			older.State = "offline"
			if err := s.PutStatus(ctx, older, t1.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			info, err := s.GetStore(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			if info.Status == nil || !reflect.DeepEqual(*info.Status, st) || !info.StatusAt.Equal(t1.Truncate(time.Microsecond)) {
				t.Fatalf("GetStore status = %+v at %v, want %+v at %v", info.Status, info.StatusAt, st, t1)
			}
			newer := st
			newer.State = "offline"
			if err := s.PutStatus(ctx, newer, t1.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			list, err := s.ListStores(ctx)
			if err != nil || len(list) != 1 || list[0].Status == nil || list[0].Status.State != "offline" {
				t.Fatalf("ListStores after newer status = %+v, %v; want state offline", list, err)
			}
			// The hub's clock set back days: the status it stamps replaces the one stamped before.
			stepped := st
			stepped.Backlog = 7
			if err := s.PutStatus(ctx, stepped, t1.Add(-72*time.Hour)); err != nil {
				t.Fatal(err)
			}
			info, _ = s.GetStore(ctx, "s1")
			if info.Status.Backlog != 7 || !info.StatusAt.Equal(t1.Add(-72*time.Hour).Truncate(time.Microsecond)) {
				t.Fatalf("after the hub's clock went back 72h: %+v at %v; want backlog 7 at %v", info.Status, info.StatusAt, t1.Add(-72*time.Hour))
			}
			if err := s.PutStatus(ctx, newer, t1.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			list, _ = s.ListStores(ctx)
			// The Will (offline, no clock, no measurements) keeps what was last known, and since when.
			known := list[0].StatusAt
			if err := s.PutStatus(ctx, protocol.Status{V: 1, Store: "s1", State: "offline"}, t1.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			info, _ = s.GetStore(ctx, "s1")
			if info.Status.State != "offline" || info.Status.Backlog != 3 || info.Status.Epoch != "e1" || !info.StatusAt.Equal(known) {
				t.Fatalf("after the Will: %+v at %v; want offline with backlog 3 known at %v", info.Status, info.StatusAt, known)
			}
			back := st
			back.Backlog = 0
			if err := s.PutStatus(ctx, back, t1.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if info, _ = s.GetStore(ctx, "s1"); info.Status.State != "online" || info.Status.Backlog != 0 {
				t.Fatalf("after coming back: %+v", info.Status)
			}
			mustAddStore(t, s, "s2") // a Will with nothing known before is kept as it is
			if err := s.PutStatus(ctx, protocol.Status{V: 1, Store: "s2", State: "offline"}, t1); err != nil {
				t.Fatal(err)
			}
			if info, _ = s.GetStore(ctx, "s2"); info.Status == nil || info.Status.State != "offline" || !info.StatusAt.Equal(t1.Truncate(time.Microsecond)) {
				t.Fatalf("first status a Will: %+v at %v", info.Status, info.StatusAt)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, open(t))
		})
	}
}
