package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
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
