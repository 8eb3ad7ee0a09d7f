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
	b.Run("general-decoder", func(b *testing.B) { // the two-pass decoder DecodeBatch falls back to
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			x, raws, err := decodeBatchGeneral(payload)
			if err != nil {
				b.Fatal(err)
			}
			for i := range raws {
				x.Records[i].Wire = raws[i]
			}
			if _, err := validateBatch("S001", &x); err != nil {
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

// BenchmarkAppendBatch measures the agent's per-batch encoding from stored record JSON against
// json.Marshal of the decoded batch (what encoding the records again would cost).
func BenchmarkAppendBatch(b *testing.B) {
	recs, raws := records("S001", sample(1).Epoch, 1, 256)
	h := BatchHeader{Store: "S001", Epoch: recs[0].Epoch}
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(Batch{V: Version, Store: h.Store, Epoch: h.Epoch, Records: recs}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("AppendBatch", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = AppendBatch(buf[:0], h, raws)
		}
		b.SetBytes(int64(len(buf)))
		b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "records/s")
	})
}
