package sim

import (
	"strconv"
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

// Returns take back part of an earlier sale of the terminal, never more than it sold, so a
// simulated day closes without return_unknown_original or return_exceeds_sale.
func TestReturnsStayWithinTheirSale(t *testing.T) {
	g := New("T1", "2026-11-26", 3, Mix{protocol.KindSale: 50, protocol.KindReturn: 50}, 1)
	sold := map[string]map[string]int{}     // receipt → sku → quantity
	returned := map[string]map[string]int{} // original receipt → sku → quantity
	returns := 0
	for range 3000 {
		r := g.Next()
		switch r.Kind {
		case protocol.KindSale:
			sold[r.Receipt] = map[string]int{}
			for _, l := range r.Lines {
				q, _ := strconv.Atoi(l.Quantity)
				sold[r.Receipt][l.SKU] += q
			}
		case protocol.KindReturn:
			returns++
			s, ok := sold[r.OriginalReceipt]
			if !ok {
				t.Fatalf("return %s names %q, not an earlier sale", r.Receipt, r.OriginalReceipt)
			}
			if len(r.Lines) == 0 {
				t.Fatalf("return %s has no lines", r.Receipt)
			}
			if returned[r.OriginalReceipt] == nil {
				returned[r.OriginalReceipt] = map[string]int{}
			}
			for _, l := range r.Lines {
				q, _ := strconv.Atoi(l.Quantity)
				if q >= 0 {
					t.Fatalf("return %s line quantity %s is not negative", r.Receipt, l.Quantity)
				}
				returned[r.OriginalReceipt][l.SKU] -= q
				if got, max := returned[r.OriginalReceipt][l.SKU], s[l.SKU]; got > max {
					t.Fatalf("returns of sale %s take back %d of sku %s, it sold %d", r.OriginalReceipt, got, l.SKU, max)
				}
			}
		}
	}
	if returns < 1000 {
		t.Fatalf("only %d returns in 3000 records at a 50%% mix", returns)
	}
}
