package sim

import (
	"testing"

	"github.com/lanebridge/lanebridge/protocol"
)

func TestGeneratorRecordsAreValidAndBalanced(t *testing.T) {
	g := New("T1", "2026-11-26", 42, nil, 1000)
	var tot Totals
	for i := range 2000 {
		r := g.Next()
		if err := r.ValidateBusiness(); err != nil {
			t.Fatalf("record %d invalid: %v", i, err)
		}
		var lines, disc, tax, tend int64
		for _, l := range r.Lines {
			if !l.Voided {
				lines += l.Amount
			}
		}
		for _, d := range r.Discounts {
			disc += d.Amount
		}
		for _, x := range r.Taxes {
			tax += x.Amount
		}
		for _, x := range r.Tenders {
			tend += x.Amount
		}
		if r.Kind == protocol.KindSale || r.Kind == protocol.KindReturn {
			if lines-disc+tax != r.Total {
				t.Fatalf("receipt %s: lines %d - disc %d + tax %d != total %d", r.Receipt, lines, disc, tax, r.Total)
			}
		}
		if tend-r.Change != r.Total {
			t.Fatalf("receipt %s (%s): tenders %d - change %d != total %d", r.Receipt, r.Kind, tend, r.Change, r.Total)
		}
		if r.Kind == protocol.KindReturn && (r.Total >= 0 || r.OriginalReceipt == "") {
			t.Fatalf("return %s: total %d original %q", r.Receipt, r.Total, r.OriginalReceipt)
		}
		tot.Add(r)
	}
	if tot.Count[protocol.KindSale] < 1500 || tot.Count[protocol.KindReturn] == 0 || tot.Count[protocol.KindVoid] == 0 {
		t.Fatalf("mix looks wrong: %v", tot.Count)
	}
	// Deterministic for a seed.
	a, b := New("T1", "2026-11-26", 7, nil, 1), New("T1", "2026-11-26", 7, nil, 1)
	for range 100 {
		if x, y := a.Next(), b.Next(); x.ComputeHash() != y.ComputeHash() {
			t.Fatal("same seed produced different records")
		}
	}
}

func TestParseMix(t *testing.T) {
	if _, err := ParseMix("sale=80,return=20"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"sale", "bogus=1", "z_report=1", "sale=-1"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}
