package profile

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lanebridge/lanebridge/protocol"
)

// builder accumulates one transaction's fields.
type builder struct {
	p           *Profile
	rec         protocol.Record
	flags       []string
	date, tm    string
	terminal    string
	haveTotal   bool
	pendingVoid bool
	pendingCard *protocol.Card
	z           *protocol.ZReport
	zSeen       bool
	matched     []bool // per field rule: handled at least one line

	lines    []txLine  // the transaction's lines
	pos      int       // index of the line being handled
	skip     int       // continuation lines the current line's rule took (wrap)
	fullCell *fullCell // a full cell on the previous line, settled by the current one
	xc       extraCache
}

// build turns a framed transaction's cleaned lines into a record. err means quarantine.
func (p *Profile) build(lines []txLine, terminal string) (*protocol.Record, []string, error) {
	b := &builder{p: p, matched: make([]bool, len(p.c.rules)), lines: lines, xc: extraCache{}}
	b.rec.Kind = p.classify(lines, b.xc)
	report := b.rec.Kind.IsReport()
	if report {
		b.z = &protocol.ZReport{}
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		b.pos, b.skip = i, 0
		full := b.fullCell
		b.fullCell = nil
		var err error
		handled := false
		if report {
			handled, err = b.zLine(l)
		}
		if err == nil && !handled {
			handled, err = b.fieldLine(l, report)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: line %d %q: %w", ErrIncomplete, i+1, l.text, err)
		}
		if full != nil && !handled {
			b.flags = append(b.flags, full.flag(lines))
		}
		if !handled && !l.marker && p.c.flagUnmatched {
			b.flags = append(b.flags, fmt.Sprintf("unmatched line %d: %q", i+1, l.text))
		}
		for k := i + 1; k <= i+b.skip && k < len(lines); k++ {
			if lines[k].trace != nil && l.trace != nil {
				lines[k].trace.Rule = "wrap continuation of " + l.trace.Rule
			}
		}
		i += b.skip
	}
	if err := b.finish(terminal); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	return &b.rec, b.flags, nil
}

func (p *Profile) classify(lines []txLine, xc extraCache) protocol.Kind {
	for _, r := range p.c.kindRules {
		for _, l := range lines {
			if xc.find(r.re, r.extras, l.text) != nil {
				return r.kind
			}
		}
	}
	return p.c.defKind
}

// groups returns the named captures of m plus the rule's defaults for groups not captured.
func groups(names []string, m []string, set map[string]string) map[string]string {
	g := make(map[string]string, len(set)+4)
	for k, v := range set {
		g[k] = v
	}
	for i, n := range names {
		if n != "" && i < len(m) && m[i] != "" {
			g[n] = strings.TrimSpace(m[i])
		}
	}
	return g
}

func (b *builder) header(g map[string]string) {
	if v := g["date"]; v != "" {
		b.date = v
	}
	if v := g["time"]; v != "" {
		b.tm = v
	}
	if v := g["receipt"]; v != "" {
		if b.rec.Receipt != "" && b.rec.Receipt != v {
			// Two receipts run together (a lost end or start): which one is this?
			b.flags = append(b.flags, fmt.Sprintf("receipt number %s printed after %s in one transaction", v, b.rec.Receipt))
		}
		b.rec.Receipt = v
	}
	if v := g["terminal"]; v != "" {
		b.terminal = v
	}
	if v := g["original"]; v != "" {
		b.rec.OriginalReceipt = v
	}
}

func (b *builder) fieldLine(l txLine, report bool) (bool, error) {
	for i, r := range b.p.c.rules {
		if r.width > 0 && utf8.RuneCountInString(l.text) != r.width {
			continue
		}
		m := b.xc.find(r.re, r.extras, l.text)
		if m == nil {
			continue
		}
		g := groups(r.re.SubexpNames(), m, r.set)
		if report && r.typ != "header" && r.typ != "ignore" && r.typ != "original_receipt" {
			// In a report only header rules apply; the rest is the z_report map's job.
			continue
		}
		b.matched[i] = true
		l.took("fields.rules", i, r.typ)
		if r.wrap != nil || len(r.cells) > 0 {
			b.skip = b.joinWrapped(i, r, g)
		}
		return true, b.apply(r.typ, g, l)
	}
	return false, nil
}

