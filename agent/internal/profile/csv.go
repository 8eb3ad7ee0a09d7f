package profile

import (
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// csvParser reads the csv export format (see firmware-profiles/README.md): a header row, then
// one row per item line; consecutive rows with the same receipt, kind, date and terminal form
// one transaction whose receipt-level columns come from its first row.
type csvParser struct {
	lineSplitter
	p        *Profile
	terminal string

	idx    map[string]int // canonical column → index in the row
	group  [][]string
	raw    []string
	key    string
	lineNo int
}

func (c *csvParser) Feed(b []byte, now time.Time) []Result {
	c.split(b, now, c.row)
	return c.take()
}

func (c *csvParser) Flush(now time.Time) []Result {
	if idle := c.p.c.idle; idle > 0 && !c.lastData.IsZero() && now.Sub(c.lastData) >= idle {
		c.rest(c.row)
		c.closeGroup()
	}
	return c.take()
}

func (c *csvParser) Close() []Result {
	c.rest(c.row)
	c.closeGroup()
	return c.take()
}

func (c *csvParser) row(line string, dropped bool) {
	c.lineNo++
	if dropped {
		c.closeGroup()
		c.emit(Result{Raw: "[line removed: card data]", Err: fmt.Errorf("%w: csv line %d held track data or a card security code", ErrIncomplete, c.lineNo)})
		return
	}
	if strings.TrimSpace(line) == "" {
		return
	}
	r := csv.NewReader(strings.NewReader(line))
	r.Comma = c.p.c.csvDelim
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		c.closeGroup()
		c.emit(Result{Raw: line, Err: fmt.Errorf("%w: csv line %d: %w", ErrIncomplete, c.lineNo, err)})
		return
	}
	if c.isHeader(fields) {
		c.closeGroup()
		return
	}
	if c.idx == nil {
		c.emit(Result{Raw: line, Err: fmt.Errorf("%w: csv line %d: data before the header row", ErrIncomplete, c.lineNo)})
		return
	}
	key := strings.Join([]string{c.get(fields, "receipt"), c.get(fields, "kind"), c.get(fields, "date"), c.get(fields, "terminal")}, "\x00")
	if c.group != nil && key != c.key {
		c.closeGroup()
	}
	c.key = key
	c.group = append(c.group, fields)
	c.raw = append(c.raw, line)
}

// isHeader reads a header row (one naming the receipt column) and remembers column positions.
func (c *csvParser) isHeader(fields []string) bool {
	want := c.p.c.csvColumns["receipt"]
	if !slices.ContainsFunc(fields, func(f string) bool { return strings.EqualFold(strings.TrimSpace(f), want) }) {
		return false
	}
	c.idx = map[string]int{}
	for col, header := range c.p.c.csvColumns {
		for i, f := range fields {
			if strings.EqualFold(strings.TrimSpace(f), header) {
				c.idx[col] = i
			}
		}
	}
	return true
}

func (c *csvParser) get(fields []string, col string) string {
	i, ok := c.idx[col]
	if !ok || i >= len(fields) {
		return ""
	}
	return strings.TrimSpace(fields[i])
}

func (c *csvParser) closeGroup() {
	if c.group == nil {
		return
	}
	raw := strings.Join(c.raw, "\n")
	rec, flags, err := c.build(c.group)
	c.group, c.raw, c.key = nil, nil, ""
	if err != nil {
		c.emit(Result{Raw: raw, Err: fmt.Errorf("%w: %w", ErrIncomplete, err)})
		return
	}
	c.emit(Result{Record: rec, Raw: raw, Flags: flags})
}

var receiptColumns = []string{"kind", "date", "time", "terminal", "discount", "tax", "total", "tenders", "change", "original_receipt", "currency"}

