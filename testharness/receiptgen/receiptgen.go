// Package receiptgen prints days of receipts in layouts no shipped profile (and no code of
// profile draft) was written against, as ESC/POS byte streams with their ground truth: the
// canonical records a correct profile must produce. It is the test bed of the
// draft-then-held-out tests (agent/internal/profile/draft): draft a profile from five
// receipts, parse the rest of the day, compare with the truth.
//
// The layouts are invented, modelled on common receipt conventions (a German bakery with
// decimal comma, prices including VAT and quantity lines under the description; a Japanese
// convenience store in Shift_JIS with yen and no minor units; a Korean café printing a
// plain-text journal in columns). Store names, items and amounts are made up; card numbers are
// printed masked only.
package receiptgen

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"time"

	"golang.org/x/text/encoding"

	"github.com/lanebridge/lanebridge/protocol"
)

// Layout is one receipt layout.
type Layout struct {
	Name     string
	Dialect  string // what to tell profile draft
	CodePage string
	Currency string
	width    int
	enc      encoding.Encoding
	catalog  []product
	render   func(l *Layout, t *tx) []string
	z        func(l *Layout, z *protocol.ZReport, n int, at time.Time) []string
	framed   func(lines []string) []byte // bytes of one receipt
	taxIncl  bool
	voidTax  bool // a void prints its tax line
	rate     int  // percent
}

type product struct {
	name  string
	price int64
	kg    bool // sold by weight
}

type tx struct {
	kind    protocol.Kind
	receipt int
	at      time.Time
	lines   []protocol.Line
	total   int64
	tax     int64
	tenders []protocol.Tender
	change  int64
}

// Day is one generated day.
type Day struct {
	Receipts [][]byte          // each receipt's bytes, in order
	Truth    []protocol.Record // the record each receipt must give
}

// Stream is the day's receipts as one capture.
func (d Day) Stream(from, to int) []byte {
	var b []byte
	for _, r := range d.Receipts[from:to] {
		b = append(b, r...)
	}
	return b
}

// Layouts returns the layouts.
func Layouts() []*Layout { return []*Layout{bakeryDE(), konbiniJP(), cafeKR()} }

// Generate prints a day of n transactions (sales with a few returns, voids and no-sales) and a
// Z report at the end. The same seed gives the same day.
func (l *Layout) Generate(seed int64, n int) Day {
	rng := rand.New(rand.NewSource(seed))
	at := time.Date(2026, 3, 14, 8, 3, 0, 0, time.UTC)
	var d Day
	z := &protocol.ZReport{}
	receipt := 100 + rng.Intn(800)
	for i := 0; i < n; i++ {
		at = at.Add(time.Duration(5+rng.Intn(20)) * time.Minute)
		receipt++
		t := &tx{receipt: receipt, at: at, kind: protocol.KindSale}
		switch {
		case i == 3 || i == n/2:
			t.kind = protocol.KindReturn
		case i == 6:
			t.kind = protocol.KindVoid
		case i == 8 || i == n-3:
			t.kind = protocol.KindNoSale
		}
		l.fill(rng, t)
		switch t.kind {
		case protocol.KindSale:
			z.Gross += t.total
			z.Net += t.total
		case protocol.KindReturn:
			z.Refunds.Count++
			z.Refunds.Amount += t.total
			z.Net -= t.total
		case protocol.KindVoid:
			z.Voids.Count++
			z.Voids.Amount += t.total
		case protocol.KindNoSale:
			z.NoSaleCount++
		}
		d.Receipts = append(d.Receipts, l.framed(l.encode(l.render(l, t))))
		d.Truth = append(d.Truth, t.record(l))
	}
	at = at.Add(30 * time.Minute)
	d.Receipts = append(d.Receipts, l.framed(l.encode(l.z(l, z, 42, at))))
	d.Truth = append(d.Truth, protocol.Record{Kind: protocol.KindZReport, BusinessDate: at.Format("2006-01-02"), Currency: l.Currency, Total: z.Net, Z: z})
	return d
}

func (l *Layout) fill(rng *rand.Rand, t *tx) {
	if t.kind == protocol.KindNoSale {
		return
	}
	n := 1 + rng.Intn(4)
	if t.kind == protocol.KindReturn {
		n = 1
	}
	for j := 0; j < n; j++ {
		p := l.catalog[rng.Intn(len(l.catalog))]
		q := int64(1)
		if rng.Intn(3) == 0 {
			q = int64(2 + rng.Intn(3))
		}
		line := protocol.Line{Description: p.name, UnitPrice: p.price, Quantity: fmt.Sprint(q), Amount: q * p.price}
		if p.kg {
			g := int64(150 + rng.Intn(900)) // grams
			line.Quantity = fmt.Sprintf("%d.%03d", g/1000, g%1000)
			line.Quantity = strings.TrimRight(strings.TrimRight(line.Quantity, "0"), ".")
			line.Amount = (g*p.price + 500) / 1000
		}
		t.lines = append(t.lines, line)
		t.total += line.Amount
	}
	// tax included in the prices: the part of the total that is tax
	t.tax = (t.total*int64(l.rate) + int64(100+l.rate)/2) / int64(100+l.rate)
	if !l.taxIncl {
		t.tax = (t.total*int64(l.rate) + 50) / 100
		t.total += t.tax
	}
	if t.kind == protocol.KindVoid {
		return
	}
	if t.kind == protocol.KindSale && rng.Intn(3) == 0 {
		t.tenders = []protocol.Tender{{Type: protocol.TenderCard, Amount: t.total, Card: &protocol.Card{Last4: fmt.Sprintf("%04d", rng.Intn(10000))}}}
		return
	}
	paid := t.total
	if t.kind == protocol.KindSale {
		step := l.cashStep()
		paid = (t.total + step - 1) / step * step
		if rng.Intn(2) == 0 {
			paid += step
		}
	}
	t.tenders = []protocol.Tender{{Type: protocol.TenderCash, Amount: paid}}
	t.change = paid - t.total
}

