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
			return nil, fmt.Errorf("mix %q: want comma-separated kind=weight pairs", part)
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
	sales        []string              // receipts of sales with something left to return
	returnable   map[string][]soldLine // by sale receipt: what a return may still take back
	clock        time.Time
}

// soldLine is a line of a sale and how much of it is not returned yet.
type soldLine struct {
	item int // index in catalog
	left int64
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
	g := &Generator{Terminal: terminal, BusinessDate: businessDate, Currency: "USD", rng: rand.New(rand.NewPCG(seed, 0x5eed)), receipt: firstReceipt - 1,
		returnable: map[string][]soldLine{}}
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
		sold := g.fillSale(&r)
		if kind == protocol.KindSale {
			g.sales = append(g.sales, r.Receipt)
			g.returnable[r.Receipt] = sold
		} else {
			for i := range r.Lines {
				r.Lines[i].Voided = true
			}
			r.Total, r.Tenders, r.Change, r.Taxes, r.Discounts = 0, nil, 0, nil, nil
		}
	case protocol.KindReturn:
		g.fillReturn(&r)
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

// line is a record line of q (negative: returned) of catalog item i.
func line(i int, q int64) protocol.Line {
	it := catalog[i]
	return protocol.Line{SKU: it.sku, Description: it.desc, Quantity: strconv.FormatInt(q, 10), UnitPrice: it.price, Amount: q * it.price, Department: it.dept}
}

// fillSale makes a sale's lines and totals and returns what a return may take back of it.
func (g *Generator) fillSale(r *protocol.Record) []soldLine {
	nl := 1 + g.rng.IntN(5)
	sold := make([]soldLine, 0, nl)
	for range nl {
		i := g.rng.IntN(len(catalog))
		q := int64(1 + g.rng.IntN(3))
		r.Lines = append(r.Lines, line(i, q))
		sold = append(sold, soldLine{i, q})
	}
	g.finish(r, 1)
	return sold
}

// fillReturn returns part of an earlier sale of this terminal: a non-empty subset of its lines,
// each at most what is left of it, so a simulated day never returns more than was sold.
func (g *Generator) fillReturn(r *protocol.Record) {
	k := g.rng.IntN(len(g.sales))
	orig := g.sales[k]
	r.OriginalReceipt = orig
	left := g.returnable[orig]
	var open []int
	for j, l := range left {
		if l.left > 0 {
			open = append(open, j)
		}
	}
	first := open[g.rng.IntN(len(open))] // always returned, so the subset is never empty
	for j := range left {
		if left[j].left == 0 || (j != first && g.rng.IntN(2) == 0) {
			continue
		}
		q := 1 + g.rng.Int64N(left[j].left)
		left[j].left -= q
		r.Lines = append(r.Lines, line(left[j].item, -q))
	}
	// A sale with nothing left cannot be returned again.
	done := true
	for _, l := range left {
		if l.left > 0 {
			done = false
		}
	}
	if done {
		g.sales = append(g.sales[:k], g.sales[k+1:]...)
		delete(g.returnable, orig)
	}
	g.finish(r, -1)
}

// finish adds discount, tax and tenders to a sale (sign 1) or return (sign -1) with lines.
func (g *Generator) finish(r *protocol.Record, sign int64) {
	var sub int64
	for _, l := range r.Lines {
		sub += l.Amount
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
