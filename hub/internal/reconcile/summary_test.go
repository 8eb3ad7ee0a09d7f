package reconcile

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// genDays applies random store-days to st: receipt gaps, voids, no-sales, paid-ins without a
// receipt, X reports, Z reports that match or not, change, returns of a known sale (within or
// beyond its quantity) or of an unknown one, and on some days a spool reset that captures
// receipts again under a new epoch (same content, or other content: duplicate_receipt).
func genDays(t *testing.T, st *store.DB, rng *rand.Rand, stores, days int) [][2]string {
	ctx := context.Background()
	var out [][2]string
	for s := range stores {
		id := fmt.Sprintf("S%d", s)
		if err := st.AddStore(ctx, id, "x"); err != nil {
			t.Fatal(err)
		}
		seqs := map[string]uint64{}
		apply := func(epoch string, recs []protocol.Record) {
			for i := range recs {
				seqs[epoch]++
				recs[i].Epoch, recs[i].Seq = epoch, seqs[epoch]
				recs[i].Seal()
			}
			for off := 0; off < len(recs); off += 7 {
				b := recs[off:min(off+7, len(recs))]
				if res, err := st.ApplyBatch(ctx, id, epoch, b); err != nil || res.Applied != len(b) {
					t.Fatalf("apply %s/%s: %+v %v", id, epoch, res, err)
				}
			}
		}
		for d := range days {
			date := benchDate(d)
			out = append(out, [2]string{id, date})
			var recs []protocol.Record
			rec := func(kind protocol.Kind, term, receipt string, total int64) *protocol.Record {
				recs = append(recs, protocol.Record{Kind: kind, Store: id, Terminal: term, Receipt: receipt, BusinessDate: date,
					CapturedAt: time.Date(2026, 10, 1, 10, 0, 0, 0, time.UTC), Total: total})
				return &recs[len(recs)-1]
			}
			for ti := range 1 + rng.IntN(3) {
				term := "T" + strconv.Itoa(ti+1)
				cash, card, tax := int64(0), int64(0), map[string]int64{}
				n := int64(d*1000 + 1)
				var sold []string
				for range 5 + rng.IntN(15) {
					if rng.IntN(8) == 0 {
						n += 1 + int64(rng.IntN(3)) // a gap
					}
					rc := strconv.FormatInt(n, 10)
					n++
					switch k := rng.IntN(12); {
					case k < 7:
						total := int64(100 + rng.IntN(5000))
						r := rec(protocol.KindSale, term, rc, total)
						q := strconv.Itoa(1 + rng.IntN(3))
						r.Lines = []protocol.Line{{SKU: "A" + strconv.Itoa(rng.IntN(4)), Quantity: q, UnitPrice: total, Amount: total},
							{SKU: "V", Quantity: "1", UnitPrice: 5, Amount: 5, Voided: true}}
						code := []string{"A", "B"}[rng.IntN(2)]
						r.Taxes = []protocol.Tax{{Code: code, Amount: total / 10}}
						tax[code] += total / 10
						if rng.IntN(3) == 0 {
							r.Tenders = []protocol.Tender{{Type: protocol.TenderCard, Amount: total}}
							card += total
						} else {
							r.Tenders = []protocol.Tender{{Type: protocol.TenderCash, Amount: total + 50}}
							r.Change = 50
							cash += total
						}
						sold = append(sold, rc)
					case k < 9:
						r := rec(protocol.KindReturn, term, rc, -300)
						switch j := rng.IntN(4); {
						case j == 0 || len(sold) == 0:
							r.OriginalReceipt = "999999"
						case j == 1:
							r.OriginalReceipt = sold[rng.IntN(len(sold))]
							r.Lines = []protocol.Line{{SKU: "A9", Quantity: "-1", UnitPrice: 300, Amount: -300}}
						default:
							r.OriginalReceipt = sold[rng.IntN(len(sold))]
							r.Lines = []protocol.Line{{SKU: "A" + strconv.Itoa(rng.IntN(4)), Quantity: "-" + strconv.Itoa(1+rng.IntN(2)), UnitPrice: 300, Amount: -300}}
						}
						r.Taxes = []protocol.Tax{{Code: "A", Amount: -30}}
						r.Tenders = []protocol.Tender{{Type: protocol.TenderCash, Amount: -300}}
						cash -= 300
						tax["A"] -= 30
					case k < 10:
						rec(protocol.KindVoid, term, rc, 0)
					case k < 11:
						rec(protocol.KindNoSale, term, rc, 0)
					default:
						r := rec(protocol.KindPaidIn, term, "", 0) // no receipt
						r.Tenders = []protocol.Tender{{Type: protocol.TenderCash, Amount: 700}}
						cash += 700
						n-- // the receipt number was not used
					}
				}
				rec(protocol.KindXReport, term, "X", 0)
				if rng.IntN(5) == 0 {
					tax["A"]++ // Z tax mismatch
				}
				if rng.IntN(6) != 0 { // else no Z report
					if rng.IntN(3) == 0 {
						cash++ // Z mismatch
					}
					z := rec(protocol.KindZReport, term, "Z", 0)
					z.Z = &protocol.ZReport{Tenders: []protocol.TenderTotal{{Type: protocol.TenderCash, Amount: cash}, {Type: protocol.TenderCard, Amount: card}}}
					for c, v := range tax {
						z.Z.Taxes = append(z.Z.Taxes, protocol.Tax{Code: c, Amount: v})
					}
				}
			}
			apply("e1", recs)
			if rng.IntN(4) == 0 { // spool reset: a few receipts captured again
				e := "r" + strconv.Itoa(d)
				var again []protocol.Record
				for _, r := range recs[:min(3, len(recs))] {
					if rng.IntN(2) == 0 {
						r.Total++
					}
					again = append(again, r)
				}
				apply(e, again)
			}
		}
	}
	return out
}

