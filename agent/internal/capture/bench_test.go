package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

// benchRecord is a canonical-jsonl line of about 600 bytes (the record size).
func benchRecord(term string, receipt int) []byte {
	r := protocol.Record{Kind: protocol.KindSale, Terminal: term, Receipt: fmt.Sprint(receipt), BusinessDate: "2026-11-26",
		Time: "2026-11-26T10:00:00Z", Currency: "EUR", Total: 1000,
		Tenders: []protocol.Tender{{Type: "cash", Amount: 1000}}}
	for i := range 4 {
		r.Lines = append(r.Lines, protocol.Line{SKU: fmt.Sprintf("SKU-%06d", i), Description: "Mineral water 1.5l sparkling", Quantity: "1", UnitPrice: 250, Amount: 250})
	}
	b, _ := json.Marshal(r)
	return append(b, '\n')
}

// BenchmarkTailCapture measures one file:// source of b.N canonical-jsonl records into a real,
// fsynced spool: records/s from the first read to the last record committed.
func BenchmarkTailCapture(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "j.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	size := 0
	for i := 1; i <= b.N; i++ {
		l := benchRecord("T1", i)
		size += len(l)
		if _, err := f.Write(l); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"), spool.Options{Store: "S001"})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	ctx, cancel := context.WithCancel(context.Background())
	tl := &Tail{ID: "T1", Terminal: "T1", Path: path, Profile: shippedProfile(b, "canonical-jsonl"), Spool: sp, Log: slog.New(slog.DiscardHandler), Poll: time.Millisecond}
	done := make(chan error, 1)
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	go func() { done <- tl.Run(ctx) }()
	for sp.LastSeq() < uint64(b.N) {
		select {
		case err := <-done:
			b.Fatalf("tail stopped at seq %d: %v", sp.LastSeq(), err)
		case <-time.After(200 * time.Microsecond):
		}
	}
	el, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "rec/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu_us/rec")
	b.ReportMetric(float64(size)/float64(b.N), "B/line")
	b.ReportMetric(float64(b.N)/float64(sp.Stats().Transactions), "rec/tx")
}
