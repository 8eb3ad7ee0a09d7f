package availability

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// model recomputes every figure from scratch from the operations applied so far: the ERP's
// last on-hand per store, every posting with the step it was done at, every reservation's
// state and lines. Nothing in it is incremental.
type model struct {
	step     int
	onHand   map[string]map[string]Qty // store -> sku -> on-hand of its last pull
	pulledAt map[string]int            // store -> step of its last pull
	postings map[string]*mPosting      // store|terminal|receipt
	resv     map[string]*store.Reservation
}

type mPosting struct {
	store string
	lines map[string]Qty
	done  int // step it was done at; 0: not yet
}

func (m *model) unreflected(p *mPosting) bool {
	return p.done == 0 || p.done >= m.pulledAt[p.store]
}

// storeFigure is max(0, on-hand − unreflected lines − open reservations − 1 (safety)).
func (m *model) storeFigure(st, sku string) Qty {
	f := m.onHand[st][sku] - 1_000_000
	for _, p := range m.postings {
		if p.store == st && m.unreflected(p) {
			f -= p.lines[sku]
		}
	}
	for _, v := range m.resv {
		if v.State != store.ReservationOpen {
			continue
		}
		for _, l := range v.Lines {
			if l.Store == st && l.SKU == sku {
				q, _ := protocol.ParseQty(l.Quantity)
				f -= q
			}
		}
	}
	return max(0, f)
}

var (
	propStores = []string{"S1", "S2", "S3"}
	propSKUs   = []string{"X", "Y"}
)

func (m *model) want(cfg Config, sku string) string {
	var total Qty
	figs := map[string]Qty{}
	s := ""
	for _, st := range propStores {
		figs[st] = m.storeFigure(st, sku)
		total += figs[st]
		s += fmt.Sprintf("%s=%s,", st, figs[st])
	}
	s = total.String() + "|" + s + "|"
	for _, c := range cfg.Channels {
		var pool Qty
		for _, st := range propStores {
			if c.inPool(st) {
				pool += figs[st]
			}
		}
		safety, _ := protocol.ParseQty(c.SafetyStock.SKU[sku])
		s += fmt.Sprintf("%s=%s,", c.Name, max(0, pool-safety))
	}
	return s
}

// got is the engine's figures in want's shape (a store without inputs shows 0).
func got(it Item) string {
	figs := map[string]string{}
	for _, f := range it.Stores {
		figs[f.Store] = f.Available
	}
	s := ""
	for _, st := range propStores {
		s += fmt.Sprintf("%s=%s,", st, cmpOr(figs[st], "0"))
	}
	s = it.Available + "|" + s + "|"
	for _, c := range it.Channels {
		s += c.Channel + "=" + c.Available + ","
	}
	return s
}

