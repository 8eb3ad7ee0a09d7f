package availability

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/hub/internal/store/storetest"
	"github.com/lanebridge/lanebridge/protocol"
)

// onEngines runs fn on a fresh hub store on SQLite and on PostgreSQL.
func onEngines(t *testing.T, fn func(t *testing.T, st *store.DB)) { storetest.Engines(t, fn) }

func testConfig() Config {
	var c Config
	c.Channels = []ChannelConfig{
		{Name: "web", Stores: []string{"S1", "S2"}, SafetyStock: Safety{SKU: map[string]string{"X": "2"}}},
		{Name: "market", Stores: []string{"*"}},
	}
	c.SafetyStock.Default = "1"
	return c
}

// fixture is a store with S1..S3 and an engine on it; the hook feeds Changed.
func fixture(t *testing.T, st *store.DB, cfg Config) *Engine {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{"S1", "S2", "S3"} {
		if err := st.AddStore(ctx, id, "x"); err != nil {
			t.Fatal(err)
		}
	}
	e, err := New(st, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.SetAvailabilityHook(e.Notify)
	return e
}

var master = []store.MasterItem{{SKU: "X", Price: 250, Status: protocol.ItemActive}, {SKU: "Y", Price: 100, Status: protocol.ItemActive},
	{SKU: "B", Price: 100, Status: protocol.ItemInactive}}

func pull(t *testing.T, st *store.DB, onHand map[string]map[string]string) {
	t.Helper()
	time.Sleep(2 * time.Millisecond) // the pull is read after every posting finished before it
	if err := st.PutERPStock(context.Background(), master, onHand, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// seq numbers records per store.
type recorder struct{ seq map[string]uint64 }

func (r *recorder) apply(t *testing.T, st *store.DB, storeID string, kind protocol.Kind, sku, q string) {
	t.Helper()
	if r.seq == nil {
		r.seq = map[string]uint64{}
	}
	r.seq[storeID]++
	n := r.seq[storeID]
	rec := protocol.Record{Kind: kind, Store: storeID, Terminal: "T1", Receipt: strconv.FormatUint(n, 10), BusinessDate: "2026-12-01",
		Epoch: "e1", Seq: n, Lines: []protocol.Line{{SKU: sku, Quantity: q, UnitPrice: 100, Amount: 100}}, Total: 100,
		Tenders: []protocol.Tender{{Type: protocol.TenderCash, Amount: 100}}}
	rec.Seal()
	if _, err := st.ApplyBatch(context.Background(), storeID, "e1", []protocol.Record{rec}); err != nil {
		t.Fatal(err)
	}
}

func figure(t *testing.T, e *Engine, sku string) Item {
	t.Helper()
	res, err := e.Figures(context.Background(), Query{SKU: sku})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 {
		t.Fatalf("figures of %s: %+v", sku, res)
	}
	return res.Items[0]
}

// summary is "total|S1=…,S2=…|web=…,market=…".
func summary(it Item) string {
	s := it.Available + "|"
	for i, f := range it.Stores {
		if i > 0 {
			s += ","
		}
		s += f.Store + "=" + f.Available
	}
	s += "|"
	for i, c := range it.Channels {
		if i > 0 {
			s += ","
		}
		s += c.Channel + "=" + c.Available
	}
	return s
}

// postAll finishes every due posting as done, as the outbox would after the ERP took it.
func postAll(t *testing.T, st *store.DB) []store.Posting {
	t.Helper()
	ps, err := st.ClaimPostings(context.Background(), "test", time.Minute, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := st.FinishPosting(context.Background(), p.ID, "test", store.PostingOutcome{Done: true, Ref: "ERP-" + p.Key}); err != nil {
			t.Fatal(err)
		}
	}
	return ps
}

func TestFiguresFollowRecordsPostingsAndPulls(t *testing.T) {
	onEngines(t, func(t *testing.T, st *store.DB) {
		e := fixture(t, st, testConfig())
		var rec recorder
		changed := e.Changed()
		pull(t, st, map[string]map[string]string{"S1": {"X": "10"}, "S2": {"X": "5"}, "S3": {"X": "3.5", "B": "4"}})
		select {
		case <-changed:
		default:
			t.Fatal("no Changed signal after a pull")
		}
		// store = on-hand − safety 1; web = S1+S2 − 2; market = all.
		steps := []struct {
			name string
			do   func()
			want string
		}{
			{"pulled", func() {}, "15.5|S1=9,S2=4,S3=2.5|web=11,market=15.5"},
			{"sale of 3 in S1", func() { (&rec).apply(t, st, "S1", protocol.KindSale, "X", "3") }, "12.5|S1=6,S2=4,S3=2.5|web=8,market=12.5"},
			{"return of 1 in S1", func() { (&rec).apply(t, st, "S1", protocol.KindReturn, "X", "-1") }, "13.5|S1=7,S2=4,S3=2.5|web=9,market=13.5"},
			{"posted: the on-hand does not reflect it yet", func() { postAll(t, st) }, "13.5|S1=7,S2=4,S3=2.5|web=9,market=13.5"},
			{"pull reflecting the sale and return", func() {
				pull(t, st, map[string]map[string]string{"S1": {"X": "8"}, "S2": {"X": "5"}, "S3": {"X": "3.5"}})
			}, "13.5|S1=7,S2=4,S3=2.5|web=9,market=13.5"},
			{"oversold in S2: never below zero", func() { (&rec).apply(t, st, "S2", protocol.KindSale, "X", "9") }, "9.5|S1=7,S2=0,S3=2.5|web=5,market=9.5"},
		}
		var last int64
		for _, s := range steps {
			s.do()
			it := figure(t, e, "X")
			if got := summary(it); got != s.want {
				t.Errorf("%s: X = %s, want %s", s.name, got, s.want)
			}
			if it.Version < last {
				t.Errorf("%s: version %d went below %d", s.name, it.Version, last)
			}
			last = it.Version
		}
		if b := figure(t, e, "B"); b.Available != "0" {
			t.Errorf("inactive SKU B available %s, want 0", b.Available)
		}
	})
}

func TestNegativeOnHandRaisesAndCountsAsZero(t *testing.T) {
	onEngines(t, func(t *testing.T, st *store.DB) {
		e := fixture(t, st, testConfig())
		pull(t, st, map[string]map[string]string{"S1": {"Y": "-3"}, "S2": {"Y": "2"}})
		if got := summary(figure(t, e, "Y")); got != "1|S1=0,S2=1|web=1,market=1" {
			t.Errorf("Y = %s", got)
		}
		ex, err := st.Exceptions(context.Background(), store.ExceptionFilter{Reason: store.ReasonNegativeOnHand})
		if err != nil || len(ex) != 1 || ex[0].Store != "S1" || ex[0].Key != "Y" {
			t.Fatalf("negative on-hand exceptions = %+v, %v", ex, err)
		}
	})
}

func TestReservations(t *testing.T) {
	onEngines(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		e := fixture(t, st, testConfig())
		pull(t, st, map[string]map[string]string{"S1": {"X": "10"}, "S2": {"X": "5"}, "S3": {"X": "3"}})
		req := ReserveRequest{Channel: "market", OrderID: "A-1", Lines: []store.ReservationLine{{SKU: "X", Quantity: "4"}}}
		v, created, err := e.Reserve(ctx, req)
		if err != nil || !created || v.State != store.ReservationOpen || len(v.Lines) != 1 || v.Lines[0].Store != "S1" {
			t.Fatalf("Reserve = %+v, %v, %v; want open, held in S1 (most available)", v, created, err)
		}
		after := figure(t, e, "X")
		if got := summary(after); got != "11|S1=5,S2=4,S3=2|web=7,market=11" {
			t.Errorf("reserved: X = %s", got)
		}
		// A repeat changes nothing: same reservation, same version.
		again, created, err := e.Reserve(ctx, req)
		if err != nil || created || again.ID != v.ID {
			t.Errorf("repeat = %+v, %v, %v", again, created, err)
		}
		if it := figure(t, e, "X"); it.Version != after.Version || summary(it) != summary(after) {
			t.Errorf("repeat changed figures: %s v%d, was v%d", summary(it), it.Version, after.Version)
		}
		other := req
		other.Lines = []store.ReservationLine{{SKU: "X", Quantity: "5"}}
		if _, _, err := e.Reserve(ctx, other); !errors.Is(err, store.ErrReservationMismatch) {
			t.Errorf("other lines for the same order: %v, want ErrReservationMismatch", err)
		}
		// Split across the pool when one store is not enough; a shortfall is held, never below 0.
		big, _, err := e.Reserve(ctx, ReserveRequest{Channel: "web", OrderID: "W-1", Lines: []store.ReservationLine{{SKU: "X", Quantity: "20"}}})
		if err != nil || len(big.Lines) != 2 {
			t.Fatalf("big reservation = %+v, %v", big, err)
		}
		if got := summary(figure(t, e, "X")); got != "2|S1=0,S2=0,S3=2|web=0,market=2" {
			t.Errorf("after big: X = %s", got)
		}
		if _, changed, err := e.Release(ctx, "web", "W-1"); err != nil || !changed {
			t.Fatalf("release = %v, %v", changed, err)
		}
		if _, changed, err := e.Release(ctx, "web", "W-1"); err != nil || changed {
			t.Errorf("second release = %v, %v; want no change", changed, err)
		}
		if got := summary(figure(t, e, "X")); got != "11|S1=5,S2=4,S3=2|web=7,market=11" {
			t.Errorf("released: X = %s", got)
		}
		// Fulfil: one sale posting carrying the order id, exactly once; figures unchanged.
		f, changed, err := e.Fulfil(ctx, "market", "A-1")
		if err != nil || !changed || f.State != store.ReservationFulfilled {
			t.Fatalf("fulfil = %+v, %v, %v", f, changed, err)
		}
		if _, changed, err := e.Fulfil(ctx, "market", "A-1"); err != nil || changed {
			t.Errorf("second fulfil = %v, %v; want no change", changed, err)
		}
		if _, _, err := e.Release(ctx, "market", "A-1"); !errors.Is(err, store.ErrReservationState) {
			t.Errorf("release of a fulfilled order: %v, want ErrReservationState", err)
		}
		if got := summary(figure(t, e, "X")); got != "11|S1=5,S2=4,S3=2|web=7,market=11" {
			t.Errorf("fulfilled: X = %s", got)
		}
		ps := postAll(t, st)
		if len(ps) != 1 || ps[0].Record == nil || ps[0].Record.Receipt != "A-1" || ps[0].Record.Terminal != "market" ||
			ps[0].Store != "S1" || ps[0].Record.Total != 1000 || ps[0].Record.Lines[0].Quantity != "4" {
			t.Fatalf("postings = %+v", ps)
		}
		if n := len(postAll(t, st)); n != 0 {
			t.Errorf("%d postings claimed again", n)
		}
		// The channel's sale is not the store's takings: the store's day close does not count it.
		day := ps[0].BusinessDate
		if dp, err := st.DayPostings(ctx, "S1", day); err != nil || len(dp) != 0 {
			t.Errorf("day postings of S1 = %+v, %v; want none", dp, err)
		}
		if sum, err := st.DaySummary(ctx, "S1", day, true); err != nil || sum.ERP.Postings != 0 || sum.ERP.Posted != 0 {
			t.Errorf("day summary ERP of S1 = %+v, %v; want no postings", sum.ERP, err)
		}
		// The ERP reflects it at the next pull.
		pull(t, st, map[string]map[string]string{"S1": {"X": "6"}, "S2": {"X": "5"}, "S3": {"X": "3"}})
		if got := summary(figure(t, e, "X")); got != "11|S1=5,S2=4,S3=2|web=7,market=11" {
			t.Errorf("pulled after fulfil: X = %s", got)
		}
	})
}

func TestReservationConflictsRaiseExceptions(t *testing.T) {
	onEngines(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		e := fixture(t, st, testConfig())
		pull(t, st, map[string]map[string]string{"S1": {"X": "10", "B": "3"}})
		for _, c := range []struct{ order, sku string }{{"U-1", "NOPE"}, {"U-2", "B"}} {
			_, _, err := e.Reserve(ctx, ReserveRequest{Channel: "web", OrderID: c.order, Lines: []store.ReservationLine{{SKU: c.sku, Quantity: "1"}}})
			if !errors.Is(err, ErrOrderConflict) {
				t.Errorf("%s: %v, want ErrOrderConflict", c.sku, err)
			}
		}
		ex, err := st.Exceptions(ctx, store.ExceptionFilter{Reason: store.ReasonChannelOrderUnknown})
		if err != nil || len(ex) != 2 {
			t.Fatalf("exceptions = %+v, %v", ex, err)
		}
		if vs, _ := st.Reservations(ctx, store.ReservationFilter{}); len(vs) != 0 {
			t.Errorf("conflicting orders reserved: %+v", vs)
		}
		bad := []ReserveRequest{
			{Channel: "nope", OrderID: "1", Lines: []store.ReservationLine{{SKU: "X", Quantity: "1"}}},
			{Channel: "web", OrderID: "", Lines: []store.ReservationLine{{SKU: "X", Quantity: "1"}}},
			{Channel: "web", OrderID: "1"},
			{Channel: "web", OrderID: "1", Lines: []store.ReservationLine{{SKU: "X", Quantity: "-1"}}},
			{Channel: "web", OrderID: "1", Lines: []store.ReservationLine{{SKU: "X", Quantity: "1", Store: "S3"}}}, // not in web's pool
		}
		for i, r := range bad {
			if _, _, err := e.Reserve(ctx, r); !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrUnknownChannel) {
				t.Errorf("bad[%d]: %v", i, err)
			}
		}
	})
}

