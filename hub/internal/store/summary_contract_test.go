package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/lanebridge/lanebridge/protocol"
)

// summaryRows dumps the day summary tables in a stable order.
func summaryRows(t *testing.T, s *DB) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT store || '|' || business_date || '|' || terminal || '|' || item || '=' || CAST(amount AS text) FROM day_sums`,
		`SELECT key || '|' || number || '|' || epoch || '|' || CAST(seq AS text) FROM day_keys`,
		`SELECT store || '|' || business_date || '|' || epoch || '|' || CAST(seq AS text) FROM day_z`,
	} {
		err := s.read(context.Background(), func(tx tx) error {
			rs, err := tx.query(context.Background(), q)
			got, err := scanAll(rs, err, scanString)
			out = append(out, got...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(out)
	return out
}

// runSummaryContract checks the day summaries kept at apply time: a batch applied again (or
// replayed) counts nothing twice, the figures are those of the records, and they equal the
// summaries rebuilt from the records, on random days with recaptures under new epochs.
func runSummaryContract(t *testing.T, s *DB) {
	ctx := context.Background()
	mustAddStore(t, s, "s1")
	rng := rand.New(rand.NewPCG(13, 0))
	storeID := "s1"
	mk := func(epoch string, seq uint64, kind protocol.Kind, term, receipt, date string, total int64) protocol.Record {
		r := protocol.Record{Kind: kind, Store: storeID, Terminal: term, Receipt: receipt, BusinessDate: date, Total: total, Epoch: epoch, Seq: seq,
			Tenders: []protocol.Tender{{Type: []string{protocol.TenderCash, protocol.TenderCard}[rng.IntN(2)], Amount: total}},
			Taxes:   []protocol.Tax{{Code: "V" + strconv.Itoa(rng.IntN(2)), Amount: total / 10}}}
		if kind == protocol.KindZReport {
			r.Tenders, r.Taxes, r.Z = nil, nil, &protocol.ZReport{}
		}
		return sealed(r)
	}
	kinds := []protocol.Kind{protocol.KindSale, protocol.KindSale, protocol.KindReturn, protocol.KindVoid, protocol.KindPaidIn, protocol.KindXReport, protocol.KindZReport}
	var e1 []protocol.Record
	for seq := uint64(1); seq <= 300; seq++ {
		receipt := strconv.Itoa(rng.IntN(200))
		if rng.IntN(10) == 0 {
			receipt = ""
		}
		e1 = append(e1, mk("e1", seq, kinds[rng.IntN(len(kinds))], "T"+strconv.Itoa(rng.IntN(3)), receipt, fmt.Sprintf("2024-05-0%d", 1+rng.IntN(3)), int64(rng.IntN(10000))-2000))
	}
	for off := 0; off < len(e1); off += 50 {
		mustApply(t, s, "s1", "e1", e1[off:off+50])
	}
	before := summaryRows(t, s)
	// Applied again, and replayed: duplicates, nothing counted twice.
	if res := mustApply(t, s, "s1", "e1", e1[100:150]); res.Duplicates != 50 {
		t.Fatalf("apply again: %+v", res)
	}
	if res, err := s.ApplyReplay(ctx, "s1", "e1", e1[10:20]); err != nil || res.Duplicates != 10 {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	if after := summaryRows(t, s); !slices.Equal(before, after) {
		t.Fatalf("a duplicate apply changed the summaries:\n%v\n%v", before, after)
	}
	// A spool reset: the same receipts again under e2, some with other content.
	var e2 []protocol.Record
	for i, r := range e1[:80] {
		if rng.IntN(3) == 0 {
			r.Total++
		}
		r.Epoch, r.Seq, r.Hash = "e2", uint64(i+1), ""
		e2 = append(e2, sealed(r))
	}
	mustApply(t, s, "s1", "e2", e2)
	kept := summaryRows(t, s)
	if err := s.RebuildDaySummaries(ctx); err != nil {
		t.Fatal(err)
	}
	if rebuilt := summaryRows(t, s); !slices.Equal(kept, rebuilt) {
		t.Fatalf("kept summaries differ from the rebuilt ones:\nkept    %v\nrebuilt %v", kept, rebuilt)
	}
	if len(kept) < 100 {
		t.Fatalf("only %d summary rows", len(kept))
	}

	// Known figures of a small day: change, a gap, a Z report, a return of an unposted sale.
	mustAddStore(t, s, "s2")
	storeID = "s2"
	d := "2024-06-01"
	sale := mk("e1", 1, protocol.KindSale, "T1", "1", d, 1000)
	sale.Tenders, sale.Taxes, sale.Change = []protocol.Tender{{Type: protocol.TenderCash, Amount: 1200}}, []protocol.Tax{{Code: "A", Amount: 100}}, 200
	ret := mk("e1", 2, protocol.KindReturn, "T1", "4", d, -300)
	ret.OriginalReceipt = "1"
	ret.Tenders, ret.Taxes = []protocol.Tender{{Type: protocol.TenderCard, Amount: -300}}, []protocol.Tax{{Code: "A", Amount: -30}}
	z := mk("e1", 3, protocol.KindZReport, "T1", "Z", d, 0)
	mustApply(t, s, "s2", "e1", []protocol.Record{sealed(sale), sealed(ret), z})
	sum, err := s.DaySummary(ctx, "s2", d, true)
	if err != nil {
		t.Fatal(err)
	}
	want := TerminalSums{Tenders: map[string]int64{"cash": 1000, "card": -300}, Taxes: map[string]int64{"A": 70}, Net: 700, Postable: 2, PKeys: 2}
	if got := sum.Terminals["T1"]; !sum.Exact || len(sum.Terminals) != 1 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("DaySummary = %+v, want exact T1 %+v", sum, want)
	}
	if fmt.Sprint(sum.Gaps) != "map[T1:[[2 3]]]" || len(sum.Z) != 1 || len(sum.Returns) != 1 || len(sum.Sales) != 1 || sum.Sales[0].Receipt != "1" {
		t.Fatalf("DaySummary gaps %v, %d Z, %d returns, sales %v", sum.Gaps, len(sum.Z), len(sum.Returns), sum.Sales)
	}
	if sum.ERP != (PostingSums{Postings: 2, Pending: 2}) || len(sum.Unposted) != 2 || sum.Unposted[0].Receipt != "1" || sum.Unposted[0].Missing {
		t.Fatalf("DaySummary ERP %+v, unposted %+v", sum.ERP, sum.Unposted)
	}
	if _, err := s.DaySummary(ctx, "nope", d, true); err == nil {
		t.Fatal("DaySummary of an unknown store succeeded")
	}
	// A sum that could pass int64 makes the day slow (the close then reads the records).
	big := mk("e2", 1, protocol.KindPaidIn, "T2", "", d, 0)
	big.Tenders = []protocol.Tender{{Type: protocol.TenderCash, Amount: math.MaxInt64}, {Type: protocol.TenderCash, Amount: 1}}
	mustApply(t, s, "s2", "e2", []protocol.Record{sealed(big)})
	if sum, err := s.DaySummary(ctx, "s2", d, true); err != nil || sum.Exact {
		t.Fatalf("DaySummary past int64: exact %v, %v", sum.Exact, err)
	}
}

func TestSummaryContractSQLite(t *testing.T) {
	runSummaryContract(t, openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")))
}

func TestSummaryContractPostgres(t *testing.T) {
	runSummaryContract(t, openPostgresT(t, pgSchema(t)))
}
