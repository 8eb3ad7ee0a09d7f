package protocol

import "strconv"

// decodeRecordFast decodes the JSON of one record written the way Go's encoder writes a Record
// (the agent's encoder): member names exactly as the struct tags, each once, strings without
// escapes, integers as plain digits, no nulls. It reports false for anything else, and the caller
// decodes the record with encoding/json instead, which is the reference: this path yields the same
// Record wherever it succeeds (FuzzDecodeRecordFast compares the two).
func decodeRecordFast(b []byte, r *Record) bool {
	p := envParser{s: b}
	var seen uint32
	ok := p.object(func(key []byte) bool {
		bit, ok := recordField(key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch string(key) {
		case "kind":
			var s string
			ok := p.str(&s)
			r.Kind = Kind(s)
			return ok
		case "store":
			return p.str(&r.Store)
		case "terminal":
			return p.str(&r.Terminal)
		case "receipt":
			return p.str(&r.Receipt)
		case "business_date":
			return p.str(&r.BusinessDate)
		case "time":
			return p.str(&r.Time)
		case "currency":
			return p.str(&r.Currency)
		case "original_receipt":
			return p.str(&r.OriginalReceipt)
		case "epoch":
			return p.str(&r.Epoch)
		case "hash":
			return p.str(&r.Hash)
		case "total":
			return p.int(&r.Total)
		case "change":
			return p.int(&r.Change)
		case "seq":
			return p.uint(&r.Seq)
		case "captured_at":
			start := p.i
			var s string
			return p.str(&s) && r.CapturedAt.UnmarshalJSON(p.s[start:p.i]) == nil
		case "lines":
			r.Lines = []Line{}
			return p.array(func() bool {
				var l Line
				var seen uint32
				ok := p.object(func(key []byte) bool {
					return p.fields(&seen, key, []string{"sku", "description", "quantity", "unit_price", "amount", "department", "voided"},
						[]any{&l.SKU, &l.Description, &l.Quantity, &l.UnitPrice, &l.Amount, &l.Department, &l.Voided})
				})
				r.Lines = append(r.Lines, l)
				return ok
			})
		case "discounts":
			r.Discounts = []Discount{}
			return p.array(func() bool {
				var d Discount
				var seen uint32
				ok := p.object(func(key []byte) bool {
					return p.fields(&seen, key, []string{"description", "amount"}, []any{&d.Description, &d.Amount})
				})
				r.Discounts = append(r.Discounts, d)
				return ok
			})
		case "taxes":
			r.Taxes = []Tax{}
			return p.taxes(&r.Taxes)
		case "tenders":
			r.Tenders = []Tender{}
			return p.array(func() bool {
				var t Tender
				var seen uint32
				ok := p.object(func(key []byte) bool {
					if string(key) == "card" {
						if seen&(1<<2) != 0 {
							return false
						}
						seen |= 1 << 2
						t.Card = &Card{}
						var cs uint32
						return p.object(func(key []byte) bool {
							return p.fields(&cs, key, []string{"brand", "last4"}, []any{&t.Card.Brand, &t.Card.Last4})
						})
					}
					return p.fields(&seen, key, []string{"type", "amount"}, []any{&t.Type, &t.Amount})
				})
				r.Tenders = append(r.Tenders, t)
				return ok
			})
		case "source":
			r.Source = &Source{}
			var ss uint32
			return p.object(func(key []byte) bool {
				return p.fields(&ss, key, []string{"terminal", "profile", "raw"}, []any{&r.Source.Terminal, &r.Source.Profile, &r.Source.Raw})
			})
		case "z":
			z := &ZReport{}
			r.Z = z
			var zs uint32
			return p.object(func(key []byte) bool {
				switch string(key) {
				case "refunds", "voids":
					c := &z.Refunds
					bit := uint32(1 << 10)
					if string(key) == "voids" {
						c, bit = &z.Voids, 1<<11
					}
					if zs&bit != 0 {
						return false
					}
					zs |= bit
					var cs uint32
					return p.object(func(key []byte) bool {
						return p.fields(&cs, key, []string{"count", "amount"}, []any{&c.Count, &c.Amount})
					})
				case "tenders":
					if zs&(1<<12) != 0 {
						return false
					}
					zs |= 1 << 12
					z.Tenders = []TenderTotal{}
					return p.array(func() bool {
						var t TenderTotal
						var seen uint32
						ok := p.object(func(key []byte) bool {
							return p.fields(&seen, key, []string{"type", "count", "amount"}, []any{&t.Type, &t.Count, &t.Amount})
						})
						z.Tenders = append(z.Tenders, t)
						return ok
					})
				case "taxes":
					if zs&(1<<13) != 0 {
						return false
					}
					zs |= 1 << 13
					z.Taxes = []Tax{}
					return p.taxes(&z.Taxes)
				}
				return p.fields(&zs, key, []string{"counter", "gross", "net", "no_sale_count", "grand_total"},
					[]any{&z.Counter, &z.Gross, &z.Net, &z.NoSaleCount, &z.GrandTotal})
			})
		}
		return false
	})
	p.ws()
	return ok && p.i == len(p.s)
}

var recordFields = []string{"kind", "store", "terminal", "receipt", "business_date", "time", "currency", "lines",
	"discounts", "taxes", "total", "tenders", "change", "original_receipt", "z", "epoch", "seq", "captured_at", "hash", "source"}

func recordField(key []byte) (uint32, bool) {
	for i, f := range recordFields {
		if string(key) == f {
			return 1 << i, true
		}
	}
	return 0, false
}

func (p *envParser) taxes(dst *[]Tax) bool {
	return p.array(func() bool {
		var t Tax
		var seen uint32
		ok := p.object(func(key []byte) bool {
			return p.fields(&seen, key, []string{"code", "rate", "taxable", "amount"}, []any{&t.Code, &t.Rate, &t.Taxable, &t.Amount})
		})
		*dst = append(*dst, t)
		return ok
	})
}

// fields reads the value of member key into the destination of the same index in names (a
// *string, *int64 or *bool), refusing unknown and repeated members (bits of seen, by index).
func (p *envParser) fields(seen *uint32, key []byte, names []string, dsts []any) bool {
	for i, n := range names {
		if string(key) != n {
			continue
		}
		if *seen&(1<<i) != 0 {
			return false
		}
		*seen |= 1 << i
		switch d := dsts[i].(type) {
		case *string:
			return p.str(d)
		case *int64:
			return p.int(d)
		case *bool:
			switch {
			case p.lit("true"):
				*d = true
			case p.lit("false"):
				*d = false
			default:
				return false
			}
			return true
		}
		return false
	}
	return false
}

// object reads an object, calling member with each name once the parser is at its value; the
// member function must read the value.
func (p *envParser) object(member func(key []byte) bool) bool {
	p.ws()
	if !p.byte('{') {
		return false
	}
	p.ws()
	if p.byte('}') {
		return true
	}
	for {
		p.ws()
		key, ok := p.plainString()
		if !ok {
			return false
		}
		p.ws()
		if !p.byte(':') {
			return false
		}
		p.ws()
		if p.peek() == 'n' || !member(key) { // null: left to the general decoder
			return false
		}
		p.ws()
		if p.byte(',') {
			continue
		}
		return p.byte('}')
	}
}

// array reads an array, calling elem at each element.
func (p *envParser) array(elem func() bool) bool {
	if !p.byte('[') {
		return false
	}
	p.ws()
	if p.byte(']') {
		return true
	}
	for {
		p.ws()
		if p.peek() == 'n' || !elem() {
			return false
		}
		p.ws()
		if p.byte(',') {
			continue
		}
		return p.byte(']')
	}
}

func (p *envParser) str(dst *string) bool {
	s, ok := p.plainString()
	if ok {
		*dst = string(s)
	}
	return ok
}

// digits returns the JSON integer at the parser (optional minus, no leading zero, no fraction
// or exponent) without advancing.
func (p *envParser) digits() (int, bool) {
	j := p.i
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	k := j
	for k < len(p.s) && p.s[k] >= '0' && p.s[k] <= '9' {
		k++
	}
	if k == j || (k-j > 1 && p.s[j] == '0') {
		return 0, false
	}
	if k < len(p.s) && (p.s[k] == '.' || p.s[k] == 'e' || p.s[k] == 'E') {
		return 0, false
	}
	return k, true
}

func (p *envParser) int(dst *int64) bool {
	k, ok := p.digits()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(string(p.s[p.i:k]), 10, 64)
	if err != nil {
		return false
	}
	*dst, p.i = n, k
	return true
}

func (p *envParser) uint(dst *uint64) bool {
	k, ok := p.digits()
	if !ok || p.s[p.i] == '-' {
		return false
	}
	n, err := strconv.ParseUint(string(p.s[p.i:k]), 10, 64)
	if err != nil {
		return false
	}
	*dst, p.i = n, k
	return true
}