func (b *builder) amount(g map[string]string, key string) (int64, bool, error) {
	s, ok := g[key]
	if !ok || s == "" {
		return 0, false, nil
	}
	v, err := b.p.c.num.amount(s)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", key, err)
	}
	return v, true, nil
}

func (b *builder) apply(typ string, g map[string]string, l txLine) error {
	b.header(g)
	amt, hasAmt, err := b.amount(g, "amount")
	if err != nil {
		return err
	}
	switch typ {
	case "header", "ignore", "subtotal":
	case "original_receipt":
		if v := g["receipt"]; v != "" && g["original"] == "" {
			b.rec.OriginalReceipt = v
		}
	case "item":
		line, err := b.item(g, amt, hasAmt)
		if err != nil {
			return err
		}
		if b.pendingVoid {
			b.pendingVoid = false
			b.voidItem(line.Description, line.Amount, true)
			return nil
		}
		b.rec.Lines = append(b.rec.Lines, line)
	case "item_detail":
		if len(b.rec.Lines) == 0 {
			return fmt.Errorf("item detail before any item")
		}
		last := &b.rec.Lines[len(b.rec.Lines)-1]
		if v := g["sku"]; v != "" {
			last.SKU = v
		}
		if v := g["department"]; v != "" {
			last.Department = v
		}
		if v := g["quantity"]; v != "" {
			q, err := b.p.c.num.quantity(v)
			if err != nil {
				return err
			}
			last.Quantity = q
		}
		unit, hasUnit, err := b.amount(g, "unit_price")
		if err != nil {
			return err
		}
		if hasUnit {
			last.UnitPrice = unit
		}
		if hasAmt {
			last.Amount = amt
		}
	case "item_void":
		if g["description"] == "" && !hasAmt {
			b.pendingVoid = true
			return nil
		}
		b.voidItem(g["description"], amt, hasAmt)
	case "discount":
		if !hasAmt {
			return fmt.Errorf("discount without an amount group")
		}
		b.rec.Discounts = append(b.rec.Discounts, protocol.Discount{Description: g["description"], Amount: abs(amt)})
	case "tax":
		return b.tax(g, amt, hasAmt)
	case "total":
		if !hasAmt {
			return fmt.Errorf("total without an amount group")
		}
		b.rec.Total, b.haveTotal = amt, true
	case "tender":
		if !hasAmt {
			return fmt.Errorf("tender without an amount group")
		}
		label := strings.ToUpper(g["tender"])
		typ, ok := b.p.c.tenders[label]
		if !ok {
			typ = protocol.TenderOther
			b.flags = append(b.flags, fmt.Sprintf("tender %q is not in fields.tenders: counted as other", g["tender"]))
		}
		t := protocol.Tender{Type: typ, Amount: amt}
		t.Card = b.card(g, l)
		if t.Card == nil && b.pendingCard != nil && typ == protocol.TenderCard {
			t.Card, b.pendingCard = b.pendingCard, nil
		}
		b.rec.Tenders = append(b.rec.Tenders, t)
	case "change":
		if !hasAmt {
			return fmt.Errorf("change without an amount group")
		}
		b.rec.Change = abs(amt)
	case "card":
		c := b.card(g, l)
		if c == nil {
			return nil
		}
		if n := len(b.rec.Tenders); n > 0 && b.rec.Tenders[n-1].Card == nil {
			b.rec.Tenders[n-1].Card = c
		} else {
			b.pendingCard = c
		}
	}
	return nil
}

// card builds the card of a tender from the rule's brand/last4 groups or, failing that, from
// a PAN the masker saw on the line.
func (b *builder) card(g map[string]string, l txLine) *protocol.Card {
	c := protocol.Card{Brand: strings.ToLower(g["brand"]), Last4: g["last4"]}
	if c.Last4 == "" && len(l.cards) > 0 {
		c.Last4 = l.cards[len(l.cards)-1].Last4
		if c.Brand == "" {
			c.Brand = l.cards[len(l.cards)-1].Brand
		}
	}
	if c.Brand == "" && c.Last4 == "" {
		return nil
	}
	return &c
}