func TestExpiryOnlyByRuleAndAudited(t *testing.T) {
	onEngines(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		cfg := testConfig()
		e := fixture(t, st, cfg)
		pull(t, st, map[string]map[string]string{"S1": {"X": "10"}})
		if _, _, err := e.Reserve(ctx, ReserveRequest{Channel: "web", OrderID: "E-1", Lines: []store.ReservationLine{{SKU: "X", Quantity: "2"}}}); err != nil {
			t.Fatal(err)
		}
		e.now = func() time.Time { return time.Now().Add(1000 * time.Hour) }
		if n, err := e.Expire(ctx); n != 0 || err != nil {
			t.Fatalf("expired %d (%v) without a rule", n, err)
		}
		e.cfg.Reservations.ExpireAfter = time.Hour
		if n, err := e.Expire(ctx); n != 1 || err != nil {
			t.Fatalf("expired %d (%v), want 1", n, err)
		}
		if got := figure(t, e, "X").Stores[0].Available; got != "9" {
			t.Errorf("after expiry S1 = %s, want 9", got)
		}
		au, err := st.Audit(ctx, 0, 10)
		if err != nil || len(au) == 0 || au[0].Action != "reservation expired" {
			t.Errorf("audit = %+v, %v", au, err)
		}
	})
}

