package inventory

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lanebridge/lanebridge/protocol"
)

const benchSKUs = 100_000

func benchItems() []protocol.Item {
	items := make([]protocol.Item, benchSKUs)
	for i := range items {
		items[i] = protocol.Item{
			SKU: fmt.Sprintf("SKU%07d", (i*7919)%benchSKUs), Description: fmt.Sprintf("Item number %d, 500 g", i),
			Price: int64(100 + i%5000), TaxCode: "STD", Status: protocol.ItemActive,
			OnHand: fmt.Sprint(i % 300), Available: fmt.Sprintf("%d.5", i%300),
		}
	}
	return items
}

// BenchmarkSnapshotApply100k measures applying a 100,000-SKU snapshot (encode, sort, one bbolt
// transaction replacing the previous 100,000 items, fsync) — what an agent offline for a week
// does to catch up.
func BenchmarkSnapshotApply100k(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "inventory.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	items := benchItems()
	v := uint64(0)
	apply := func() {
		v++
		out, _, err := db.Apply(&protocol.Inventory{V: 1, Store: "S1", Kind: protocol.InventorySnapshot, Version: v, Items: items})
		if err != nil || out != Applied {
			b.Fatal(out, err)
		}
	}
	apply() // the steady state replaces an existing item master
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		apply()
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/snapshot")
	m, _ := db.Meta()
	if m.Items != benchSKUs {
		b.Fatalf("items %d", m.Items)
	}
}

// BenchmarkRawBoltTx100k is the floor: one bbolt transaction replacing a bucket with the same
// 100,000 values, already encoded and sorted.
func BenchmarkRawBoltTx100k(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	items := benchItems()
	type kv struct{ k, v []byte }
	kvs := make([]kv, len(items))
	for i := range items {
		v, _ := json.Marshal(&items[i])
		kvs[i] = kv{[]byte(items[i].SKU), v}
	}
	sort.Slice(kvs, func(i, j int) bool { return string(kvs[i].k) < string(kvs[j].k) })
	write := func() {
		err := db.Update(func(tx *bolt.Tx) error {
			_ = tx.DeleteBucket([]byte("items"))
			bk, err := tx.CreateBucket([]byte("items"))
			if err != nil {
				return err
			}
			bk.FillPercent = 1.0
			for _, e := range kvs {
				if err := bk.Put(e.k, e.v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	write()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		write()
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/snapshot")
}