func (b *builder) item(g map[string]string, amt int64, hasAmt bool) (protocol.Line, error) {
	l := protocol.Line{SKU: g["sku"], Description: g["description"], Department: g["department"], Quantity: "1"}
	if v := g["quantity"]; v != "" {
		q, err := b.p.c.num.quantity(v)
		if err != nil {
			return l, err
		}
		l.Quantity = q
	}
	unit, hasUnit, err := b.amount(g, "unit_price")
	if err != nil {
		return l, err
	}
	switch {
	case hasAmt && hasUnit:
		l.Amount, l.UnitPrice = amt, unit
	case hasAmt:
		l.Amount = amt
		l.UnitPrice = unitFrom(amt, l.Quantity)
	case hasUnit:
		l.UnitPrice = unit
		v, ok := quantityTimes(l.Quantity, unit)
		if !ok {
			return l, fmt.Errorf("quantity × unit price overflows")
		}
		l.Amount = v
	default:
		return l, fmt.Errorf("item without amount or unit_price group")
	}
	return l, nil
}

// unitFrom divides an amount by a quantity, rounding half away from zero.
func unitFrom(amount int64, q string) int64 {
	if q == "1" || q == "-1" {
		return amount * qsign(q)
	}
	neg := strings.HasPrefix(q, "-")
	intPart, frac, _ := strings.Cut(strings.TrimPrefix(q, "-"), ".")
	num, err := strconv.ParseInt(intPart+frac, 10, 64)
	if err != nil || num == 0 {
		return amount
	}
	scale := int64(1)
	for range frac {
		scale *= 10
	}
	a := abs(amount) * scale
	u := (a + num/2) / num
	if (amount < 0) != neg {
		u = -u
	}
	return u
}

func qsign(q string) int64 {
	if strings.HasPrefix(q, "-") {
		return -1
	}
	return 1
}

// voidItem marks the latest non-voided item matching description (when given) and the absolute
// amount (when given) as voided. With no match the void is kept as a negative line so totals
// still add up, and the record is flagged.
func (b *builder) voidItem(desc string, amt int64, hasAmt bool) {
	for i := len(b.rec.Lines) - 1; i >= 0; i-- {
		l := &b.rec.Lines[i]
		if l.Voided {
			continue
		}
		if desc != "" && !strings.EqualFold(strings.TrimSpace(l.Description), desc) {
			continue
		}
		if hasAmt && abs(l.Amount) != abs(amt) {
			continue
		}
		l.Voided = true
		return
	}
	b.flags = append(b.flags, fmt.Sprintf("item void %q %s matched no item", desc, formatMinor(amt, b.p.c.num.minor)))
	if hasAmt {
		b.rec.Lines = append(b.rec.Lines, protocol.Line{Description: desc, Quantity: "1", UnitPrice: -abs(amt), Amount: -abs(amt)})
	}
}

func (b *builder) tax(g map[string]string, amt int64, hasAmt bool) error {
	taxable, hasTaxable, err := b.amount(g, "taxable")
	if err != nil {
		return err
	}
	code := g["code"]
	if code == "" {
		code = "tax"
	}
	rate := g["rate"]
	if rate != "" {
		if rate, err = b.p.c.num.quantity(strings.TrimSuffix(rate, "%")); err != nil {
			return fmt.Errorf("rate: %w", err)
		}
	}
	for i := range b.rec.Taxes {
		t := &b.rec.Taxes[i]
		if t.Code != code {
			continue
		}
		if hasAmt {
			t.Amount = amt
		}
		if hasTaxable {
			t.Taxable = taxable
		}
		if rate != "" {
			t.Rate = rate
		}
		return nil
	}
	b.rec.Taxes = append(b.rec.Taxes, protocol.Tax{Code: code, Rate: rate, Taxable: taxable, Amount: amt})
	return nil
}

