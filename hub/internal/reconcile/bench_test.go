package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// Close benchmarks (issue 11, target 4). The stores are real SQLite files filled through
// ApplyBatch (one transaction per store-day, as the hub applies them) with every posting then
// marked done in one UPDATE, so each store-day closes clean with its ERP leg compared.
//
//	go test -run '^$' -bench CloseHistory -benchtime 20x ./hub/internal/reconcile/
//	LANEBRIDGE_BENCH_CLOSE_STORES=1000 LANEBRIDGE_BENCH_CLOSE_BASELINE=1 go test -run '^$' -bench CloseFleet -benchtime 1x -timeout 60m ./hub/internal/reconcile/

const benchTerminals = 4

func benchDate(d int) string {
	return time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d).Format(time.DateOnly)
}

// benchDay returns the records of one store-day: perDay-benchTerminals sales spread over the
// terminals with contiguous receipt numbers, and one matching Z report per terminal.
func benchDay(storeID, epoch string, seq *uint64, day, perDay int) []protocol.Record {
	date := benchDate(day)
	out := make([]protocol.Record, 0, perDay)
	cash := make([]int64, benchTerminals)
	tax := make([]int64, benchTerminals)
	for i := 0; i < perDay-benchTerminals; i++ {
		t := i % benchTerminals
		total := int64(100 + i%900)
		*seq++
		r := protocol.Record{Kind: protocol.KindSale, Store: storeID, Terminal: "T" + strconv.Itoa(t+1),
			Receipt: strconv.Itoa(day*100000 + i/benchTerminals + 1), BusinessDate: date, Epoch: epoch, Seq: *seq,
			CapturedAt: time.Date(2026, 10, 1, 10, 0, 0, 0, time.UTC),
			Lines:      []protocol.Line{{SKU: "SKU" + strconv.Itoa(i%50), Description: "Item", Quantity: "1", UnitPrice: total - 8, Amount: total - 8}},
			Taxes:      []protocol.Tax{{Code: "T1", Amount: 8}},
			Tenders:    []protocol.Tender{{Type: protocol.TenderCash, Amount: total}}, Total: total}
		r.Seal()
		out = append(out, r)
		cash[t] += total
		tax[t] += 8
	}
	for t := range benchTerminals {
		*seq++
		r := protocol.Record{Kind: protocol.KindZReport, Store: storeID, Terminal: "T" + strconv.Itoa(t+1),
			Receipt: "Z" + strconv.Itoa(day), BusinessDate: date, Epoch: epoch, Seq: *seq, CapturedAt: time.Date(2026, 10, 2, 1, 0, 0, 0, time.UTC),
			Z: &protocol.ZReport{Tenders: []protocol.TenderTotal{{Type: protocol.TenderCash, Amount: cash[t]}}, Taxes: []protocol.Tax{{Code: "T1", Amount: tax[t]}}}}
		r.Seal()
		out = append(out, r)
	}
	return out
}

