package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// TestApplyBatches: a group commit gives every batch the outcome ApplyBatch gives it when the
// same batches are applied one by one, in order, on a twin store (duplicates, a conflict, a gap,
// an unknown store, an invalid batch, several batches of one stream), and stores the same records.
func TestApplyBatches(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) *DB{
		"sqlite":   func(t *testing.T) *DB { return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")) },
		"postgres": func(t *testing.T) *DB { return openPostgresT(t, pgSchema(t)) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			group, twin := open(t), open(t)
			for _, s := range []*DB{group, twin} {
				mustAddStore(t, s, "s1")
				mustAddStore(t, s, "s2")
				mustApply(t, s, "s1", "e1", recs("s1", "e1", 1, 5))
			}
			conflicting := recs("s1", "e1", 4, 6)
			conflicting[0].Total++
			conflicting[0].Seal()
			bs := []BatchApply{
				{Store: "s2", Epoch: "e1", Records: recs("s2", "e1", 1, 3)},
				{Store: "s1", Epoch: "e1", Records: recs("s1", "e1", 3, 8)},   // duplicates 3..5, applies 6..8
				{Store: "s9", Epoch: "e1", Records: recs("s9", "e1", 1, 2)},   // unknown store
				{Store: "s2", Epoch: "e1", Records: recs("s2", "e1", 4, 6)},   // after the first s2 batch
				{Store: "s1", Epoch: "e1", Records: recs("s1", "e1", 12, 13)}, // gap
				{Store: "s1", Epoch: "e1", Records: conflicting},              // conflict at 4, duplicates
				{Store: "s2", Epoch: "e2", Records: recs("s2", "e1", 1, 1)},   // invalid: epoch differs
				{Store: "s1", Epoch: "e1", Records: recs("s1", "e1", 9, 10)},
			}
			got := group.ApplyBatches(ctx, bs)
			for i, b := range bs {
				res, err := twin.ApplyBatch(ctx, b.Store, b.Epoch, b.Records)
				if res != got[i].Result || (err == nil) != (got[i].Err == nil) {
					t.Fatalf("batch %d: group %+v, %v; one by one %+v, %v", i, got[i].Result, got[i].Err, res, err)
				}
				if err != nil && (errors.Is(err, ErrNotFound) != errors.Is(got[i].Err, ErrNotFound) || errors.Is(err, ErrBadBatch) != errors.Is(got[i].Err, ErrBadBatch)) {
					t.Fatalf("batch %d: group error %v, one by one %v", i, got[i].Err, err)
				}
			}
			if got[2].Err == nil || got[4].Result.ResendFrom != 9 || got[5].Result.Conflicts != 1 {
				t.Fatalf("outcomes not as designed: %+v", got)
			}
			checkContiguous(t, group, "s2", "e1", 6)
			for _, s := range []*DB{group, twin} {
				rs, err := s.Records(ctx, "s1", "e1", 0, 100)
				if err != nil || len(rs) != 10 {
					t.Fatalf("s1 records = %d, %v; want 10", len(rs), err)
				}
			}
			a, _ := group.Exceptions(ctx, ExceptionFilter{Store: "s1"})
			b, _ := twin.Exceptions(ctx, ExceptionFilter{Store: "s1"})
			if len(a) != 1 || len(b) != 1 || a[0].Key != b[0].Key {
				t.Fatalf("exceptions: group %+v, one by one %+v", a, b)
			}
			ga, _ := group.Postings(ctx, PostingFilter{})
			tb, _ := twin.Postings(ctx, PostingFilter{})
			keys := func(ps []Posting) (out []string) {
				for _, p := range ps {
					out = append(out, p.Key)
				}
				slices.Sort(out) // posting ids follow the group's (store, epoch) order
				return out
			}
			if !reflect.DeepEqual(keys(ga), keys(tb)) {
				t.Fatalf("postings: group %v, one by one %v", keys(ga), keys(tb))
			}
		})
	}
}