// zLine applies the z_report map to one line of a report.
func (b *builder) zLine(l txLine) (bool, error) {
	for i, r := range b.p.c.zrules {
		m := b.xc.find(r.re, r.extras, l.text)
		if m == nil {
			continue
		}
		l.took("z_report.rules", i, r.field)
		g := groups(r.re.SubexpNames(), m, r.set)
		b.header(g)
		amt, hasAmt, err := b.amount(g, "amount")
		if err != nil {
			return true, err
		}
		var count int64
		if s := g["count"]; s != "" {
			c, err := strconv.ParseInt(strings.ReplaceAll(s, b.p.c.num.thou, ""), 10, 64)
			if err != nil {
				return true, fmt.Errorf("count %q: %w", s, err)
			}
			count = c
		}
		need := func() error {
			if !hasAmt {
				return fmt.Errorf("z field %s without an amount group", r.field)
			}
			b.zSeen = true
			return nil
		}
		z := b.z
		switch r.field {
		case "ignore":
		case "counter":
			v := g["count"]
			if v == "" {
				v = g["receipt"]
			}
			n, err := strconv.ParseInt(strings.TrimLeft(v, "0")+"0", 10, 64)
			if err != nil {
				return true, fmt.Errorf("counter %q: not a number", v)
			}
			z.Counter = n / 10
		case "gross", "net", "grand_total":
			if err := need(); err != nil {
				return true, err
			}
			switch r.field {
			case "gross":
				z.Gross = amt
			case "net":
				z.Net = amt
			default:
				z.GrandTotal = amt
			}
		case "refunds", "voids":
			if err := need(); err != nil {
				return true, err
			}
			c := protocol.Counted{Count: count, Amount: abs(amt)}
			if r.field == "refunds" {
				z.Refunds = c
			} else {
				z.Voids.Count += c.Count
				z.Voids.Amount += c.Amount
			}
		case "no_sale_count":
			z.NoSaleCount = count
		case "tender":
			if err := need(); err != nil {
				return true, err
			}
			label := strings.ToUpper(g["tender"])
			typ, ok := b.p.c.tenders[label]
			if !ok {
				typ = protocol.TenderOther
				b.flags = append(b.flags, fmt.Sprintf("report tender %q is not in fields.tenders: counted as other", g["tender"]))
			}
			z.Tenders = append(z.Tenders, protocol.TenderTotal{Type: typ, Count: count, Amount: amt})
		case "tax", "taxable":
			code := g["code"]
			if code == "" {
				code = "tax"
			}
			var t *protocol.Tax
			for i := range z.Taxes {
				if z.Taxes[i].Code == code {
					t = &z.Taxes[i]
				}
			}
			if t == nil {
				z.Taxes = append(z.Taxes, protocol.Tax{Code: code})
				t = &z.Taxes[len(z.Taxes)-1]
			}
			if r.field == "tax" {
				t.Amount = amt
			} else {
				t.Taxable = amt
			}
			if g["rate"] != "" {
				t.Rate = g["rate"]
			}
		}
		return true, nil
	}
	return false, nil
}

func (b *builder) finish(terminal string) error {
	p := b.p
	r := &b.rec
	if r.Currency == "" {
		r.Currency = p.Fields.Currency
	}
	r.Terminal = terminal
	if r.Terminal == "" {
		r.Terminal = b.terminal
	}
	if r.Terminal == "" {
		return fmt.Errorf("no terminal: configure one or capture a terminal group")
	}
	if b.date == "" && r.BusinessDate == "" {
		return fmt.Errorf("no date line")
	}
	if b.date != "" {
		d, err := time.ParseInLocation(p.Fields.DateFormat, b.date, p.c.loc)
		if err != nil {
			return fmt.Errorf("date %q does not match date_format %q", b.date, p.Fields.DateFormat)
		}
		r.BusinessDate = d.Format("2006-01-02")
	}
	if b.tm != "" && p.Fields.TimeFormat != "" {
		t, err := time.ParseInLocation(p.Fields.DateFormat+" "+p.Fields.TimeFormat, b.date+" "+b.tm, p.c.loc)
		if err != nil {
			return fmt.Errorf("time %q does not match time_format %q", b.tm, p.Fields.TimeFormat)
		}
		r.Time = t.Format(time.RFC3339)
	}
	if p.Invariants.ReceiptRequired && r.Receipt == "" {
		return fmt.Errorf("no receipt number")
	}
	if b.pendingVoid {
		b.flags = append(b.flags, "item void marker with no item after it")
	}
	// Rules of one type that require this kind form a group: one of them must have matched.
	// (Only text transactions go through the rules: b.matched is nil for csv and jsonl.)
	missing := map[string]bool{}
	for i, rule := range p.c.rules {
		if b.matched != nil && rule.require[r.Kind] {
			if _, seen := missing[rule.typ]; !seen {
				missing[rule.typ] = true
			}
			if b.matched[i] {
				missing[rule.typ] = false
			}
		}
	}
	for _, typ := range ruleTypes {
		if missing[typ] {
			b.flags = append(b.flags, fmt.Sprintf("no %s line in a %s (the layout always prints one)", typ, r.Kind))
		}
	}
	if r.Kind.IsReport() {
		if !b.zSeen {
			return fmt.Errorf("report without totals (no z_report rule matched gross, net, grand total, tenders, refunds or voids)")
		}
		r.Z = b.z
		r.Total = b.z.Net
		if p.Invariants.ZTendersEqualNet {
			var sum int64
			for _, t := range b.z.Tenders {
				sum += t.Amount
			}
			if d := sum - b.z.Net; abs(d) > p.Invariants.Tolerance {
				b.flags = append(b.flags, fmt.Sprintf("invariant z tenders: Σtenders %s ≠ net %s", b.fmt(sum), b.fmt(b.z.Net)))
			}
		}
		return r.ValidateBusiness()
	}
	if !b.haveTotal {
		if p.c.totalRequired[r.Kind] {
			return fmt.Errorf("no total line in a %s", r.Kind)
		}
		r.Total = b.computed()
	}
	if r.Kind == protocol.KindReturn {
		b.signReturn()
	}
	b.invariants()
	return r.ValidateBusiness()
}

