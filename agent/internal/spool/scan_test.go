package spool

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lanebridge/lanebridge/protocol"
)

func seqsOf(raws []RawRecord) []uint64 {
	out := make([]uint64, len(raws))
	for i, r := range raws {
		out[i] = r.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestScanReceiptsAndReadRange(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), Options{})
	ctx := context.Background()
	var all []protocol.Record
	// seq 1..6000: T1 receipts 1..6000 on 2026-03-01 (crosses a scan chunk).
	for i := 1; i <= 6000; i++ {
		all = append(all, sale("T1", i))
	}
	// seq 6001..6003: T10 receipts 5..7 (a terminal whose id has T1 as a prefix).
	for i := 5; i <= 7; i++ {
		all = append(all, sale("T10", i))
	}
	// seq 6004: T1 receipt 000007 of the next day; 6005: a non-numeric receipt; 6006: receipt 4999 again.
	next := sale("T1", 0)
	next.Receipt, next.BusinessDate = "000007", "2026-03-02"
	alpha := sale("T1", 0)
	alpha.Receipt = "R-5"
	all = append(all, next, alpha, sale("T1", 4999))
	if _, err := s.Commit(ctx, Capture{Source: "src", Records: all}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name          string
		rr            ReceiptRange
		max           int
		want          []uint64
		wantTruncated bool
	}{
		{"range in day", ReceiptRange{"T1", "2026-03-01", 5, 7}, 100, []uint64{5, 6, 7}, false},
		{"across chunk", ReceiptRange{"T1", "2026-03-01", 4998, 5002}, 100, []uint64{4998, 4999, 5000, 5001, 5002, 6006}, false},
		{"other terminal", ReceiptRange{"T10", "2026-03-01", 1, 100}, 100, []uint64{6001, 6002, 6003}, false},
		{"leading zeros, other day", ReceiptRange{"T1", "2026-03-02", 7, 7}, 100, []uint64{6004}, false},
		{"any day", ReceiptRange{"T1", "", 7, 7}, 100, []uint64{7, 6004}, false},
		{"none", ReceiptRange{"T1", "2026-03-01", 7000, 8000}, 100, nil, false},
		{"unknown terminal", ReceiptRange{"T9", "", 1, 9}, 100, nil, false},
		{"truncated", ReceiptRange{"T1", "2026-03-01", 1, 6000}, 10, seqRange(1, 10), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, tr, err := s.ScanReceipts(tt.rr, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqsOf(got), tt.want) || tr != tt.wantTruncated {
				t.Fatalf("ScanReceipts(%+v) = %v (truncated %v), want %v (%v)", tt.rr, seqsOf(got), tr, tt.want, tt.wantTruncated)
			}
		})
	}

	ranges := []struct {
		from, to      uint64
		max           int
		want          []uint64
		wantTruncated bool
	}{
		{3, 7, 100, seqRange(3, 7), false},
		{4999, 5001, 100, seqRange(4999, 5001), false},
		{6005, 9000, 100, []uint64{6005, 6006}, false},
		{7000, 7100, 100, nil, false},
		{1, 6006, 6006, seqRange(1, 6006), false},
		{1, 6006, 5001, seqRange(1, 5001), true},
	}
	for _, tt := range ranges {
		t.Run(fmt.Sprintf("range %d-%d max %d", tt.from, tt.to, tt.max), func(t *testing.T) {
			got, tr, err := s.ReadRange(tt.from, tt.to, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqsOf(got), tt.want) || tr != tt.wantTruncated {
				t.Fatalf("ReadRange(%d, %d, %d) = %d records %v… (truncated %v), want %d (%v)", tt.from, tt.to, tt.max, len(got), head(seqsOf(got)), tr, len(tt.want), tt.wantTruncated)
			}
		})
	}
}

func head(s []uint64) []uint64 { return s[:min(len(s), 5)] }
