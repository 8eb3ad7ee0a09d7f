// Package sim generates realistic canonical POS records for tests, demos and benchmarks:
// sales with discounts, taxes and split tenders, returns referencing an earlier sale, voids,
// no-sales and paid-outs, deterministic for a seed.
package sim

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// Mix is the relative weight of each kind.
type Mix map[protocol.Kind]int

// DefaultMix is a typical store day.
var DefaultMix = Mix{protocol.KindSale: 85, protocol.KindReturn: 6, protocol.KindVoid: 4, protocol.KindNoSale: 3, protocol.KindPaidOut: 2}

// ParseMix parses "sale=80,return=10,void=5,no_sale=5".
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("mix %q: want kind=weight,...", part)
		}
		if kind := protocol.Kind(k); !kind.Valid() || kind.IsReport() {
			return nil, fmt.Errorf("mix %q: unknown or report kind %q", part, k)
		} else {
			m[kind] = n
		}
	}
	return m, nil
}

// Generator makes records for one terminal.
type Generator struct {
	Terminal     string
	BusinessDate string
	Currency     string
	rng          *rand.Rand
	mix          []weighted
	total        int
	receipt      int
	sales        []string
	clock        time.Time
}

type weighted struct {
	kind protocol.Kind
	w    int
}

// New returns a generator; receipts start at firstReceipt.
func New(terminal, businessDate string, seed uint64, mix Mix, firstReceipt int) *Generator {
	if mix == nil {
		mix = DefaultMix
	}
	g := &Generator{Terminal: terminal, BusinessDate: businessDate, Currency: "USD", rng: rand.New(rand.NewPCG(seed, 0x5eed)), receipt: firstReceipt - 1}
	kinds := make([]protocol.Kind, 0, len(mix))
	for k := range mix {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
	for _, k := range kinds {
		if mix[k] > 0 {
			g.mix = append(g.mix, weighted{k, mix[k]})
			g.total += mix[k]
		}
	}
	d, _ := time.Parse("2006-01-02", businessDate)
	g.clock = d.Add(8 * time.Hour)
	return g
}

var catalog = []struct {
	sku, desc, dept string
	price           int64
}{
	{"100001", "Milk 1L", "DAIRY", 129}, {"100002", "Bread loaf", "BAKERY", 249}, {"100003", "Eggs 12", "DAIRY", 389},
	{"100004", "Coffee 500g", "GROCERY", 899}, {"100005", "Apples kg", "PRODUCE", 299}, {"100006", "Batteries AA", "GENERAL", 1199},
	{"100007", "Shampoo", "HEALTH", 649}, {"100008", "Chocolate bar", "CANDY", 150}, {"100009", "Water 6x1.5L", "GROCERY", 459},
	{"100010", "Notebook", "GENERAL", 325},
}

// Next returns the next record.
func (g *Generator) Next() protocol.Record {
	n := g.rng.IntN(g.total)
	kind := g.mix[len(g.mix)-1].kind
	for _, w := range g.mix {
		if n < w.w {
			kind = w.kind
			break
		}
		n -= w.w
	}
	if kind == protocol.KindReturn && len(g.sales) == 0 {
		kind = protocol.KindSale
	}
	g.receipt++
	g.clock = g.clock.Add(time.Duration(20+g.rng.IntN(200)) * time.Second)
	r := protocol.Record{
		Kind: kind, Terminal: g.Terminal, Receipt: strconv.Itoa(g.receipt), BusinessDate: g.BusinessDate,
		Time: g.clock.Format(time.RFC3339), Currency: g.Currency,
	}
	switch kind {
	case protocol.KindSale, protocol.KindVoid:
		g.fillSale(&r, 1)
		if kind == protocol.KindSale {
			g.sales = append(g.sales, r.Receipt)
		} else {
			for i := range r.Lines {
				r.Lines[i].Voided = true
			}
			r.Total, r.Tenders, r.Change, r.Taxes, r.Discounts = 0, nil, 0, nil, nil
		}
	case protocol.KindReturn:
		r.OriginalReceipt = g.sales[g.rng.IntN(len(g.sales))]
		g.fillSale(&r, -1)
	case protocol.KindPaidOut, protocol.KindPaidIn:
		amt := int64(500 + g.rng.IntN(5000))
		if kind == protocol.KindPaidOut {
			amt = -amt
		}
		r.Total = amt
		r.Tenders = []protocol.Tender{{Type: protocol.TenderCash, Amount: amt}}
	case protocol.KindNoSale:
	}
	return r
}

func (g *Generator) fillSale(r *protocol.Record, sign int64) {
	nl := 1 + g.rng.IntN(5)
	var sub int64
	for range nl {
		it := catalog[g.rng.IntN(len(catalog))]
		q := int64(1 + g.rng.IntN(3))
		amt := sign * q * it.price
		r.Lines = append(r.Lines, protocol.Line{SKU: it.sku, Description: it.desc, Quantity: strconv.FormatInt(sign*q, 10), UnitPrice: it.price, Amount: amt, Department: it.dept})
		sub += amt
	}
	if sign > 0 && g.rng.IntN(10) == 0 {
		d := sub / 10
		r.Discounts = []protocol.Discount{{Description: "10% off", Amount: d}}
		sub -= d
	}
	tax := (sub*825 + sign*5000) / 10000 // 8.25 %, rounded half away from zero
	r.Taxes = []protocol.Tax{{Code: "T1", Rate: "8.25", Taxable: sub, Amount: tax}}
	r.Total = sub + tax
	switch {
	case sign < 0:
		r.Tenders = []protocol.Tender{{Type: protocol.TenderCash, Amount: r.Total}}
	case g.rng.IntN(2) == 0:
		r.Tenders = []protocol.Tender{{Type: protocol.TenderCard, Amount: r.Total, Card: &protocol.Card{Brand: "visa", Last4: fmt.Sprintf("%04d", g.rng.IntN(10000))}}}
	case g.rng.IntN(4) == 0 && r.Total > 1000:
		card := r.Total / 2
		r.Tenders = []protocol.Tender{{Type: protocol.TenderCard, Amount: card, Card: &protocol.Card{Brand: "mastercard", Last4: fmt.Sprintf("%04d", g.rng.IntN(10000))}}, {Type: protocol.TenderCash, Amount: r.Total - card}}
	default:
		paid := (r.Total/500 + 1) * 500
		r.Tenders = []protocol.Tender{{Type: protocol.TenderCash, Amount: paid}}
		r.Change = paid - r.Total
	}
}

// Totals accumulates per-kind counts and sums, the figures tests compare with the hub.
type Totals struct {
	Count map[protocol.Kind]int64 `json:"count"`
	Sum   map[protocol.Kind]int64 `json:"sum"`
	N     int64                   `json:"n"`
}

// Add counts r.
func (t *Totals) Add(r protocol.Record) {
	if t.Count == nil {
		t.Count, t.Sum = map[protocol.Kind]int64{}, map[protocol.Kind]int64{}
	}
	t.Count[r.Kind]++
	t.Sum[r.Kind] += r.Total
	t.N++
}
