package availability

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// The oversell simulation (issue 14): a retailer's stores, a web shop and two marketplaces
// drawing on shared stock, with daily and weekly demand peaks and two promotion days, run
// through the real engine and hub store (SQLite): store sales are applied as records, channel
// orders reserve and are fulfilled into postings, the ERP is simulated (it posts everything
// hourly and its on-hand is the physical stock then). What differs between the two runs is only
// what the channels display: with Lanebridge's feed, the engine's channel figure 5 s after each
// change (the latency target); with a batch sync, the same figures every 30 minutes. An order
// is accepted when the channel displays stock; it is oversold when, at that moment, the pool's
// physical stock less the orders already accepted and not shipped is below its quantity (the
// simulator's own count, not the engine's). Simulated time; the same random streams in both runs.

type simParams struct {
	Days, Stores, SKUs int
	Seed               uint64
}

type simResult struct {
	Mode                          string
	StoreSales, Orders, Accepted  int
	Oversold, Lost, Writes, Pulls int
	Elapsed                       time.Duration
}

// demand is the hour-of-day shape of store and online demand (peaks at lunch and evening).
func demand(t time.Time, online bool) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	var f float64
	if online {
		f = 0.3 + math.Exp(-sq(h-12.5)/4) + 1.6*math.Exp(-sq(h-20.5)/3)
	} else if h >= 8 && h < 21 {
		f = 0.4 + math.Exp(-sq(h-12.5)/2) + 1.2*math.Exp(-sq(h-17.5)/3)
	}
	switch t.Weekday() {
	case time.Saturday:
		f *= 1.6
	case time.Sunday:
		if !online {
			f *= 0.5
		}
	}
	if day := t.YearDay(); online && (day%30 == 10 || day%30 == 24) { // promotion days
		f *= 3
	}
	return f
}

func sq(x float64) float64 { return x * x }

// poisson draws from Poisson(l) (small l).
func poisson(rng *rand.Rand, l float64) int {
	n, p, e := 0, 1.0, math.Exp(-l)
	for {
		p *= rng.Float64()
		if p <= e {
			return n
		}
		n++
	}
}

type simOrder struct {
	channel, id, sku string
	qty              int
	shipAt           time.Time
	lines            []store.ReservationLine
}

