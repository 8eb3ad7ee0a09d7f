package reconcile

import (
	"slices"
	"strconv"
	"testing"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

const day = "2026-11-26"

func sale(n int, qty string, total int64) protocol.Record {
	return protocol.Record{Kind: protocol.KindSale, Store: "S1", Terminal: "T1", Receipt: strconv.Itoa(n), BusinessDate: day, Seq: uint64(n),
		Lines:   []protocol.Line{{SKU: "A", Quantity: qty, UnitPrice: 100, Amount: total - 8}},
		Taxes:   []protocol.Tax{{Code: "T1", Amount: 8}},
		Tenders: []protocol.Tender{{Type: protocol.TenderCash, Amount: total}}, Total: total}
}

func ret(n int, orig string, qty string, total int64) protocol.Record {
	r := sale(n, qty, total)
	r.Kind, r.OriginalReceipt, r.Taxes = protocol.KindReturn, orig, []protocol.Tax{{Code: "T1", Amount: -8}}
	return r
}

func z(tenders map[string]int64, tax int64) protocol.Record {
	zr := &protocol.ZReport{Taxes: []protocol.Tax{{Code: "T1", Amount: tax}}}
	for k, v := range tenders {
		zr.Tenders = append(zr.Tenders, protocol.TenderTotal{Type: k, Amount: v})
	}
	return protocol.Record{Kind: protocol.KindZReport, Store: "S1", Terminal: "T1", Receipt: "Z1", BusinessDate: day, Z: zr, Seq: 999}
}

func done(recs []protocol.Record) []store.Posting {
	var ps []store.Posting
	for i := range recs {
		if store.Postable(recs[i].Kind) {
			ps = append(ps, store.Posting{Key: recs[i].BusinessKey(), BusinessDate: day, State: store.PostingDone, Total: recs[i].Total})
		}
	}
	return ps
}

func TestCompare(t *testing.T) {
	clean := []protocol.Record{sale(1, "1", 108), sale(2, "2", 208), ret(3, "2", "-1", -108), z(map[string]int64{"cash": 208}, 8)}
	tests := []struct {
		name     string
		recs     []protocol.Record
		postings func([]protocol.Record) []store.Posting
		zDue     bool
		want     []string
	}{
		{"clean day", clean, done, true, nil},
		{"gap", []protocol.Record{sale(1, "1", 108), sale(4, "1", 108), z(map[string]int64{"cash": 216}, 16)}, done, true, []string{ReasonMissingReceipts}},
		{"z tender mismatch", append(slices.Clone(clean[:3]), z(map[string]int64{"cash": 200, "card": 8}, 8)), done, true, []string{ReasonZMismatchTender, ReasonZMismatchTender}},
		{"z tax mismatch", append(slices.Clone(clean[:3]), z(map[string]int64{"cash": 208}, 9)), done, true, []string{ReasonZMismatchTax}},
		{"no z report due", clean[:3], done, true, []string{ReasonNoZReport}},
		{"no z report not yet due", clean[:3], done, false, nil},
		{"duplicate receipt", append(slices.Clone(clean), func() protocol.Record { r := sale(1, "1", 109); r.Seq = 50; return r }()), func(r []protocol.Record) []store.Posting { return done(r[:3]) }, true, []string{ReasonDuplicateReceipt}},
		{"return of unknown sale", []protocol.Record{sale(1, "1", 108), ret(2, "77", "-1", -108), z(map[string]int64{"cash": 0}, 0)}, done, true, []string{ReasonReturnUnknownOriginal}},
		{"return exceeds sale", []protocol.Record{sale(1, "1", 108), ret(2, "1", "-2", -208), z(map[string]int64{"cash": -100}, 0)}, done, true, []string{ReasonReturnExceedsSale}},
		{"posting missing", clean, func(r []protocol.Record) []store.Posting { return done(r)[:2] }, true, []string{ReasonPostingMissing}},
		{"posting pending", clean, func(r []protocol.Record) []store.Posting {
			ps := done(r)
			ps[1].State = store.PostingPending
			return ps
		}, true, []string{ReasonPostingMissing}},
		{"erp total differs", clean, func(r []protocol.Record) []store.Posting {
			ps := done(r)
			ps[0].Total++
			return ps
		}, true, []string{ReasonERPMismatch}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Compare("S1", day, tc.recs, tc.postings(tc.recs), tc.zDue)
			var got []string
			for _, is := range res.Issues {
				got = append(got, is.Reason)
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("Compare issues = %v (%+v), want %v", got, res.Issues, want)
			}
			if (len(want) == 0) != (res.State == StateClosed) {
				t.Fatalf("state = %s with issues %v", res.State, got)
			}
		})
	}
	res := Compare("S1", day, []protocol.Record{sale(1, "1", 108), sale(5, "1", 108)}, nil, false)
	if g := res.Gaps["T1"]; len(g) != 1 || g[0] != [2]int64{2, 4} {
		t.Fatalf("gaps = %v, want [[2 4]]", res.Gaps)
	}
	// The exception a gap raises names what to replay.
	is := res.Issues[0]
	d, term, gap, ok := MissingReceipts(store.Exception{Reason: is.Reason, Key: is.Key})
	if !ok || d != day || term != "T1" || gap != [2]int64{2, 4} {
		t.Fatalf("MissingReceipts(%+v) = %s %s %v %v", is, d, term, gap, ok)
	}
	for _, e := range []store.Exception{{Reason: ReasonNoZReport, Key: is.Key}, {Reason: ReasonMissingReceipts, Key: "2024-05-01|T1|4-2"},
		{Reason: ReasonMissingReceipts, Key: "2024-05-01|T1"}, {Reason: ReasonMissingReceipts, Key: "2024-05-01|T1|x-2"}} {
		if _, _, _, ok := MissingReceipts(e); ok {
			t.Errorf("MissingReceipts(%+v) is ok", e)
		}
	}
	if _, term, _, ok := MissingReceipts(store.Exception{Reason: ReasonMissingReceipts, Key: "2024-05-01|T|1|2-3"}); !ok || term != "T|1" {
		t.Errorf("a terminal with a bar: %q %v", term, ok)
	}
}