func cmpOr(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

// TestIncrementalEqualsFullRecompute applies random sales, returns, postings, pulls and
// reservation changes to the real store and engine and compares, after every operation, each
// figure with the model's computation from scratch.
func TestIncrementalEqualsFullRecompute(t *testing.T) {
	onEngines(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		cfg := testConfig()
		e := fixture(t, st, cfg)
		ops := 250
		if testing.Short() || t.Name() == "TestIncrementalEqualsFullRecompute/postgres" {
			ops = 120
		}
		rng := rand.New(rand.NewPCG(14, 2026))
		m := &model{onHand: map[string]map[string]Qty{}, pulledAt: map[string]int{}, postings: map[string]*mPosting{}, resv: map[string]*store.Reservation{}}
		seq := map[string]uint64{}
		var orders []string
		requested := map[string][]store.ReservationLine{}
		for i := 0; i < ops; i++ {
			m.step++
			op := rng.IntN(10)
			switch {
			case op < 4 || m.step == 1: // a pull of every store
				if m.step == 1 || op < 1 {
					oh := map[string]map[string]string{}
					for _, s := range propStores {
						oh[s] = map[string]string{}
						m.onHand[s] = map[string]Qty{}
						for _, sku := range propSKUs {
							q := Qty(rng.IntN(12)-1) * 1_000_000 // sometimes negative: counted as 0
							oh[s][sku], m.onHand[s][sku] = q.String(), q
						}
						m.pulledAt[s] = m.step
					}
					pull(t, st, oh)
					continue
				}
				fallthrough
			case op < 6: // a sale or a return
				s, sku := propStores[rng.IntN(3)], propSKUs[rng.IntN(2)]
				q := Qty(rng.IntN(3)+1) * 500_000 // 0.5 .. 1.5
				kind := protocol.KindSale
				if rng.IntN(4) == 0 {
					kind, q = protocol.KindReturn, -q
				}
				seq[s]++
				r := protocol.Record{Kind: kind, Store: s, Terminal: "T1", Receipt: fmt.Sprint(seq[s]), BusinessDate: "2026-12-01", Epoch: "e1", Seq: seq[s],
					Lines: []protocol.Line{{SKU: sku, Quantity: q.String(), UnitPrice: 100, Amount: 100}}, Total: 100}
				r.Seal()
				if _, err := st.ApplyBatch(ctx, s, "e1", []protocol.Record{r}); err != nil {
					t.Fatal(err)
				}
				m.postings[s+"|T1|"+r.Receipt] = &mPosting{store: s, lines: map[string]Qty{sku: q}}
			case op < 7: // the outbox posts a few
				ps, err := st.ClaimPostings(ctx, "prop", 60e9, rng.IntN(3)+1)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range ps {
					if err := st.FinishPosting(ctx, p.ID, "prop", store.PostingOutcome{Done: true, Ref: "R"}); err != nil {
						t.Fatal(err)
					}
					mp := m.postings[p.Store+"|"+p.Terminal+"|"+p.Receipt]
					if mp == nil {
						t.Fatalf("posting %s not in the model", p.Key)
					}
					mp.done = m.step
				}
			case op < 8: // a reservation, sometimes repeated
				if len(orders) > 0 && rng.IntN(4) == 0 {
					o := orders[rng.IntN(len(orders))]
					v := m.resv[o]
					if _, created, err := e.Reserve(ctx, ReserveRequest{Channel: v.Channel, OrderID: v.OrderID, Lines: requested[o]}); err != nil || created {
						t.Fatalf("repeat %s: created %v, %v", o, created, err)
					}
					continue
				}
				ch := cfg.Channels[rng.IntN(2)].Name
				id := fmt.Sprintf("O%d", m.step)
				lines := []store.ReservationLine{{SKU: propSKUs[rng.IntN(2)], Quantity: fmt.Sprint(rng.IntN(4) + 1)}}
				v, created, err := e.Reserve(ctx, ReserveRequest{Channel: ch, OrderID: id, Lines: lines})
				if err != nil || !created {
					t.Fatalf("reserve: %v, %v", created, err)
				}
				requested[ch+"/"+id] = lines
				m.resv[ch+"/"+id] = &v
				orders = append(orders, ch+"/"+id)
			default: // release or fulfil an order
				if len(orders) == 0 {
					continue
				}
				o := orders[rng.IntN(len(orders))]
				v := m.resv[o]
				if rng.IntN(2) == 0 {
					_, _, err := e.Release(ctx, v.Channel, v.OrderID)
					if err == nil && v.State == store.ReservationOpen {
						v.State = store.ReservationReleased
					}
					continue
				}
				_, changed, err := e.Fulfil(ctx, v.Channel, v.OrderID)
				if err == nil && changed {
					v.State = store.ReservationFulfilled
					for _, l := range v.Lines {
						k := l.Store + "|" + v.Channel + "|" + v.OrderID
						mp := m.postings[k]
						if mp == nil {
							mp = &mPosting{store: l.Store, lines: map[string]Qty{}}
							m.postings[k] = mp
						}
						q, _ := protocol.ParseQty(l.Quantity)
						mp.lines[l.SKU] += q
					}
				}
			}
			for _, sku := range propSKUs {
				res, err := e.Figures(ctx, Query{SKU: sku})
				if err != nil {
					t.Fatal(err)
				}
				var g string
				if len(res.Items) == 1 {
					g = got(res.Items[0])
				}
				if w := m.want(cfg, sku); g != w {
					t.Fatalf("step %d (op %d): %s incremental %s, from scratch %s", m.step, op, sku, g, w)
				}
			}
		}
		if !slices.ContainsFunc(slices.Collect(maps.Values(m.resv)), func(v *store.Reservation) bool { return v.State == store.ReservationFulfilled }) {
			t.Error("the run fulfilled no reservation: widen it")
		}
	})
}