func (b *builder) fmt(v int64) string { return formatMinor(v, b.p.c.num.minor) }

// computed returns Σlines(non-voided) − discounts (+ tax unless prices include it).
func (b *builder) computed() int64 {
	var sum int64
	for _, l := range b.rec.Lines {
		if !l.Voided {
			sum += l.Amount
		}
	}
	for _, d := range b.rec.Discounts {
		sum -= d.Amount
	}
	if !b.p.Invariants.TaxIncluded {
		for _, t := range b.rec.Taxes {
			sum += t.Amount
		}
	}
	return sum
}

// signReturn gives a return's money the protocol's sign (protocol v1: returns carry negative
// totals), whatever sign the terminal printed: quantities, line amounts, discounts, taxes,
// tenders, change and total are negative; unit prices stay positive.
func (b *builder) signReturn() {
	r := &b.rec
	for i := range r.Lines {
		r.Lines[i].Amount, r.Lines[i].UnitPrice = -abs(r.Lines[i].Amount), abs(r.Lines[i].UnitPrice)
		if q := strings.TrimPrefix(r.Lines[i].Quantity, "-"); q != "0" && strings.Trim(q, "0.") != "" {
			r.Lines[i].Quantity = "-" + q
		}
	}
	for i := range r.Discounts {
		r.Discounts[i].Amount = -abs(r.Discounts[i].Amount)
	}
	for i := range r.Taxes {
		r.Taxes[i].Amount, r.Taxes[i].Taxable = -abs(r.Taxes[i].Amount), -abs(r.Taxes[i].Taxable)
	}
	for i := range r.Tenders {
		r.Tenders[i].Amount = -abs(r.Tenders[i].Amount)
	}
	r.Total, r.Change = -abs(r.Total), -abs(r.Change)
}

func (b *builder) invariants() {
	p := b.p
	r := &b.rec
	tol := p.Invariants.Tolerance
	if p.c.linesTotal && len(r.Lines) > 0 {
		if got := b.computed(); abs(got-r.Total) > tol {
			tax := "+ tax"
			if p.Invariants.TaxIncluded {
				tax = "(tax included)"
			}
			b.flags = append(b.flags, fmt.Sprintf("invariant lines: Σlines − discounts %s = %s ≠ total %s", tax, b.fmt(got), b.fmt(r.Total)))
		}
	}
	if p.c.tendersTotal && len(r.Tenders) > 0 {
		var sum int64
		for _, t := range r.Tenders {
			sum += t.Amount
		}
		if abs(sum-r.Change-r.Total) > tol {
			b.flags = append(b.flags, fmt.Sprintf("invariant tenders: Σtenders %s − change %s ≠ total %s", b.fmt(sum), b.fmt(r.Change), b.fmt(r.Total)))
		}
	}
	if p.c.lineMath {
		for i, l := range r.Lines {
			if l.UnitPrice == 0 {
				continue
			}
			want, ok := quantityTimes(l.Quantity, l.UnitPrice)
			slack := tol
			if strings.Contains(l.Quantity, ".") {
				slack++
			}
			if !ok || abs(want-l.Amount) > slack {
				b.flags = append(b.flags, fmt.Sprintf("invariant line %d: %s × %s ≠ %s", i+1, l.Quantity, b.fmt(l.UnitPrice), b.fmt(l.Amount)))
			}
		}
	}
}
