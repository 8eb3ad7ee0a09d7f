// Package terminal generates the byte streams legacy POS terminals print, in the format of each
// shipped firmware profile: sales with discounts and several tenders, returns that reference an
// original, item and whole-transaction voids, no-sales and a closing Z report whose totals match
// the day. It also damages streams (line noise, dropped bytes, reboots mid-receipt) and keeps
// the expected totals so tests can compare them with what was captured.
package terminal

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// Profiles lists the profiles the generator can write.
var Profiles = []string{"sharp-journal", "casio-journal", "epson-tm-escpos"}

// KindTotal is the expected count and sum of one record kind.
type KindTotal struct {
	Count int64 `json:"count"`
	Total int64 `json:"total"`
}

// Expected is what a capture of the generated day must yield.
type Expected struct {
	Profile  string               `json:"profile"`
	Terminal string               `json:"terminal"` // the id printed by the terminal
	Date     string               `json:"date"`     // YYYY-MM-DD
	Kinds    map[string]KindTotal `json:"kinds"`    // undamaged transactions by kind
	// ZNet is the Z report's net sales (sales − returns, tax excluded), ZGross its gross, in
	// minor units; equal to the day's undamaged and damaged transactions alike.
	ZNet   int64 `json:"z_net"`
	ZGross int64 `json:"z_gross"`
	// Damaged lists receipts whose bytes were damaged by noise: each must be captured and
	// flagged, or quarantined, never silently lost.
	Damaged []string `json:"damaged"`
	// Receipts lists every receipt number printed (Z included).
	Receipts []string `json:"receipts"`
	// Transactions lists every transaction printed, in order (Z included), with the damage
	// noise did to it, so a test can account for each one.
	Transactions []Emitted `json:"transactions"`
	// Z holds the figures the closing Z report printed (zero until Z is called).
	Z ZFigures `json:"z"`
}

// Emitted is one printed transaction.
type Emitted struct {
	Receipt string `json:"receipt"`
	Kind    string `json:"kind"`
	Total   int64  `json:"total"`            // the record total its profile yields (returns negative)
	Damage  string `json:"damage,omitempty"` // "", "line_noise", "dropped_bytes" or "reboot"
}

// ZFigures are the day's totals as the Z report prints them, in minor units, positive.
type ZFigures struct {
	Sales        int64 `json:"sales"`         // count
	Refunds      int64 `json:"refunds"`       // count
	Voids        int64 `json:"voids"`         // count
	NoSales      int64 `json:"no_sales"`      // count
	Gross        int64 `json:"gross"`         // sales before discounts, tax excluded
	Net          int64 `json:"net"`           // sales − returns, tax excluded
	Tax          int64 `json:"tax"`           // sales − returns
	RefundAmount int64 `json:"refund_amount"` // tax included
	VoidAmount   int64 `json:"void_amount"`
	Cash         int64 `json:"cash"` // net of change and refunds
	Card         int64 `json:"card"` // net of refunds
	GrandTotal   int64 `json:"grand_total"`
}

type item struct {
	desc      string
	sku       string // printed as a PLU line under the item when set (SetSKUs)
	qty, unit int64
	voided    bool
}

type txn struct {
	kind     string // sale, return, void, no_sale
	receipt  int
	hh, mm   int
	items    []item
	discount int64
	tax      int64
	tenders  []tender
	change   int64
	original int
}

type tender struct {
	name   string
	amount int64
}

func (t *txn) net() int64 {
	var s int64
	for _, it := range t.items {
		if !it.voided {
			s += it.qty * it.unit
		}
	}
	return s - t.discount
}

func (t *txn) total() int64 { return t.net() + t.tax }

// Generator writes one terminal's day.
type Generator struct {
	profile  string
	terminal string // as printed: "000101", "C01", "REG01"
	date     [3]int // y m d
	rng      *rand.Rand
	receipt  int
	minute   int
	noise    float64
	clean    []byte // the last transaction as printed, before noise
	skus     []string
	exp      Expected
	sales    []int // receipts of sales, for returns
	day      struct {
		gross, net, refunds, voids, tax int64
		nRefund, nVoid, nNoSale, nSale  int64
		cash, card, check               int64
		nCash, nCard                    int64
		gt                              int64
	}
}

// New returns a generator for profile, printing terminal id term on date (YYYY-MM-DD). noise is
// the probability that a transaction's bytes are damaged.
func New(profile, term, date string, seed uint64, noise float64) (*Generator, error) {
	var y, m, d int
	if _, err := fmt.Sscanf(date, "%d-%d-%d", &y, &m, &d); err != nil {
		return nil, fmt.Errorf("date %q: %w", date, err)
	}
	ok := false
	for _, p := range Profiles {
		ok = ok || p == profile
	}
	if !ok {
		return nil, fmt.Errorf("profile %q: the simulator writes %s", profile, strings.Join(Profiles, ", "))
	}
	g := &Generator{profile: profile, terminal: term, date: [3]int{y, m, d}, rng: rand.New(rand.NewPCG(seed, 0x5eed)), receipt: 100, minute: 8 * 60, noise: noise}
	g.exp = Expected{Profile: profile, Terminal: term, Date: date, Kinds: map[string]KindTotal{}}
	g.day.gt = 1000000 + int64(g.rng.IntN(900000))
	return g, nil
}