// TestApplyBatchesSummaries: a group commit of batches of several stores and epochs (receipts
// recaptured under a new epoch, some with other content, duplicates of the same receipt in one
// group) keeps the day summaries, day keys and postings exactly as applying the same batches one
// by one does, and as rebuilding them from the records does.
func TestApplyBatchesSummaries(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) *DB{
		"sqlite":   func(t *testing.T) *DB { return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")) },
		"postgres": func(t *testing.T) *DB { return openPostgresT(t, pgSchema(t)) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			group, twin := open(t), open(t)
			rng := rand.New(rand.NewPCG(7, 0))
			kinds := []protocol.Kind{protocol.KindSale, protocol.KindSale, protocol.KindReturn, protocol.KindVoid, protocol.KindXReport, protocol.KindZReport}
			var bs []BatchApply
			for _, st := range []string{"s1", "s2", "s3"} {
				for _, db := range []*DB{group, twin} {
					mustAddStore(t, db, st)
				}
				var e1, e2 []protocol.Record
				for seq := uint64(1); seq <= 120; seq++ {
					total := int64(rng.IntN(5000)) - 500
					r := protocol.Record{Kind: kinds[rng.IntN(len(kinds))], Store: st, Terminal: "T" + strconv.Itoa(rng.IntN(2)),
						Receipt: strconv.Itoa(rng.IntN(90)), BusinessDate: fmt.Sprintf("2024-05-0%d", 1+rng.IntN(2)), Total: total,
						Epoch: "e1", Seq: seq, Tenders: []protocol.Tender{{Type: protocol.TenderCash, Amount: total}}, Change: int64(rng.IntN(3))}
					if r.Kind == protocol.KindZReport {
						r.Tenders, r.Z = nil, &protocol.ZReport{}
					}
					e1 = append(e1, sealed(r))
					if seq <= 40 { // recaptured under e2, a third with other content
						if rng.IntN(3) == 0 {
							r.Total++
						}
						r.Epoch, r.Hash = "e2", ""
						e2 = append(e2, sealed(r))
					}
				}
				for off := 0; off < len(e1); off += 30 {
					bs = append(bs, BatchApply{Store: st, Epoch: "e1", Records: e1[off : off+30]})
				}
				bs = append(bs, BatchApply{Store: st, Epoch: "e1", Records: e1[20:50]}, // duplicates within the group
					BatchApply{Store: st, Epoch: "e2", Records: e2})
			}
			got := group.ApplyBatches(ctx, bs)
			for i, b := range bs {
				res, err := twin.ApplyBatch(ctx, b.Store, b.Epoch, b.Records)
				if err != nil || got[i].Err != nil || res != got[i].Result {
					t.Fatalf("batch %d: group %+v, %v; one by one %+v, %v", i, got[i].Result, got[i].Err, res, err)
				}
			}
			kept, one := summaryRows(t, group), summaryRows(t, twin)
			if !slices.Equal(kept, one) {
				t.Fatalf("group commit summaries differ from one by one:\ngroup %v\none   %v", kept, one)
			}
			if err := group.RebuildDaySummaries(ctx); err != nil {
				t.Fatal(err)
			}
			if rebuilt := summaryRows(t, group); !slices.Equal(kept, rebuilt) {
				t.Fatalf("group commit summaries differ from the rebuilt ones:\nkept    %v\nrebuilt %v", kept, rebuilt)
			}
			ga, _ := group.Postings(ctx, PostingFilter{Limit: 10000})
			tb, _ := twin.Postings(ctx, PostingFilter{Limit: 10000})
			view := func(ps []Posting) (out []string) {
				for _, p := range ps {
					out = append(out, p.Key+"|"+p.Epoch+"|"+strconv.FormatUint(p.Seq, 10)+"|"+p.ContentHash)
				}
				slices.Sort(out)
				return out
			}
			if !reflect.DeepEqual(view(ga), view(tb)) || len(ga) < 100 {
				t.Fatalf("postings: group %d %v\none by one %d %v", len(ga), view(ga), len(tb), view(tb))
			}
			ea, _ := group.Exceptions(ctx, ExceptionFilter{})
			eb, _ := twin.Exceptions(ctx, ExceptionFilter{})
			if len(ea) != len(eb) || len(ea) == 0 {
				t.Fatalf("exceptions: group %d, one by one %d (want the same, some duplicate receipts)", len(ea), len(eb))
			}
		})
	}
}

