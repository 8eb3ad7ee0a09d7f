package profile_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/profile"

	"github.com/lanebridge/lanebridge/protocol"
)

// truthTx is what testharness/receipts/gen.js printed in one transaction (money in minor units,
// computed there in integers): the records must say the same, to the cent.
type truthTx struct {
	Kind            protocol.Kind `json:"kind"`
	Receipt         string        `json:"receipt"`
	BusinessDate    string        `json:"business_date"`
	OriginalReceipt string        `json:"original_receipt"`
	Total           int64         `json:"total"`
	Change          int64         `json:"change"`
	Lines           []struct {
		Description string `json:"description"`
		Quantity    string `json:"quantity"`
		UnitPrice   int64  `json:"unit_price"`
		Amount      int64  `json:"amount"`
	} `json:"lines"`
	Taxes []struct {
		Code    string `json:"code"`
		Rate    string `json:"rate"`
		Taxable *int64 `json:"taxable"`
		Amount  int64  `json:"amount"`
	} `json:"taxes"`
	Tenders []struct {
		Type   string `json:"type"`
		Amount int64  `json:"amount"`
		Last4  string `json:"last4"`
	} `json:"tenders"`
	Z *struct {
		Counter     int64                  `json:"counter"`
		Gross       int64                  `json:"gross"`
		Net         int64                  `json:"net"`
		Refunds     protocol.Counted       `json:"refunds"`
		Voids       protocol.Counted       `json:"voids"`
		NoSaleCount int64                  `json:"no_sale_count"`
		Tenders     []protocol.TenderTotal `json:"tenders"`
		Taxes       []struct {
			Code   string `json:"code"`
			Amount int64  `json:"amount"`
		} `json:"taxes"`
	} `json:"z"`
}

// TestEncoderGolden parses the fixtures made by other encoders (receiptline, node-thermal-
// printer: testharness/receipts/gen.js) with their layouts' profiles (testdata/encoders/<layout>/
// profile.yaml): the results must equal expected.json (-update rewrites it), every transaction
// must be parsed unflagged, and each record must hold what the generator printed.
func TestEncoderGolden(t *testing.T) {
	dirs := encoderDirs(t)
	if len(dirs) < 3 {
		t.Fatalf("want at least three encoder layouts under testdata/encoders, have %v", dirs)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			p := loadProfileFile(t, filepath.Join(dir, "profile.yaml"))
			input, err := os.ReadFile(filepath.Join(dir, "input.bin"))
			if err != nil {
				t.Fatal(err)
			}
			results := run(p, input, 7)
			got, _ := json.MarshalIndent(render(results), "", "  ")
			got = append(got, '\n')
			whole, _ := json.MarshalIndent(render(run(p, input, 0)), "", "  ")
			if !bytes.Equal(append(whole, '\n'), got) {
				t.Errorf("feeding the input whole gives different results than in 7-byte chunks")
			}
			path := filepath.Join(dir, "expected.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestEncoderGolden -update and inspect the result)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("results differ from %s:\n%s", path, got)
			}
			var truth []truthTx
			b, err := os.ReadFile(filepath.Join(dir, "truth.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &truth); err != nil {
				t.Fatal(err)
			}
			if len(results) != len(truth) {
				t.Fatalf("%d results for %d printed transactions:\n%s", len(results), len(truth), got)
			}
			for i, r := range results {
				if r.Err != nil || len(r.Flags) > 0 {
					t.Errorf("transaction %d (%s): err %v flags %q\n%s", i, truth[i].Receipt, r.Err, r.Flags, r.Raw)
					continue
				}
				checkTruth(t, p.Fields.Currency, r.Record, truth[i])
			}
		})
	}
}