// Expected returns the expectations so far.
func (g *Generator) Expected() Expected {
	e := g.exp
	sort.Strings(e.Damaged)
	return e
}

// Next returns the bytes of the next transaction.
func (g *Generator) Next() []byte {
	g.receipt++
	g.minute += 1 + g.rng.IntN(3)
	t := &txn{receipt: g.receipt, hh: (g.minute / 60) % 24, mm: g.minute % 60}
	switch r := g.rng.IntN(100); {
	case r < 8 && len(g.sales) > 0:
		t.kind = "return"
		t.original = g.sales[g.rng.IntN(len(g.sales))]
		t.items = []item{g.item()}
	case r < 13:
		t.kind = "void"
		t.items = []item{g.item(), g.item()}
	case r < 17:
		t.kind = "no_sale"
	default:
		t.kind = "sale"
		n := 1 + g.rng.IntN(4)
		for i := 0; i < n; i++ {
			t.items = append(t.items, g.item())
		}
		if n > 1 && g.profile != "casio-journal" && g.rng.IntN(4) == 0 {
			t.items[g.rng.IntN(n)].voided = true
		}
		if g.profile != "sharp-journal" && g.rng.IntN(3) == 0 {
			t.discount = t.net() / 10
		}
	}
	if t.kind == "sale" || t.kind == "return" || t.kind == "void" {
		t.tax = (t.net()*825 + 5000) / 10000
		if g.profile == "casio-journal" {
			t.tax = 0 // the Casio journal prints tax-inclusive totals
		}
		tot := t.total()
		switch g.rng.IntN(3) {
		case 0:
			cash := ((tot + 499) / 500) * 500
			t.tenders = []tender{{"CASH", cash}}
			t.change = cash - tot
		case 1:
			t.tenders = []tender{{"CARD", tot}}
		default:
			part := tot / 2
			t.tenders = []tender{{"CASH", part}, {"CARD", tot - part}}
		}
		if t.kind == "return" {
			t.tenders, t.change = []tender{{"CASH", tot}}, 0
		}
	}
	b := g.render(t)
	g.clean = b
	g.account(t)
	em := Emitted{Receipt: g.receiptStr(t.receipt), Kind: t.kind, Total: g.recordTotal(t)}
	if g.noise > 0 && g.rng.Float64() < g.noise && t.kind != "no_sale" {
		b, em.Damage = g.damage(b)
		g.exp.Damaged = append(g.exp.Damaged, g.receiptStr(t.receipt))
		g.exp.Receipts = append(g.exp.Receipts, g.receiptStr(t.receipt))
		g.exp.Transactions = append(g.exp.Transactions, em)
		return b
	}
	g.exp.Transactions = append(g.exp.Transactions, em)
	kt := g.exp.Kinds[t.kind]
	kt.Count++
	kt.Total += g.recordTotal(t)
	g.exp.Kinds[t.kind] = kt
	g.exp.Receipts = append(g.exp.Receipts, g.receiptStr(t.receipt))
	return b
}

func (g *Generator) item() item {
	prices := []int64{99, 125, 199, 249, 350, 499, 650, 1299}
	n := 1 + g.rng.IntN(9)
	it := item{desc: fmt.Sprintf("%d", n), qty: int64(1 + g.rng.IntN(3)), unit: prices[g.rng.IntN(len(prices))]}
	if len(g.skus) > 0 {
		// Item N is always the same SKU: no extra random draw, so a seed prints the same day.
		it.sku = g.skus[(n-1)%len(g.skus)]
	}
	return it
}

// SetSKUs makes the terminal print each item's article number (a "  PLU <sku>" line under the
// item, as an Epson TM receipt does), item N being skus[(N-1) mod len(skus)]. Only the
// epson-tm-escpos format prints article numbers.
func (g *Generator) SetSKUs(skus []string) error {
	if g.profile != "epson-tm-escpos" {
		return fmt.Errorf("--skus: profile %s prints no article numbers (use epson-tm-escpos)", g.profile)
	}
	for _, s := range skus {
		if s == "" || strings.Trim(s, "0123456789") != "" {
			return fmt.Errorf("--skus: %q is not a numeric SKU (the PLU line carries digits only)", s)
		}
	}
	g.skus = skus
	return nil
}