func TestChannelChangesPagesAndSafetyAPI(t *testing.T) {
	onEngines(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		e := fixture(t, st, testConfig())
		pull(t, st, map[string]map[string]string{"S1": {"X": "10", "Y": "4"}})
		figs, latest, err := e.ChannelChanges(ctx, "web", 0, 1)
		if err != nil || len(figs) != 1 {
			t.Fatalf("page 1 = %+v, %v", figs, err)
		}
		seen := map[string]string{figs[0].SKU: figs[0].Available}
		for {
			more, next, err := e.ChannelChanges(ctx, "web", latest, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range more {
				seen[f.SKU] = f.Available
			}
			if next == latest {
				break
			}
			latest = next
		}
		if seen["X"] != "7" || seen["Y"] != "3" || len(seen) != 3 { // B too (inactive: 0)
			t.Errorf("paged changes = %v", seen)
		}
		if figs, _, _ := e.ChannelChanges(ctx, "web", latest, 10); len(figs) != 0 {
			t.Errorf("changes after latest: %+v", figs)
		}
		if err := e.SetSafetyStock(ctx, "web", "sku", "Y", "3", false); err != nil {
			t.Fatal(err)
		}
		figs, _, err = e.ChannelChanges(ctx, "web", latest, 10)
		if err != nil || len(figs) == 0 {
			t.Fatalf("after safety change: %+v, %v", figs, err)
		}
		for _, f := range figs {
			if f.SKU == "Y" && f.Available != "0" {
				t.Errorf("Y on web with safety 3 = %s, want 0", f.Available)
			}
		}
		if err := e.SetSafetyStock(ctx, "", "category", "nope", "1", false); !errors.Is(err, ErrBadRequest) {
			t.Errorf("unknown category: %v", err)
		}
	})
}