// TestApplyBatchesInsertFails: when the group's deferred insert fails (here a record stored
// past its stream's progress, which only a broken store has), the whole transaction rolls back
// and every batch is applied again on its own: the broken stream's batch fails, the others are
// applied exactly once and acknowledged with their real outcome.
func TestApplyBatchesInsertFails(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) *DB{
		"sqlite":   func(t *testing.T) *DB { return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")) },
		"postgres": func(t *testing.T) *DB { return openPostgresT(t, pgSchema(t)) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			mustAddStore(t, s, "s1")
			mustAddStore(t, s, "s2")
			mustApply(t, s, "s1", "e1", recs("s1", "e1", 1, 2))
			stray := rec("s1", "e1", 4)
			execT(t, s, `INSERT INTO records (store, epoch, seq, kind, terminal, receipt, business_date, total, hash, body, applied_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, "s1", "e1", 4, string(stray.Kind), stray.Terminal, stray.Receipt, stray.BusinessDate,
				stray.Total, stray.Hash, `{}`, s.now())
			got := s.ApplyBatches(ctx, []BatchApply{
				{Store: "s2", Epoch: "e1", Records: recs("s2", "e1", 1, 5)},
				{Store: "s1", Epoch: "e1", Records: recs("s1", "e1", 3, 5)},
				{Store: "s2", Epoch: "e1", Records: recs("s2", "e1", 4, 7)},
			})
			if got[0].Err != nil || got[0].Result != (ApplyResult{AppliedThrough: 5, Applied: 5}) ||
				got[2].Err != nil || got[2].Result != (ApplyResult{AppliedThrough: 7, Applied: 2, Duplicates: 2}) {
				t.Fatalf("healthy batches: %+v", got)
			}
			if got[1].Err == nil {
				t.Fatalf("batch over a stray record: %+v, want an error", got[1])
			}
			checkContiguous(t, s, "s2", "e1", 7)
			var p uint64
			if err := s.write(ctx, func(t tx) (err error) { p, _, err = s.progress(ctx, t, "s1", "e1"); return err }); err != nil || p != 2 {
				t.Fatalf("s1 progress %d, %v; want 2", p, err)
			}
		})
	}
}

// TestChunkAt: full chunks, then the rest in falling powers of two.
func TestChunkAt(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []int
	}{
		{0, nil}, {1, []int{1}}, {3, []int{2, 1}}, {128, []int{128}}, {300, []int{128, 128, 32, 8, 4}}, {127, []int{64, 32, 16, 8, 4, 2, 1}},
	} {
		var got []int
		for off, n := 0, 0; off < c.n; off += n {
			n = chunkAt(off, c.n, 128)
			got = append(got, n)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("chunkAt over %d rows = %v, want %v", c.n, got, c.want)
		}
	}
}

// TestSQLiteStatementCache: a statement the writer runs in a second transaction is prepared
// into the cache and served from it afterwards, within its bound.
func TestSQLiteStatementCache(t *testing.T) {
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db"))
	mustAddStore(t, s, "s1")
	for i := uint64(0); i < 3; i++ {
		mustApply(t, s, "s1", "e1", recs("s1", "e1", 1+i*4, 4+i*4))
	}
	c := &s.e.(*sqliteEngine).cache
	q := insertSQL("records", recordCols, 4)
	if c.get(q) == nil {
		t.Fatalf("records INSERT of 4 rows not cached after 3 transactions; cache holds %d", len(c.stmts))
	}
	if len(c.stmts) > stmtCacheSize {
		t.Fatalf("cache holds %d statements, bound %d", len(c.stmts), stmtCacheSize)
	}
	mustApply(t, s, "s1", "e1", recs("s1", "e1", 13, 16))
	checkContiguous(t, s, "s1", "e1", 16)
}

// BenchmarkGroupCommit: 16 stores' batches of 64 records applied one transaction each
// (ApplyBatch, the baseline) against one group commit (ApplyBatches), on both engines.
func BenchmarkGroupCommit(b *testing.B) {
	for name, open := range map[string]func(b *testing.B) *DB{
		"sqlite":   func(b *testing.B) *DB { return openSQLiteT(b, filepath.Join(b.TempDir(), "hub.db")) },
		"postgres": func(b *testing.B) *DB { return openPostgresT(b, pgSchema(b)) },
	} {
		const stores, size = 16, 64
		for _, mode := range []string{"one-by-one", "group"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				s := open(b)
				ids := make([]string, stores)
				for i := range ids {
					ids[i] = fmt.Sprintf("s%02d", i)
					mustAddStore(b, s, ids[i])
				}
				ctx := context.Background()
				next := uint64(1)
				for b.Loop() {
					b.StopTimer()
					bs := make([]BatchApply, stores)
					for i, id := range ids {
						bs[i] = BatchApply{Store: id, Epoch: "e1", Records: recs(id, "e1", next, next+size-1)}
					}
					b.StartTimer()
					if mode == "group" {
						for _, o := range s.ApplyBatches(ctx, bs) {
							if o.Err != nil || o.Result.Applied != size {
								b.Fatalf("ApplyBatches = %+v", o)
							}
						}
					} else {
						for _, x := range bs {
							if res, err := s.ApplyBatch(ctx, x.Store, x.Epoch, x.Records); err != nil || res.Applied != size {
								b.Fatalf("ApplyBatch = %+v, %v", res, err)
							}
						}
					}
					next += size
				}
				b.ReportMetric(float64(b.N*stores*size)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// TestSQLiteCheckpointer: the writer never checkpoints (wal_autocheckpoint 0), yet the
// records reach the database file: the checkpointer copies the WAL back beside the writer.
// Without it the file would stay at its size after the migrations.
func TestSQLiteCheckpointer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s := openSQLiteT(t, path)
	mustAddStore(t, s, "s1")
	var auto int
	if err := queryRowT(t, s, `PRAGMA wal_autocheckpoint`, &auto); err != nil || auto != 0 {
		t.Fatalf("writer wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	before := fileSize(t, path)
	for i := uint64(0); i < 20; i++ {
		mustApply(t, s, "s1", "e1", recs("s1", "e1", 1+i*100, 100+i*100))
	}
	ck := s.e.(*sqliteEngine).ck
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(t, path) <= before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := fileSize(t, path); after <= before || ck.checkpoints.Load() == 0 {
		t.Fatalf("database file %d bytes before, %d after 2,000 records; %d checkpoints (last error %v)", before, after, ck.checkpoints.Load(), ck.err.Load())
	}
	checkContiguous(t, s, "s1", "e1", 2000)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