// account adds t to the day's Z figures.
func (g *Generator) account(t *txn) {
	switch t.kind {
	case "sale":
		g.day.nSale++
		g.day.gross += t.net() + t.discount
		g.day.net += t.net()
		g.day.tax += t.tax
		g.sales = append(g.sales, t.receipt)
	case "return":
		g.day.nRefund++
		g.day.refunds += t.total()
		g.day.net -= t.net()
		g.day.tax -= t.tax
	case "void":
		g.day.nVoid++
		g.day.voids += t.total()
	case "no_sale":
		g.day.nNoSale++
	}
	if t.kind == "sale" || t.kind == "return" {
		sign := int64(1)
		if t.kind == "return" {
			sign = -1
		}
		for _, td := range t.tenders {
			amt := td.amount
			if td.name == "CASH" {
				amt -= t.change
				g.day.cash += sign * amt
				g.day.nCash++
			} else {
				g.day.card += sign * amt
				g.day.nCard++
			}
		}
		g.day.gt += sign * t.total()
	}
	g.exp.ZNet, g.exp.ZGross = g.day.net, g.day.gross
}

// recordTotal is the total the profile's record carries for t.
func (g *Generator) recordTotal(t *txn) int64 {
	switch t.kind {
	case "no_sale":
		return 0
	case "return":
		return -t.total() // every shipped profile reports a return's total as negative
	}
	return t.total()
}

// damage applies one kind of noise to a transaction's bytes and names it.
func (g *Generator) damage(b []byte) ([]byte, string) {
	switch g.rng.IntN(3) {
	case 0: // line noise: bytes flipped in the middle of the amounts
		out := append([]byte(nil), b...)
		for i := 0; i < 3; i++ {
			j := len(out)/3 + g.rng.IntN(len(out)/2)
			if out[j] >= '0' && out[j] <= '9' {
				out[j] = '#'
			} else {
				out[j] = '?'
			}
		}
		return out, "line_noise"
	case 1: // dropped bytes: a stretch of the receipt's middle is lost
		// A stretch that is exactly some whole lines leaves what the terminal would have
		// printed for a different receipt (an item or an "@ unit price" line fewer): no
		// parser can see that damage, so such a stretch is moved by a byte.
		i := len(b)/3 + g.rng.IntN(len(b)/3)
		n := 8 + g.rng.IntN(24)
		out := append(append([]byte(nil), b[:i]...), b[min(len(b), i+n):]...)
		for i+n < len(b) && wholeLinesRemoved(b, out) {
			i++
			out = append(append([]byte(nil), b[:i]...), b[i+n:]...)
		}
		return out, "dropped_bytes"
	default: // reboot mid-receipt: the receipt stops and the terminal prints its power-on line
		cut := len(b)/2 + g.rng.IntN(len(b)/4)
		out := append([]byte(nil), b[:cut]...)
		return append(out, []byte("\r\n*** POWER FAIL ***\r\n")...), "reboot"
	}
}

// wholeLinesRemoved reports whether damaged is clean with some whole lines removed and nothing
// else changed (CR ignored: the printer streams end lines with LF CR).
func wholeLinesRemoved(clean, damaged []byte) bool {
	split := func(b []byte) [][]byte { return bytes.Split(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n")) }
	cl, dl := split(clean), split(damaged)
	if len(dl) >= len(cl) {
		return false
	}
	j := 0
	for _, l := range cl {
		if j < len(dl) && bytes.Equal(l, dl[j]) {
			j++
		}
	}
	return j == len(dl)
}

func (g *Generator) receiptStr(n int) string {
	switch g.profile {
	case "sharp-journal":
		return fmt.Sprintf("%04d", n)
	default:
		return fmt.Sprintf("%06d", n)
	}
}

// Clean returns the bytes of the transaction the last Next or Z returned as the terminal
// printed them, before any noise: parsed alone, they give the truth a capture is checked
// against. The slice must not be modified.
func (g *Generator) Clean() []byte { return g.clean }

// Z returns the day's closing Z report.
func (g *Generator) Z() []byte {
	g.receipt++
	g.minute += 5
	rs := g.receiptStr(g.receipt)
	g.exp.Receipts = append(g.exp.Receipts, rs)
	kt := g.exp.Kinds["z_report"]
	kt.Count++
	g.exp.Kinds["z_report"] = kt
	g.exp.Transactions = append(g.exp.Transactions, Emitted{Receipt: rs, Kind: "z_report"})
	d := &g.day
	g.exp.Z = ZFigures{Sales: d.nSale, Refunds: d.nRefund, Voids: d.nVoid, NoSales: d.nNoSale,
		Gross: d.gross, Net: d.net, Tax: d.tax, RefundAmount: d.refunds, VoidAmount: d.voids,
		Cash: d.cash, Card: d.card, GrandTotal: d.gt}
	g.clean = g.renderZ(g.receipt)
	return g.clean
}

func money(v int64, dollar bool) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	s := fmt.Sprintf("%d.%02d", v/100, v%100)
	if dollar {
		s = "$" + s
	}
	return sign + s
}

// col writes label and value right-aligned in width columns.
func col(w *bytes.Buffer, width int, label, value string) {
	pad := max(1, width-len(label)-len(value))
	w.WriteString(label + strings.Repeat(" ", pad) + value + "\n")
}