func TestDriftAlert(t *testing.T) {
	onEngines(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		cfg := testConfig()
		cfg.Drift.Threshold, cfg.Drift.For = "1", 10*time.Minute
		e := fixture(t, st, cfg)
		pull(t, st, map[string]map[string]string{"S1": {"X": "10"}})
		now := time.Now()
		e.now = func() time.Time { return now }
		if err := e.RecordShown(ctx, "web", "X", "9", now); err != nil { // truth 7
			t.Fatal(err)
		}
		for _, step := range []struct {
			after time.Duration
			open  int
		}{{0, 0}, {5 * time.Minute, 0}, {11 * time.Minute, 1}} {
			now = now.Add(step.after)
			if err := e.EvaluateDrift(ctx); err != nil {
				t.Fatal(err)
			}
			as, _ := st.Alerts(ctx, store.AlertFilter{State: store.AlertOpen})
			if len(as) != step.open {
				t.Fatalf("+%s: open alerts %+v, want %d", step.after, as, step.open)
			}
		}
		if err := e.RecordShown(ctx, "web", "X", "7", now); err != nil {
			t.Fatal(err)
		}
		if err := e.EvaluateDrift(ctx); err != nil {
			t.Fatal(err)
		}
		if as, _ := st.Alerts(ctx, store.AlertFilter{State: store.AlertOpen}); len(as) != 0 {
			t.Errorf("drift not cleared: %+v", as)
		}
	})
}