func (l *Layout) cashStep() int64 {
	if l.Currency == "EUR" {
		return 500
	}
	return 1000
}

// record is the ground truth of a transaction (signs as protocol v1 wants them).
func (t *tx) record(l *Layout) protocol.Record {
	r := protocol.Record{Kind: t.kind, Receipt: fmt.Sprint(t.receipt), BusinessDate: t.at.Format("2006-01-02"), Currency: l.Currency}
	if t.kind == protocol.KindNoSale {
		return r
	}
	r.Lines = append(r.Lines, t.lines...)
	r.Total, r.Tenders, r.Change = t.total, t.tenders, t.change
	if t.kind != protocol.KindVoid || l.voidTax {
		r.Taxes = []protocol.Tax{{Amount: t.tax}}
	}
	if t.kind == protocol.KindReturn {
		for i := range r.Lines {
			r.Lines[i].Amount = -r.Lines[i].Amount
			r.Lines[i].Quantity = "-" + r.Lines[i].Quantity
		}
		r.Total = -r.Total
		r.Taxes = []protocol.Tax{{Amount: -t.tax}}
		r.Tenders = []protocol.Tender{{Type: protocol.TenderCash, Amount: -t.total}}
		r.Change = 0
	}
	return r
}

func (l *Layout) encode(lines []string) []string {
	if l.enc == nil {
		return lines
	}
	out := make([]string, len(lines))
	for i, s := range lines {
		b, err := l.enc.NewEncoder().String(s)
		if err != nil {
			panic(fmt.Sprintf("receiptgen %s: encode %q: %v", l.Name, s, err))
		}
		out[i] = b
	}
	return out
}

// ---- helpers ----

// money formats minor units: dec and thousands separators, minor digits.
func money(v int64, dec, thou string, minor int) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	p := int64(1)
	for range minor {
		p *= 10
	}
	ip := fmt.Sprint(v / p)
	var g []string
	for len(ip) > 3 {
		g = append([]string{ip[len(ip)-3:]}, g...)
		ip = ip[:len(ip)-3]
	}
	s := strings.Join(append([]string{ip}, g...), thou)
	if minor > 0 {
		s += dec + fmt.Sprintf("%0*d", minor, v%p)
	}
	return sign + s
}

// width is a line's printed width: CJK characters take two columns.
func width(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x1100 && (r <= 0x115F || (r >= 0x2E80 && r <= 0xA4CF) || (r >= 0xAC00 && r <= 0xD7A3) || (r >= 0xF900 && r <= 0xFAFF) || (r >= 0xFF00 && r <= 0xFF60)) {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// lr pads left and right text to the layout's width.
func (l *Layout) lr(left, right string) string {
	pad := l.width - width(left) - width(right)
	if pad < 1 {
		pad = 1
	}
	return left + strings.Repeat(" ", pad) + right
}

func (l *Layout) center(s string) string {
	pad := (l.width - width(s)) / 2
	if pad < 0 {
		pad = 0
	}
	return strings.Repeat(" ", pad) + s
}

// escposFrame: ESC @, the lines (LF), feed, partial cut; a drawer kick on cash receipts is
// printed by the caller as a line marker "\x1bp".
func escposFrame(init bool, table int) func(lines []string) []byte {
	return func(lines []string) []byte {
		var b bytes.Buffer
		if init {
			b.WriteString("\x1b@")
		}
		if table >= 0 {
			b.WriteString("\x1bt" + string(rune(table)))
		}
		for _, s := range lines {
			if s == "\x1bp" {
				b.WriteString("\x1bp\x00\x19\xfa")
				continue
			}
			if strings.HasPrefix(s, "\x00B") { // bold title
				b.WriteString("\x1bE\x01" + s[2:] + "\x1bE\x00\n")
				continue
			}
			b.WriteString(s + "\n")
		}
		b.WriteString("\x1bd\x03\x1dVB\x00")
		return b.Bytes()
	}
}

// plainFrame: text lines with CR LF, receipts separated by a blank line.
func plainFrame(lines []string) []byte {
	var b bytes.Buffer
	for _, s := range lines {
		if s == "\x1bp" {
			continue
		}
		b.WriteString(strings.TrimPrefix(s, "\x00B") + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// sign is how a receipt prints its amounts: negative on a return.
func (t *tx) sign() int64 {
	if t.kind == protocol.KindReturn {
		return -1
	}
	return 1
}

// drawer appends the drawer kick marker when the receipt was paid in cash.
func (t *tx) drawer(out []string) []string {
	if len(t.tenders) > 0 && t.tenders[0].Type == protocol.TenderCash {
		return append(out, "\x1bp")
	}
	return out
}