// Without an ERP nothing is posted: the ERP leg is skipped instead of reporting every sale as
// posting_missing.
func TestCompareNoERP(t *testing.T) {
	recs := []protocol.Record{sale(1, "1", 108), sale(2, "2", 108)}
	with := Compare("S1", day, recs, nil, false)
	if len(with.Issues) != 2 || with.Issues[0].Reason != ReasonPostingMissing {
		t.Fatalf("Compare without postings = %+v, want 2 posting_missing", with.Issues)
	}
	without := CompareNoERP("S1", day, recs, false)
	if len(without.Issues) != 0 || without.State != StateClosed || !without.ERP.Skipped || without.ERP.Postable != 2 {
		t.Fatalf("CompareNoERP = %+v, want a clean close with the ERP leg skipped", without)
	}
}

// TestCompareSumOverflow: sums that would leave int64 (records that bypassed the wire's
// ±10^13 bound, or a million of them) raise day_sum_overflow instead of wrapping to a
// plausible figure.
func TestCompareSumOverflow(t *testing.T) {
	const big = 1 << 62
	recs := []protocol.Record{sale(1, "1", big), sale(2, "1", big), z(map[string]int64{"cash": big}, 8)}
	res := Compare("S1", day, recs, done(recs), true)
	var got []string
	for _, is := range res.Issues {
		if is.Reason == ReasonSumOverflow {
			got = append(got, is.Key)
		}
	}
	want := []string{day + "||captured total", day + "||posted total", day + "||terminal T1 net", day + "||terminal T1 tender cash"}
	if !slices.Equal(got, want) || res.State != StateExceptions {
		t.Fatalf("overflow issues %v (state %s), want %v", got, res.State, want)
	}
	if c := res.Captured["T1"]; c.Net != big || c.Tenders["cash"] != big {
		t.Fatalf("captured %+v: a sum that would overflow must not wrap", c)
	}
}