func checkTruth(t *testing.T, currency string, rec *protocol.Record, w truthTx) {
	t.Helper()
	where := string(w.Kind) + " " + w.Receipt
	if err := rec.ValidateBusiness(); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	if rec.Kind != w.Kind || rec.Receipt != w.Receipt || rec.BusinessDate != w.BusinessDate || rec.Currency != currency ||
		rec.OriginalReceipt != w.OriginalReceipt {
		t.Errorf("%s: record is %s %s %s %s orig %q", where, rec.Kind, rec.Receipt, rec.BusinessDate, rec.Currency, rec.OriginalReceipt)
	}
	if rec.Total != w.Total || rec.Change != w.Change {
		t.Errorf("%s: total %d change %d, printed %d and %d", where, rec.Total, rec.Change, w.Total, w.Change)
	}
	if len(rec.Lines) != len(w.Lines) {
		t.Errorf("%s: %d lines, printed %d: %+v", where, len(rec.Lines), len(w.Lines), rec.Lines)
	} else {
		var sum int64
		for i, l := range rec.Lines {
			wl := w.Lines[i]
			q := wl.Quantity
			if w.Kind == protocol.KindReturn {
				q = "-" + q
			}
			if l.Description != wl.Description || l.Quantity != q || l.Amount != wl.Amount || (wl.UnitPrice != 0 && l.UnitPrice != wl.UnitPrice) {
				t.Errorf("%s line %d: %q %s × %d = %d, printed %q %s × %d = %d", where, i, l.Description, l.Quantity, l.UnitPrice, l.Amount,
					wl.Description, q, wl.UnitPrice, wl.Amount)
			}
			sum += l.Amount
		}
		// Prices include tax: the lines add up to the total, the tax is reported apart.
		if len(rec.Lines) > 0 && sum != rec.Total {
			t.Errorf("%s: Σlines %d ≠ total %d", where, sum, rec.Total)
		}
	}
	if len(rec.Taxes) != len(w.Taxes) {
		t.Errorf("%s: taxes %+v, printed %+v", where, rec.Taxes, w.Taxes)
	} else {
		for i, tx := range rec.Taxes {
			wt := w.Taxes[i]
			if tx.Code != wt.Code || tx.Amount != wt.Amount || (wt.Rate != "" && tx.Rate != wt.Rate) || (wt.Taxable != nil && tx.Taxable != *wt.Taxable) {
				t.Errorf("%s tax %d: %+v, printed %+v", where, i, tx, wt)
			}
		}
	}
	if len(rec.Tenders) != len(w.Tenders) {
		t.Errorf("%s: tenders %+v, printed %+v", where, rec.Tenders, w.Tenders)
	} else {
		for i, tn := range rec.Tenders {
			wt := w.Tenders[i]
			last4 := ""
			if tn.Card != nil {
				last4 = tn.Card.Last4
			}
			if tn.Type != wt.Type || tn.Amount != wt.Amount || last4 != wt.Last4 {
				t.Errorf("%s tender %d: %s %d %q, printed %s %d %q", where, i, tn.Type, tn.Amount, last4, wt.Type, wt.Amount, wt.Last4)
			}
		}
	}
	if (rec.Z == nil) != (w.Z == nil) {
		t.Fatalf("%s: z %+v, printed %+v", where, rec.Z, w.Z)
	}
	if z, wz := rec.Z, w.Z; z != nil {
		if z.Counter != wz.Counter || z.Gross != wz.Gross || z.Net != wz.Net || z.Refunds != wz.Refunds || z.Voids != wz.Voids ||
			z.NoSaleCount != wz.NoSaleCount || len(z.Tenders) != len(wz.Tenders) || len(z.Taxes) != len(wz.Taxes) {
			t.Errorf("%s: z %+v, printed %+v", where, *z, *wz)
			return
		}
		for i := range z.Tenders {
			if z.Tenders[i].Type != wz.Tenders[i].Type || z.Tenders[i].Amount != wz.Tenders[i].Amount {
				t.Errorf("%s z tender %d: %+v, printed %+v", where, i, z.Tenders[i], wz.Tenders[i])
			}
		}
		for i := range z.Taxes {
			if z.Taxes[i].Code != wz.Taxes[i].Code || z.Taxes[i].Amount != wz.Taxes[i].Amount {
				t.Errorf("%s z tax %d: %+v, printed %+v", where, i, z.Taxes[i], wz.Taxes[i])
			}
		}
	}
}