func runOversellSim(t testing.TB, p simParams, batch bool) simResult {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "sim.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stores := make([]string, p.Stores)
	for i := range stores {
		stores[i] = fmt.Sprintf("S%03d", i+1)
		if err := st.AddStore(ctx, stores[i], "x"); err != nil {
			t.Fatal(err)
		}
	}
	var cfg Config
	cfg.Channels = []ChannelConfig{{Name: "webshop", Stores: []string{"*"}}, {Name: "market-a", Stores: []string{"*"}},
		{Name: "market-b", Stores: stores[:p.Stores/2]}}
	e, err := New(st, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	skus := make([]string, p.SKUs)
	var items []store.MasterItem
	for i := range skus {
		skus[i] = fmt.Sprintf("SKU%02d", i+1)
		items = append(items, store.MasterItem{SKU: skus[i], Price: 1999, Status: protocol.ItemActive})
	}
	// Physical stock (1-3 units per store and SKU), restocked every morning at 06:00 to its level; popularity is Zipf-like.
	level := map[string]int{}
	phys := map[[2]string]int{}
	held := map[[2]string]int{} // units set aside for accepted online orders
	pop := make([]float64, p.SKUs)
	var popSum float64
	rng := rand.New(rand.NewPCG(p.Seed, 1))
	for i, k := range skus {
		pop[i] = 1 / float64(i+1)
		popSum += pop[i]
		level[k] = 1 + rng.IntN(3)
	}
	pick := func(r *rand.Rand) string {
		x := r.Float64() * popSum
		for i, w := range pop {
			if x -= w; x <= 0 {
				return skus[i]
			}
		}
		return skus[len(skus)-1]
	}
	restock := func() {
		for _, s := range stores {
			for _, k := range skus {
				phys[[2]string{s, k}] = max(phys[[2]string{s, k}], level[k])
			}
		}
	}
	res := simResult{Mode: "Lanebridge feed (5 s)"}
	if batch {
		res.Mode = "batch sync every 30 min"
	}
	erpCycle := func() {
		for {
			ps, err := st.ClaimPostings(ctx, "erp", time.Minute, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range ps {
				if err := st.FinishPosting(ctx, q.ID, "erp", store.PostingOutcome{Done: true, Ref: "ERP"}); err != nil {
					t.Fatal(err)
				}
			}
			if len(ps) < 1000 {
				break
			}
		}
		time.Sleep(time.Millisecond) // the pull is read after the postings finished
		oh := map[string]map[string]string{}
		for _, s := range stores {
			oh[s] = map[string]string{}
			for _, k := range skus {
				oh[s][k] = strconv.Itoa(phys[[2]string{s, k}])
			}
		}
		if err := st.PutERPStock(ctx, items, oh, time.Now()); err != nil {
			t.Fatal(err)
		}
		res.Pulls++
	}
	restock()
	erpCycle()
	// What each channel displays, refreshed from ChannelChanges.
	display := map[[2]string]Qty{}
	cursor := map[string]int64{}
	refresh := func() {
		for _, c := range cfg.Channels {
			for {
				figs, latest, err := e.ChannelChanges(ctx, c.Name, cursor[c.Name], 1000)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range figs {
					q, _ := protocol.ParseQty(f.Available)
					display[[2]string{c.Name, f.SKU}] = q
				}
				done := latest == cursor[c.Name] || len(figs) < 1000
				cursor[c.Name] = latest
				if done {
					break
				}
			}
		}
	}
	refresh()
	inPool := map[string]func(string) bool{}
	for _, c := range cfg.Channels {
		inPool[c.Name] = c.inPool
	}
	var open []*simOrder // accepted, not shipped
	seq := map[string]uint64{}
	// Demand is calibrated to the stock: an ordinary day's online demand is 120 % of the
	// morning's stock and the stores' 60 %, more with the peaks, so popular SKUs sell out most
	// days before the next delivery. Rates are per minute at demand factor 1 (≈ 936 and 684 minutes a
	// day online and in store).
	daily := float64(p.Stores * p.SKUs * 2) // restocked every morning
	online := 1.2 * daily / 936
	rate := map[string]float64{"webshop": 0.45 * online, "market-a": 0.35 * online, "market-b": 0.2 * online}
	storeRate := 0.6 * daily / float64(p.Stores) / 684
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday
	dirtySince := time.Time{}                             // first change not yet shown (feed mode)
	nextSync := start.Add(30 * time.Minute)
	begun := time.Now()
	changed := func(at time.Time) {
		res.Writes++
		if dirtySince.IsZero() {
			dirtySince = at
		}
	}
	show := func(now time.Time) {
		if batch {
			for !now.Before(nextSync) {
				refresh()
				nextSync = nextSync.Add(30 * time.Minute)
			}
			return
		}
		if !dirtySince.IsZero() && now.Sub(dirtySince) >= 5*time.Second {
			refresh()
			dirtySince = time.Time{}
		}
	}
	type event struct {
		at    time.Time
		store string // a store sale, or
		ch    string // a channel order
	}
	for minute := 0; minute < p.Days*24*60; minute++ {
		now := start.Add(time.Duration(minute) * time.Minute)
		if now.Hour() == 6 && now.Minute() == 0 && minute > 0 {
			restock()
		}
		if now.Minute() == 0 {
			erpCycle()
			changed(now)
		}
		var evs []event
		for _, s := range stores {
			for range poisson(rng, storeRate*demand(now, false)) {
				evs = append(evs, event{at: now.Add(time.Duration(rng.IntN(60)) * time.Second), store: s})
			}
		}
		for _, c := range cfg.Channels {
			for range poisson(rng, rate[c.Name]*demand(now, true)) {
				evs = append(evs, event{at: now.Add(time.Duration(rng.IntN(60)) * time.Second), ch: c.Name})
			}
		}
		slices.SortStableFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
		for _, ev := range evs {
			show(ev.at)
			sku := pick(rng)
			if ev.store != "" {
				k := [2]string{ev.store, sku}
				if phys[k]-held[k] <= 0 {
					continue // the shelf is empty (units held for online orders are set aside): no sale
				}
				phys[k]--
				seq[ev.store]++
				n := seq[ev.store]
				r := protocol.Record{Kind: protocol.KindSale, Store: ev.store, Terminal: "T1", Receipt: strconv.FormatUint(n, 10),
					BusinessDate: ev.at.Format(time.DateOnly), Epoch: "e1", Seq: n, Total: 1999,
					Lines:   []protocol.Line{{SKU: sku, Quantity: "1", UnitPrice: 1999, Amount: 1999}},
					Tenders: []protocol.Tender{{Type: protocol.TenderCard, Amount: 1999}}}
				r.Seal()
				if _, err := st.ApplyBatch(ctx, ev.store, "e1", []protocol.Record{r}); err != nil {
					t.Fatal(err)
				}
				res.StoreSales++
				changed(ev.at)
				continue
			}
			res.Orders++
			qty := 1
			if rng.IntN(8) == 0 {
				qty = 2
			}
			if display[[2]string{ev.ch, sku}] < Qty(qty)*1_000_000 {
				res.Lost++ // shown out of stock: no order
				continue
			}
			res.Accepted++
			truth := 0
			for _, s := range stores {
				if inPool[ev.ch](s) {
					truth += phys[[2]string{s, sku}]
				}
			}
			for _, o := range open {
				for _, l := range o.lines {
					if l.SKU == sku && inPool[ev.ch](l.Store) {
						q, _ := strconv.Atoi(l.Quantity)
						truth -= q
					}
				}
			}
			o := &simOrder{channel: ev.ch, id: fmt.Sprintf("%s-%d", ev.ch, res.Orders), sku: sku, qty: qty, shipAt: ev.at.Add(2 * time.Hour)}
			if truth < qty {
				res.Oversold++ // accepted with no stock: cancelled
				continue
			}
			v, _, err := e.Reserve(ctx, ReserveRequest{Channel: ev.ch, OrderID: o.id, Lines: []store.ReservationLine{{SKU: sku, Quantity: strconv.Itoa(qty)}}})
			if err != nil {
				t.Fatal(err)
			}
			o.lines = v.Lines
			for _, l := range v.Lines {
				q, _ := strconv.Atoi(l.Quantity)
				held[[2]string{l.Store, l.SKU}] += q
			}
			open = append(open, o)
			changed(ev.at)
		}
		// Ship what is due: stock leaves the stores, the order becomes a posting.
		kept := open[:0]
		for _, o := range open {
			if now.Before(o.shipAt) {
				kept = append(kept, o)
				continue
			}
			for _, l := range o.lines {
				q, _ := strconv.Atoi(l.Quantity)
				k := [2]string{l.Store, l.SKU}
				phys[k] = max(0, phys[k]-q)
				held[k] -= q
			}
			if _, _, err := e.Fulfil(ctx, o.channel, o.id); err != nil {
				t.Fatal(err)
			}
			changed(now)
		}
		open = kept
	}
	res.Elapsed = time.Since(begun)
	return res
}

// TestOversellSimulation runs the simulation short (2 days, 40 stores, 10 SKUs) in the normal tests and
// for 30 days with 40 stores when LANEBRIDGE_SIM_DAYS=30 (make availsim), which also writes the
// report to LANEBRIDGE_SIM_REPORT.
func TestOversellSimulation(t *testing.T) {
	p := simParams{Days: 2, Stores: 40, SKUs: 10, Seed: 14}
	if d, _ := strconv.Atoi(os.Getenv("LANEBRIDGE_SIM_DAYS")); d > 0 {
		p = simParams{Days: d, Stores: 40, SKUs: 20, Seed: 14}
	} else if testing.Short() {
		t.Skip("simulation (-short)")
	}
	feed := runOversellSim(t, p, false)
	batch := runOversellSim(t, p, true)
	reduction := 1 - float64(feed.Oversold)/float64(max(batch.Oversold, 1))
	t.Logf("%+v", feed)
	t.Logf("%+v", batch)
	t.Logf("oversold orders %d with the feed vs %d with a 30-minute batch sync: %.1f %% fewer", feed.Oversold, batch.Oversold, 100*reduction)
	if batch.Oversold < 20 {
		t.Fatalf("the batch sync oversold only %d orders: the scenario is too mild to compare", batch.Oversold)
	}
	if reduction < 0.95 {
		t.Errorf("the feed oversold %d orders, the batch sync %d: %.1f %% fewer, want at least 95 %%", feed.Oversold, batch.Oversold, 100*reduction)
	}
	if path := os.Getenv("LANEBRIDGE_SIM_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(simReport(p, feed, batch, reduction)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func simReport(p simParams, feed, batch simResult, reduction float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Oversold orders: Lanebridge's feed vs a 30-minute batch sync\n\n")
	fmt.Fprintf(&b, "Generated by `make availsim` (`TestOversellSimulation` in hub/internal/availability, seed %d). A simulation:\n", p.Seed)
	fmt.Fprintf(&b, "%d days, %d stores, %d SKUs, a web shop and a marketplace selling from every store and a second marketplace\n", p.Days, p.Stores, p.SKUs)
	fmt.Fprintf(&b, "from half of them, on shared stock restocked every morning; daily lunch and evening peaks, Saturdays ×1.6, two promotion\n")
	fmt.Fprintf(&b, "days ×3 online. Real engine and hub store (SQLite): sales applied as records, orders reserved and fulfilled\n")
	fmt.Fprintf(&b, "into postings, a simulated ERP posting hourly. An order is oversold when accepted while the pool's physical stock,\n")
	fmt.Fprintf(&b, "less accepted orders not yet shipped, is below its quantity. Only what the channels display differs.\n\n")
	fmt.Fprintf(&b, "| channels updated by | store sales | channel orders | accepted | shown out of stock | oversold | run time |\n|---|---|---|---|---|---|---|\n")
	for _, r := range []simResult{feed, batch} {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s |\n", r.Mode, r.StoreSales, r.Orders, r.Accepted, r.Lost, r.Oversold, r.Elapsed.Round(time.Second))
	}
	fmt.Fprintf(&b, "\nOversold orders: %.1f %% fewer with the feed (target ≥ 95 %%).\n", 100*reduction)
	return b.String()
}