// fillBench creates a SQLite store at path with stores × days × perDay records.
func fillBench(tb testing.TB, path string, stores, days, perDay int) *store.DB {
	tb.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	for s := range stores {
		id := fmt.Sprintf("S%04d", s)
		if err := st.AddStore(ctx, id, "x"); err != nil {
			tb.Fatal(err)
		}
		var seq uint64
		for d := range days {
			if res, err := st.ApplyBatch(ctx, id, "e1", benchDay(id, "e1", &seq, d, perDay)); err != nil || res.Applied != perDay {
				tb.Fatalf("apply %s day %d: %+v, %v", id, d, res, err)
			}
		}
	}
	// Every posting done, directly in the file: the ERP worker would take hours for this.
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE postings SET state = 'done', posted_at = updated_at`); err != nil {
		tb.Fatal(err)
	}
	return st
}

func benchCloser(st *store.DB) *Closer { return &Closer{St: st} }

// cpuTime is the process's user+system CPU time so far: on this shared machine it says more
// than the wall clock, which other processes stretch.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func closeClean(tb testing.TB, c *Closer, storeID, date string, perDay int) {
	res, err := c.Close(context.Background(), storeID, date)
	if err != nil {
		tb.Fatal(err)
	}
	if res.State != StateClosed || res.ERP.Postable != perDay-benchTerminals || res.ERP.Done != res.ERP.Postable {
		tb.Fatalf("close %s %s: state %s, postable %d, done %d, issues %v", storeID, date, res.State, res.ERP.Postable, res.ERP.Done, res.Issues)
	}
}

// BenchmarkCloseHistory closes the same store-day (2,000 transactions) with 1 and with 30 days
// of the store's history retained, in the same run; ratio is 30-day/1-day and should be ~1.
func BenchmarkCloseHistory(b *testing.B) {
	const stores, perDay = 3, 2000
	dir := b.TempDir()
	one := fillBench(b, filepath.Join(dir, "one.db"), stores, 1, perDay)
	defer one.Close()
	thirty := fillBench(b, filepath.Join(dir, "thirty.db"), stores, 30, perDay)
	defer thirty.Close()
	c1, c30 := benchCloser(one), benchCloser(thirty)
	var d1, d30, cpu1, cpu30 time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s := fmt.Sprintf("S%04d", i%stores)
		t0, c0 := time.Now(), cpuTime()
		closeClean(b, c1, s, benchDate(0), perDay)
		t1, c1t := time.Now(), cpuTime()
		closeClean(b, c30, s, benchDate(15), perDay) // a day in the middle of the history
		d1, d30 = d1+t1.Sub(t0), d30+time.Since(t1)
		cpu1, cpu30 = cpu1+c1t-c0, cpu30+cpuTime()-c1t
	}
	n := float64(b.N)
	b.ReportMetric(float64(d1.Microseconds())/1000/n, "ms/close-1day")
	b.ReportMetric(float64(d30.Microseconds())/1000/n, "ms/close-30days")
	b.ReportMetric(float64(d30)/float64(d1), "ratio-30/1")
	b.ReportMetric(float64(cpu1.Microseconds())/1000/n, "cpu-ms/close-1day")
	b.ReportMetric(float64(cpu30.Microseconds())/1000/n, "cpu-ms/close-30days")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCloseSummary closes the same 2,000-transaction store-days through the day summaries
// and through every record (Closer.NoSummary, the path before migration 0013) in the same run;
// ratio is summary/records.
func BenchmarkCloseSummary(b *testing.B) {
	const stores, perDay = 3, 2000
	st := fillBench(b, filepath.Join(b.TempDir(), "sum.db"), stores, 2, perDay)
	defer st.Close()
	fast, slow := benchCloser(st), &Closer{St: st, NoSummary: true}
	var df, ds, cf, cs time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s := fmt.Sprintf("S%04d", i%stores)
		t0, c0 := time.Now(), cpuTime()
		closeClean(b, slow, s, benchDate(1), perDay)
		t1, c1 := time.Now(), cpuTime()
		closeClean(b, fast, s, benchDate(1), perDay)
		ds, df = ds+t1.Sub(t0), df+time.Since(t1)
		cs, cf = cs+c1-c0, cf+cpuTime()-c1
	}
	n := float64(b.N)
	b.ReportMetric(float64(ds.Microseconds())/1000/n, "ms/close-records")
	b.ReportMetric(float64(df.Microseconds())/1000/n, "ms/close-summary")
	b.ReportMetric(float64(cs.Microseconds())/1000/n, "cpu-ms/close-records")
	b.ReportMetric(float64(cf.Microseconds())/1000/n, "cpu-ms/close-summary")
	b.ReportMetric(float64(cf)/float64(cs), "cpu-ratio-summary/records")
	b.ReportMetric(0, "ns/op")
	// What migration 0013's backfill costs per stored record.
	b.StopTimer()
	t0, c0 := time.Now(), cpuTime()
	if err := st.RebuildDaySummaries(context.Background()); err != nil {
		b.Fatal(err)
	}
	all := float64(stores * 2 * perDay)
	b.ReportMetric(float64(time.Since(t0).Microseconds())/all, "µs/record-rebuilt")
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/all, "cpu-µs/record-rebuilt")
}

// BenchmarkCloseFleet closes one business day of LANEBRIDGE_BENCH_CLOSE_STORES stores (1,000
// for the target) × 2,000 transactions, LANEBRIDGE_BENCH_CLOSE_DAYS retained (default 1),
// the way the Scheduler does (Closer.CloseDays, LANEBRIDGE_BENCH_CLOSE_WORKERS at once,
// default 2). Filling 1,000 stores takes minutes; run it with -benchtime 1x.
func BenchmarkCloseFleet(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("LANEBRIDGE_BENCH_CLOSE_STORES"))
	if n <= 0 {
		b.Skip("set LANEBRIDGE_BENCH_CLOSE_STORES (1000 for issue 11 target 4)")
	}
	days, _ := strconv.Atoi(os.Getenv("LANEBRIDGE_BENCH_CLOSE_DAYS"))
	days = max(days, 1)
	const perDay = 2000
	t0 := time.Now()
	st := fillBench(b, filepath.Join(b.TempDir(), "fleet.db"), n, days, perDay)
	defer st.Close()
	b.Logf("filled %d stores × %d days × %d records in %s", n, days, perDay, time.Since(t0).Round(time.Second))
	c := benchCloser(st)
	workers, _ := strconv.Atoi(os.Getenv("LANEBRIDGE_BENCH_CLOSE_WORKERS"))
	var todo [][2]string
	for s := range n {
		todo = append(todo, [2]string{fmt.Sprintf("S%04d", s), benchDate(days - 1)})
	}
	// The reference path (every record decoded, Closer.NoSummary) on the same file, first.
	baseline := os.Getenv("LANEBRIDGE_BENCH_CLOSE_BASELINE") != ""
	runs := map[string][]float64{} // every run's figures, logged as median [min, max]
	report := func(v float64, unit string) {
		b.ReportMetric(v, unit)
		runs[unit] = append(runs[unit], v)
	}
	b.ResetTimer()
	for b.Loop() {
		if baseline {
			old := &Closer{St: st, NoSummary: true}
			t, cpu := time.Now(), cpuTime()
			old.CloseDays(context.Background(), todo, workers, false)
			report(time.Since(t).Seconds(), "s/fleet-close-records")
			report((cpuTime() - cpu).Seconds(), "cpu-s/fleet-close-records")
		}
		t, cpu := time.Now(), cpuTime()
		c.CloseDays(context.Background(), todo, workers, false)
		report(time.Since(t).Seconds(), "s/fleet-close")
		report((cpuTime() - cpu).Seconds(), "cpu-s/fleet-close")
	}
	b.StopTimer()
	for _, unit := range slices.Sorted(maps.Keys(runs)) {
		v := slices.Sorted(slices.Values(runs[unit]))
		b.Logf("%s: median %.1f [%.1f, %.1f] over %d runs", unit, v[len(v)/2], v[0], v[len(v)-1], len(v))
	}
	for _, d := range todo { // every day closed clean
		cr, err := st.GetClose(context.Background(), d[0], d[1])
		if err != nil || cr.State != StateClosed {
			b.Fatalf("close %v: %+v, %v", d, cr, err)
		}
	}
	b.ReportMetric(float64(n*perDay), "records/day")
}