// TestEncoderWrapsNeverSilentlyCut takes the wraps out of the encoder layouts' profiles (and,
// second, also stops flagging unmatched lines): the wrapped descriptions and amounts are then
// no longer joined, and every transaction must be quarantined, flagged, or still equal to what
// was printed — never a record with a description or amount cut short and no flag. In the
// second form only the rules' cells stand between a cut cell and a silent record.
func TestEncoderWrapsNeverSilentlyCut(t *testing.T) {
	wrapBlock := regexp.MustCompile(`(?m)^      wrap:\n(?:        .*\n)+`)
	silentWithoutCells := 0
	defer func() {
		if silentWithoutCells == 0 {
			t.Errorf("without wrap, cells and unmatched flags no record is wrong: the fixtures do not wrap a cell")
		}
	}()
	for _, dir := range encoderDirs(t) {
		y, err := os.ReadFile(filepath.Join(dir, "profile.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		noWrap := wrapBlock.ReplaceAll(y, nil)
		if bytes.Equal(noWrap, y) {
			t.Fatalf("%s: no wrap to take out", dir)
		}
		noFlag := bytes.Replace(noWrap, []byte("unmatched: flag"), []byte("unmatched: ignore"), 1)
		var truth []truthTx
		b, _ := os.ReadFile(filepath.Join(dir, "truth.json"))
		if err := json.Unmarshal(b, &truth); err != nil {
			t.Fatal(err)
		}
		input, _ := os.ReadFile(filepath.Join(dir, "input.bin"))
		// Without cells too, cut cells go through silently (in some layout; a wrapped amount
		// may still be caught by its digit grouping): what the two forms below prove rests on
		// the profile's declarations, not on luck.
		noCells := regexp.MustCompile(`(?m)^      cells: .*\n`).ReplaceAll(noFlag, nil)
		if p, err := profile.Load(bytes.NewReader(noCells)); err != nil {
			t.Fatal(err)
		} else {
			for _, r := range run(p, input, 0) {
				if r.Err == nil && len(r.Flags) == 0 && !sameAsPrinted(r.Record, truth) {
					silentWithoutCells++
				}
			}
		}
		for name, y := range map[string][]byte{"no wrap": noWrap, "no wrap, unmatched ignored": noFlag} {
			t.Run(filepath.Base(dir)+"/"+name, func(t *testing.T) {
				p, err := profile.Load(bytes.NewReader(y))
				if err != nil {
					t.Fatal(err)
				}
				caught := 0
				for _, r := range run(p, input, 0) {
					if r.Err != nil || len(r.Flags) > 0 {
						caught++
						continue
					}
					if !sameAsPrinted(r.Record, truth) {
						t.Errorf("silently wrong: %s %s %+v (total %d)", r.Record.Kind, r.Record.Receipt, r.Record.Lines, r.Record.Total)
					}
				}
				if caught == 0 {
					t.Errorf("nothing quarantined or flagged: the layout's wraps are not exercised")
				}
			})
		}
	}
}

// sameAsPrinted reports whether rec's lines and total are those of the printed transaction
// with its receipt number.
func sameAsPrinted(rec *protocol.Record, truth []truthTx) bool {
	for _, w := range truth {
		if w.Receipt != rec.Receipt || w.Kind != rec.Kind {
			continue
		}
		if rec.Total != w.Total || len(rec.Lines) != len(w.Lines) {
			return false
		}
		for i, l := range rec.Lines {
			if l.Description != w.Lines[i].Description || l.Amount != w.Lines[i].Amount {
				return false
			}
		}
		return true
	}
	return false
}
