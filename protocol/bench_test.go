package protocol

import (
	"encoding/json"
	"testing"
)

// BenchmarkDecodeBatch measures the hub's per-batch decode and validation (hash check included)
// against a plain json.Unmarshal of the same payload (the raw baseline).
func BenchmarkDecodeBatch(b *testing.B) {
	recs := make([]Record, 256)
	for i := range recs {
		recs[i] = sample(uint64(i + 1))
	}
	payload, _ := json.Marshal(Batch{V: 1, Store: "S001", Epoch: recs[0].Epoch, Records: recs})
	b.Run("raw-unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			var x Batch
			if err := json.Unmarshal(payload, &x); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("DecodeBatch", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := DecodeBatch("S001", payload); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "records/s")
	})
}
