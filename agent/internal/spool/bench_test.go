package spool

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	bolt "go.etcd.io/bbolt"
)

const benchWorkers = 16

// runWorkers runs n operations spread over benchWorkers goroutines and returns ops per second.
func runWorkers(b *testing.B, n int, op func(i int) error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				if err := op(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkCommit measures single-record Commits from 16 goroutines against a raw baseline of
// one fsynced bbolt Update per record (same record work, same goroutines, same disk) and
// reports both rates and their ratio.
func BenchmarkCommit(b *testing.B) {
	dir := b.TempDir()
	s := openTest(b, filepath.Join(dir, "spool.db"), Options{})
	rec := sale("t1", 1)
	ctx := context.Background()

	b.ResetTimer()
	rate := runWorkers(b, b.N, func(int) error {
		_, err := s.Commit(ctx, Capture{Source: "t1", Records: []protocol.Record{rec}, Offset: []byte("o")})
		return err
	})
	b.StopTimer()
	txs := s.Stats().Transactions

	db, err := bolt.Open(filepath.Join(dir, "raw.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketRecords); return err }); err != nil {
		b.Fatal(err)
	}
	rawN := min(b.N, 500) // fsync-bound: a few hundred are enough for a rate
	raw := runWorkers(b, rawN, func(i int) error {
		return db.Update(func(tx *bolt.Tx) error {
			r := rec
			r.Seq = uint64(i)
			r.Seal()
			v, err := json.Marshal(&r)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketRecords).Put(u64(uint64(i)), v)
		})
	})
	b.ReportMetric(rate, "rec/s")
	b.ReportMetric(raw, "raw_rec/s")
	b.ReportMetric(rate/raw, "x_raw")
	b.ReportMetric(float64(b.N)/float64(txs), "rec/tx")
}

// BenchmarkCommitGrouped measures the spool's commit of captures of benchGroup records each
// (one caller, as one file:// source commits) against raw bbolt writing the same record bytes
// (the encodings the spool stored) and an offset with the same grouping, one fsynced
// transaction per group. The two alternate group by group, so a shared machine's load falls on
// both alike; both rates and their ratio are reported from the same run.
func BenchmarkCommitGrouped(b *testing.B) {
	const benchGroup = 400
	dir := b.TempDir()
	s := openTest(b, filepath.Join(dir, "spool.db"), Options{})
	ctx := context.Background()
	groups := max(1, b.N/benchGroup)
	recs := make([]protocol.Record, benchGroup)
	for i := range recs {
		recs[i] = sale("t1", i)
		recs[i].Source = &protocol.Source{Terminal: "t1", Profile: "canonical-jsonl", Raw: "file:j.jsonl@123456"}
	}
	db, err := bolt.Open(filepath.Join(dir, "raw.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucket(bucketRecords); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketOffsets)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	var spoolT, rawT time.Duration
	size := 0
	b.ResetTimer()
	for g := range groups {
		off := []byte(`{"off":` + strconv.Itoa(g) + `}`)
		start := time.Now()
		if _, err := s.Commit(ctx, Capture{Source: "t1", Records: recs, Offset: off}); err != nil {
			b.Fatal(err)
		}
		spoolT += time.Since(start)
		stored, err := s.ReadRaw(uint64(g*benchGroup+1), benchGroup)
		if err != nil || len(stored) != benchGroup {
			b.Fatalf("read back group %d: %d records, %v", g, len(stored), err)
		}
		size = len(stored[0].JSON)
		start = time.Now()
		if err := db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucketRecords)
			bk.FillPercent = appendFillPercent
			for _, r := range stored {
				if err := bk.Put(u64(r.Seq), r.JSON); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketOffsets).Put([]byte("t1"), off)
		}); err != nil {
			b.Fatal(err)
		}
		rawT += time.Since(start)
	}
	b.StopTimer()
	n := float64(groups * benchGroup)
	b.ReportMetric(n/spoolT.Seconds(), "rec/s")
	b.ReportMetric(n/rawT.Seconds(), "raw_rec/s")
	b.ReportMetric(rawT.Seconds()/spoolT.Seconds(), "x_raw")
	b.ReportMetric(float64(size), "B/rec")
}