func (c *csvParser) build(rows [][]string) (*protocol.Record, []string, error) {
	first := rows[0]
	b := &builder{p: c.p}
	r := &b.rec
	r.Receipt = c.get(first, "receipt")
	r.Kind = protocol.Kind(c.get(first, "kind"))
	if r.Kind == "" {
		r.Kind = protocol.KindSale
	}
	if r.Kind.IsReport() {
		return nil, nil, fmt.Errorf("kind %s: the csv format carries no report totals", r.Kind)
	}
	r.Terminal = c.terminal
	if t := c.get(first, "terminal"); r.Terminal == "" {
		r.Terminal = t
	} else if t != "" && t != r.Terminal {
		return nil, nil, fmt.Errorf("terminal %q, but this source is terminal %q", t, r.Terminal)
	}
	df := c.p.Fields.DateFormat
	if df == "" {
		df = "2006-01-02"
	}
	tf := c.p.Fields.TimeFormat
	if tf == "" {
		tf = "15:04:05"
	}
	if d := c.get(first, "date"); d != "" {
		t, err := time.ParseInLocation(df, d, c.p.c.loc)
		if err != nil {
			return nil, nil, fmt.Errorf("date %q does not match %q", d, df)
		}
		r.BusinessDate = t.Format("2006-01-02")
		if tm := c.get(first, "time"); tm != "" {
			t, err := time.ParseInLocation(df+" "+tf, d+" "+tm, c.p.c.loc)
			if err != nil {
				return nil, nil, fmt.Errorf("time %q does not match %q", tm, tf)
			}
			r.Time = t.Format(time.RFC3339)
		}
	}
	r.OriginalReceipt = c.get(first, "original_receipt")
	r.Currency = c.get(first, "currency")
	if r.Currency == "" {
		r.Currency = c.p.Fields.Currency
	}
	num := c.p.c.num
	money := func(col string) (int64, bool, error) {
		s := c.get(first, col)
		if s == "" {
			return 0, false, nil
		}
		v, err := num.amount(s)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", col, err)
		}
		return v, true, nil
	}
	for i, row := range rows[1:] {
		for _, col := range receiptColumns {
			if v := c.get(row, col); v != "" && v != c.get(first, col) {
				b.flags = append(b.flags, fmt.Sprintf("row %d: %s %q differs from the receipt's first row %q", i+2, col, v, c.get(first, col)))
			}
		}
	}
	for i, row := range rows {
		g := map[string]string{}
		for _, col := range []string{"sku", "description", "quantity", "unit_price", "amount"} {
			if v := c.get(row, col); v != "" {
				g[col] = v
			}
		}
		if len(g) == 0 {
			continue
		}
		amt, hasAmt, err := b.amount(g, "amount")
		if err != nil {
			return nil, nil, fmt.Errorf("row %d: %w", i+1, err)
		}
		l, err := b.item(g, amt, hasAmt)
		if err != nil {
			return nil, nil, fmt.Errorf("row %d: %w", i+1, err)
		}
		switch strings.ToLower(c.get(row, "voided")) {
		case "", "0", "false", "no", "n":
		case "1", "true", "yes", "y":
			l.Voided = true
		default:
			return nil, nil, fmt.Errorf("row %d: voided %q is not true/false", i+1, c.get(row, "voided"))
		}
		r.Lines = append(r.Lines, l)
	}
	if v, ok, err := money("discount"); err != nil {
		return nil, nil, err
	} else if ok && v != 0 {
		r.Discounts = []protocol.Discount{{Amount: abs(v)}}
	}
	if v, ok, err := money("tax"); err != nil {
		return nil, nil, err
	} else if ok && v != 0 {
		r.Taxes = []protocol.Tax{{Code: "tax", Amount: v}}
	}
	total, haveTotal, err := money("total")
	if err != nil {
		return nil, nil, err
	}
	if v, _, err := money("change"); err != nil {
		return nil, nil, err
	} else {
		r.Change = abs(v)
	}
	if s := c.get(first, "tenders"); s != "" {
		for _, part := range strings.Split(s, ";") {
			f := strings.Split(strings.TrimSpace(part), ":")
			if len(f) != 2 && len(f) != 4 {
				return nil, nil, fmt.Errorf("tender %q: want type:amount or type:amount:brand:last4", part)
			}
			typ := strings.ToLower(f[0])
			if mapped, ok := c.p.c.tenders[strings.ToUpper(f[0])]; ok {
				typ = mapped
			}
			v, err := num.amount(f[1])
			if err != nil {
				return nil, nil, fmt.Errorf("tender %q: %w", part, err)
			}
			t := protocol.Tender{Type: typ, Amount: v}
			if len(f) == 4 && (f[2] != "" || f[3] != "") {
				t.Card = &protocol.Card{Brand: strings.ToLower(f[2]), Last4: f[3]}
			}
			r.Tenders = append(r.Tenders, t)
		}
	}
	b.haveTotal = haveTotal
	r.Total = total
	if err := b.finish(r.Terminal); err != nil {
		return nil, nil, err
	}
	return r, b.flags, nil
}