// TestCloseSummaryEquivalence closes random store-days through the day summaries and through
// every record (NoSummary) and wants the same results, before and after the summaries are
// rebuilt from the records; on SQLite and PostgreSQL.
func TestCloseSummaryEquivalence(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hub.db")
		st, err := store.OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		summaryEquivalence(t, st, func(q string) error { _, err := raw.Exec(q); return err })
	})
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("needs PostgreSQL (-short)")
		}
		url := os.Getenv("LANEBRIDGE_TEST_PG_URL")
		if url == "" {
			url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		}
		schema := fmt.Sprintf("lbclose_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
		st, err := store.OpenPostgresSchema(ctx, url, schema)
		if err != nil {
			t.Fatalf("PostgreSQL at LANEBRIDGE_TEST_PG_URL: %v", err)
		}
		defer st.Close()
		raw, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			raw.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			raw.Close(ctx)
		}()
		if _, err := raw.Exec(ctx, "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		summaryEquivalence(t, st, func(q string) error { _, err := raw.Exec(ctx, q); return err })
	})
}

// summaryEquivalence fills st with random days, changes postings (and loses records) through
// exec, and compares the two close paths.
func summaryEquivalence(t *testing.T, st *store.DB, exec func(q string) error) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 4))
	days := genDays(t, st, rng, 4, 6)
	// Postings: most done, some rejected, pending, missing, or posted with another total.
	for _, q := range []string{
		`UPDATE postings SET state = 'done' WHERE id % 13 <> 0`,
		`UPDATE postings SET state = 'rejected' WHERE id % 29 = 0`,
		`DELETE FROM postings WHERE id % 31 = 0`,
		`UPDATE postings SET total = total + 1 WHERE id % 37 = 0`,
		`UPDATE postings SET state = 'done' WHERE business_date = '` + benchDate(5) + `'`,
		// Records lost behind the hub's back (as the e2e close test does): the summary is stale.
		`DELETE FROM records WHERE store = 'S1' AND business_date = '` + benchDate(2) + `' AND seq % 4 = 0`,
	} {
		if err := exec(q); err != nil {
			t.Fatal(err)
		}
	}
	fast, slow := &Closer{St: st}, &Closer{St: st, NoSummary: true}
	check := func(stage string) {
		reasons, exact := map[string]int{}, 0
		for _, d := range days {
			for _, noERP := range []bool{false, true} {
				fast.NoERP, slow.NoERP = noERP, noERP
				got, err := fast.compare(ctx, d[0], d[1])
				if err != nil {
					t.Fatal(err)
				}
				want, err := slow.compare(ctx, d[0], d[1])
				if err != nil {
					t.Fatal(err)
				}
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				if string(g) != string(w) {
					t.Fatalf("%s: close %v (noERP %v) through the summary:\n%s\nthrough the records:\n%s", stage, d, noERP, g, w)
				}
				sum, err := st.DaySummary(ctx, d[0], d[1], !noERP)
				if err != nil {
					t.Fatal(err)
				}
				if sum.Exact {
					exact++
					for _, is := range got.Issues {
						reasons[is.Reason]++
					}
				}
			}
		}
		t.Logf("%s: %d of %d closes from the summary; their issues: %v", stage, exact, 2*len(days), reasons)
		// The summary path must have met every reason it can raise, and some days are slow.
		for _, r := range []string{ReasonMissingReceipts, ReasonZMismatchTender, ReasonNoZReport, ReasonReturnUnknownOriginal,
			ReasonReturnExceedsSale, ReasonPostingMissing, ReasonERPMismatch} {
			if reasons[r] == 0 {
				t.Errorf("%s: no close from the summary raised %s", stage, r)
			}
		}
		if exact == 0 || exact == 2*len(days) {
			t.Errorf("%s: %d of %d closes from the summary, want some but not all", stage, exact, 2*len(days))
		}
	}
	check("kept at apply")
	if err := st.RebuildDaySummaries(ctx); err != nil {
		t.Fatal(err)
	}
	check("rebuilt")
}
