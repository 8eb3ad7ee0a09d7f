package draft

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/lanebridge/lanebridge/agent/internal/escpos"
	"github.com/lanebridge/lanebridge/protocol"
)

// rule is one generated rule with the reason it was made.
type rule struct {
	section string // fields, z, kind, ignore (cleaning.ignore_lines), cont (cleaning.continuations)
	typ     string // field rule type, z field or kind
	match   string
	require []string
	width   int
	why     string
	prio    int
	lengths map[int]int // rune lengths of the sample lines it matched
	hits    int
}

type drafter struct {
	opt               Options
	dc                decoding
	fr                framing
	rs                []receipt
	dstats            escpos.Stats
	num               amountFormat
	currency          string
	currencyWhy       string // why the currency was changed or dropped (a comment in the draft)
	dates             dateInfo
	rules             map[string]*rule // by section+match
	tenders           map[string]string
	notes             []string // things for the integrator to look at
	fixed             map[string]int
	contMode          bool
	detail            *regexp.Regexp // detailRE compiled
	amtTok            *regexp.Regexp // a whole token that is an amount
	startRE           *regexp.Regexp // the framing markers, compiled
	endRE             *regexp.Regexp
	shapeREs          map[string]*regexp.Regexp // item shapes, compiled
	lastAmount        int                       // index of the last amount line of the receipt being read
	voidsWithoutTotal int                       // sample voids that print no total
	inferredReturn    bool                      // a return title was inferred from the sign of the totals
	// otherSeen counts, per generalised line, the receipts that print it
	otherSeen map[string]int
	// anyAmount finds an amount anywhere in a line
	anyAmount *regexp.Regexp
	// receiptShape is the shape of the line that carries the receipt number
	receiptShape string
	receiptSeq   bool // the receipt line was found by its number going up, not by a label

	// what the sample holds per kind, for require lists
	kindN        map[protocol.Kind]int
	itemsIn      map[protocol.Kind]int
	tendersIn    map[protocol.Kind]int
	negativeSale int
}

func newDrafter(opt Options, dc decoding, fr framing, rs []receipt, st escpos.Stats) *drafter {
	return &drafter{opt: opt, dc: dc, fr: fr, rs: rs, dstats: st, rules: map[string]*rule{}, tenders: map[string]string{},
		fixed: map[string]int{}, otherSeen: map[string]int{}, shapeREs: map[string]*regexp.Regexp{}, kindN: map[protocol.Kind]int{}, itemsIn: map[protocol.Kind]int{}, tendersIn: map[protocol.Kind]int{}}
}

// add records a rule (once per section and regex) and that a sample line matched it.
func (d *drafter) add(r rule, line string) *rule {
	if _, err := regexp.Compile(r.match); err != nil || len(d.rules) >= maxRules {
		return nil
	}
	key := r.section + "\x00" + r.match
	have := d.rules[key]
	if have == nil {
		r.lengths = map[int]int{}
		have = &r
		d.rules[key] = have
	}
	have.hits++
	if line != "" {
		have.lengths[runeLen(line)]++
	}
	return have
}

var (
	separatorRE = regexp.MustCompile(`^[\s\-=*_─━═~.+#]{5,}$`)
	panRE       = regexp.MustCompile(`[*Xx•]{4,}[- ]?(\d{4})`)
	pseudoRE    = regexp.MustCompile(`^\[(?:barcode|code2d) [^\]]*\] `)
)

// Regex pieces.
const (
	qtyRE   = `\d+(?:[.,]\d{1,3})?`
	unitSfx = `(?:\s?(?:[A-Za-z]{1,3}\.?|個|개|点|件|pcs))?`
	timesRE = `\s?[xX@×*]\s?`
	descRE  = `(?P<description>\S.*?)`
)

func (d *drafter) analyse() {
	var all []string
	for _, r := range d.rs {
		all = append(all, r.lines...)
	}
	d.num = inferAmounts(all)
	d.currency = d.num.detectSymbols(all)
	d.currency, d.currencyWhy = fitCurrency(d.currency, d.num.minor)
	d.num.compile()
	d.anyAmount = regexp.MustCompile(`(?:^|[^\d.,])` + d.num.full + `(?:$|[^\d.,])`)
	if d.num.minor == 0 {
		d.anyAmount = regexp.MustCompile(`(?:^|[^\d.,])` + d.num.bare + `(?:$|[^\d.,])`)
		if len(d.num.symbols) > 0 {
			d.anyAmount = regexp.MustCompile(`(?:` + strings.Join(quoteAll(d.num.symbols), "|") + `) ?` + d.num.bare)
		}
	}
	d.dates = inferDates(all)
	d.detail = regexp.MustCompile(d.detailRE())
	d.amtTok = regexp.MustCompile(`^` + d.num.full + `$`)
	if d.fr.startText != "" {
		d.startRE = regexp.MustCompile(d.fr.startText)
	}
	if d.fr.endText != "" {
		d.endRE = regexp.MustCompile(d.fr.endText)
	}

	// Kinds, from title lines.
	for i := range d.rs {
		r := &d.rs[i]
		r.kind = protocol.KindSale
		for _, l := range r.lines {
			if k, _ := kindTitle(l); k != "" {
				r.kind = k
				break
			}
		}
		d.kindN[r.kind]++
	}
	// Fixed lines: printed on most receipts, no amount, no date, not a title or marker.
	per := map[string]int{}
	for _, r := range d.rs {
		seen := map[string]bool{}
		for _, l := range r.lines {
			t := strings.TrimSpace(l)
			if !seen[t] {
				seen[t] = true
				per[t]++
			}
		}
	}
	d.pickReceipt()
	need := max(2, (len(d.rs)*3+4)/5)
	for t, n := range per {
		if n >= need && d.canIgnore(t, n) {
			d.fixed[t] = n
		}
	}
	for _, kw := range kindWords {
		why := "from the keyword table (no such receipt in the sample)"
		if d.kindN[kw.kind] > 0 {
			why = fmt.Sprintf("from the keyword table; %d such receipt(s) in the sample", d.kindN[kw.kind])
		}
		d.add(rule{section: "kind", typ: string(kw.kind), match: kindRE(kw.kind, ""), why: why}, "")
		if !kw.kind.IsReport() {
			d.add(rule{section: "fields", typ: "ignore", match: kindRE(kw.kind, ""), prio: 1, why: fmt.Sprintf("%s title lines (classification reads them)", kw.kind)}, "")
		}
	}
	d.add(rule{section: "fields", typ: "tender", match: "tender-words", prio: 5, why: "tender lines: any word of the tender table or seen in the sample, then the amount"}, "")
	d.genericZ()
	if d.dates.form != nil {
		tok := `\S+`
		if d.num.minor > 0 {
			tok = `[^\s` + regexp.QuoteMeta(d.num.dec) + `]+`
		}
		tm := ""
		if d.dates.timeLayout != "" {
			tm = `(?:\s+(?P<time>\d{1,2}:\d\d(?::\d\d)?))?`
		}
		d.add(rule{section: "fields", typ: "header", match: `^\s*(?:` + tok + `\s+){0,2}(?P<date>` + d.dates.find(d.dates.sampleDate).re + `)` + tm + `(?:\s+` + tok + `){0,4}\s*$`, prio: 9,
			why: "any other line with a date and a few words (no amount): the date"}, "")
	}
	d.add(rule{section: "fields", typ: "card", match: `^\s*[^\d]*[*Xx•]{4,}[- ]?(?P<last4>\d{4})\s*$`, prio: 6, why: "a masked card number on a line of its own: its last four go to the card tender"}, "")
	d.detectContinuations()
	for i := range d.rs {
		d.receiptRules(&d.rs[i])
	}
	d.finishRules()
}

// canIgnore says whether a repeated line may be left out: it must carry nothing a rule needs.
func (d *drafter) canIgnore(t string, n int) bool {
	if runeLen(t) > maxLineLen || t == "" {
		return false
	}
	// A line with what may be an amount is fixed only when printed identically on nearly every
	// receipt (an address ending in a house number, in a currency without decimals).
	if label, _, ok := d.num.split(t); ok {
		if r, _ := roleOf(label); r != "" || n*5 < len(d.rs)*4 {
			return false
		}
	}
	if k, _ := kindTitle(t); k != "" {
		return false
	}
	if r, _ := roleOf(t); r != "" {
		return false
	}
	if d.dates.find(t) != nil || panRE.MatchString(t) || pseudoRE.MatchString(t) || d.isReceiptLine(t) {
		return false
	}
	for _, re := range []*regexp.Regexp{d.startRE, d.endRE} {
		if re != nil && re.MatchString(t) {
			return false
		}
	}
	return true
}

// detailRE matches a quantity line: "2 x 1.99", "0,456 kg x 2,99 EUR/kg   1,36".
func (d *drafter) detailRE() string {
	return `^\s*(?P<quantity>` + qtyRE + `)` + unitSfx + timesRE + `(?P<unit_price>` + d.num.full + `)(?:\s*/\s*[^\s\d]{1,3})?(?:\s+(?P<amount>` + d.num.full + `))?` + d.num.suffix() + `$`
}

// detectContinuations decides how quantity lines attach to items: after a description printed
// alone (joined onto it) or after a whole item line (an item_detail rule).
func (d *drafter) detectContinuations() {
	det := regexp.MustCompile(d.detailRE())
	afterDesc, afterItem := 0, 0
	for _, r := range d.rs {
		for i := 1; i < len(r.lines); i++ {
			m := det.FindStringSubmatch(r.lines[i])
			if m == nil || m[det.SubexpIndex("amount")] == "" {
				if m != nil {
					afterItem++
				}
				continue
			}
			prev := strings.TrimSpace(r.lines[i-1])
			if _, _, ok := d.num.split(prev); ok {
				afterItem++
			} else if d.plainText(prev) {
				afterDesc++
			}
		}
	}
	if afterDesc > 0 && afterDesc >= afterItem {
		d.contMode = true
		m := `^\s+` + strings.TrimPrefix(d.detailRE(), `^\s*`)
		if !strings.HasPrefix(d.detailRE(), `^\s*`) {
			m = d.detailRE()
		}
		d.add(rule{section: "cont", match: m, why: fmt.Sprintf("%d quantity lines with an amount follow a description printed alone: joined onto it", afterDesc)}, "")
		// Join them in the sample too, as the parser will.
		for ri := range d.rs {
			r := &d.rs[ri]
			var out []string
			for i, l := range r.lines {
				if i > 0 && det.MatchString(l) && strings.HasPrefix(l, " ") && len(out) > 0 {
					if _, _, ok := d.num.split(strings.TrimSpace(out[len(out)-1])); !ok {
						out[len(out)-1] += " " + strings.TrimLeft(l, " \t")
						continue
					}
				}
				out = append(out, l)
			}
			r.lines = out
		}
	}
}

// plainText is a line of words: no amount, date, card number or title.
func (d *drafter) plainText(t string) bool {
	if t == "" || d.fixed[t] > 0 || separatorRE.MatchString(t) {
		return false
	}
	if _, _, ok := d.num.split(t); ok {
		return false
	}
	k, _ := kindTitle(t)
	return k == "" && d.dates.find(t) == nil && !panRE.MatchString(t) && !pseudoRE.MatchString(t)
}

type pending struct {
	label, line string
	v           int64
}

// onPositive says whether a line is printed on a receipt whose total is not negative.
func (d *drafter) onPositive(t string) bool {
	for _, r := range d.rs {
		has, neg := false, false
		for _, l := range r.lines {
			if l == t {
				has = true
			}
			if label, amt, ok := d.num.split(l); ok {
				if role, _ := roleOf(label); role == roleTotal {
					v, _ := d.num.value(amt)
					neg = v < 0
				}
			}
		}
		if has && !neg {
			return true
		}
	}
	return false
}

func (d *drafter) receiptRules(r *receipt) {
	report := r.kind.IsReport()
	d.lastAmount = -1
	for i, l := range r.lines {
		if _, _, ok := d.num.split(l); ok {
			d.lastAmount = i
		}
	}
	seenAmount, seenTotal := false, false
	items, tenders := 0, 0
	var total, tendered int64
	var unknown []pending
	var titles []string // short lines of words only: candidate titles
	haveTotal := false
	for i, l := range r.lines {
		t := strings.TrimSpace(l)
		if d.fixed[t] > 0 || runeLen(l) > maxLineLen {
			continue
		}
		if separatorRE.MatchString(l) {
			d.add(rule{section: "ignore", match: `^[\s\-=*_─━═~.+#]{5,}$`, why: "separator rules (runs of - = * _ or box drawing)"}, l)
			continue
		}
		if k, w := kindTitle(l); k != "" {
			if report {
				d.zCounter(l, w)
			} else if !kindREs[k].MatchString(l) {
				d.add(rule{section: "fields", typ: "ignore", match: shape(l), prio: 1, why: fmt.Sprintf("the %s title line (classification reads it)", k)}, l)
			}
			continue
		}
		if d.startRE != nil && d.startRE.MatchString(l) && i == 0 {
			continue // the framing marker: never flagged
		}
		if pseudoRE.MatchString(l) {
			d.add(rule{section: "fields", typ: "ignore", match: `^\[(?:barcode|code2d) [^\]]*\] .*$`, prio: 1, why: "barcode / 2D code payloads, offered as [barcode …] lines"}, l)
			continue
		}
		_, _, isAmt := d.num.split(l)
		if d.dates.find(l) != nil || (!seenAmount && (!isAmt || d.num.minor == 0) && d.isReceiptLine(l)) {
			re, groups := d.genLine(l, d.isReceiptLine(l))
			if d.receiptSeq && d.isReceiptLine(l) && !has(groups, "receipt") {
				re, groups = strings.Replace(re, `\d+`, `(?P<receipt>\d+)`, 1), append(groups, "receipt (its number goes up from receipt to receipt)")
				if strings.Count(l, " ") > 0 && len(digitsRE.FindAllString(l, -1)) > 1 {
					re = d.seqReceiptRE(l)
				}
			}
			d.add(rule{section: "fields", typ: "header", match: re, prio: 0, why: "header line with " + strings.Join(groups, ", ")}, l)
			continue
		}
		if w, ok := hasAnyWord(l, originalWords); ok && digitsRE.MatchString(l) && !report {
			re, _ := d.genLine(l, false)
			re = strings.Replace(re, `\d+`, `(?P<original>\d+)`, 1)
			d.add(rule{section: "fields", typ: "original_receipt", match: re, prio: 0, why: fmt.Sprintf("%q: the original receipt of a return", w)}, l)
			continue
		}
		label, amt, ok := d.num.split(l)
		if ok && !report && seenTotal && vatRowRE.MatchString(strings.TrimSpace(label)) {
			// "21%  3,14  0,66" / "A 7% 8,91 0,62": a row of the VAT table: rate, base, then the tax
			d.add(rule{section: "fields", typ: "tax", match: d.vatRow(), prio: 2, why: "a VAT table row after the total: rate, taxable base, then the tax"}, l)
			continue
		}
		if report {
			d.zLine(l, label, amt, ok)
			continue
		}
		if !ok {
			if m := panRE.FindStringIndex(l); m != nil {
				re, _ := d.genLine(l, false)
				d.add(rule{section: "fields", typ: "card", match: re, prio: 6, why: "a masked card number: its last four digits go to the card tender"}, l)
				continue
			}
			if m := skuLineRE.FindStringSubmatch(l); m != nil && !seenTotal {
				if w, ok := hasAnyWord(m[1], skuWords); ok {
					d.add(rule{section: "fields", typ: "item_detail", match: `^\s*` + d.genLabel(m[1], "") + `[\s:#.]*(?P<sku>\d+)\s*$`, prio: 8, why: fmt.Sprintf("%q: the article number of the item above", w)}, l)
					continue
				}
			}
			if d.detail.MatchString(l) && !d.contMode {
				d.add(rule{section: "fields", typ: "item_detail", match: d.detailRE(), prio: 8, why: "quantity × unit price under an item line"}, l)
				continue
			}
			if !strings.ContainsAny(l, "0123456789") && len(strings.Fields(l)) <= 6 && d.plainText(strings.TrimSpace(l)) {
				titles = append(titles, l)
			}
			d.otherLine(r, i, l, seenAmount)
			continue
		}
		if !d.contMode && d.detail.MatchString(l) {
			d.add(rule{section: "fields", typ: "item_detail", match: d.detailRE(), prio: 8, why: "quantity × unit price under an item line"}, l)
			continue
		}
		seenAmount = true
		role, word := roleOf(label)
		v, _ := d.num.value(amt)
		switch {
		case role == roleTotal:
			seenTotal = true
			total, haveTotal = v, true
			d.add(rule{section: "fields", typ: "total", match: d.labelled(label, "total"), prio: 3, why: fmt.Sprintf("%q is a total word", word)}, l)
		case role == roleSubtotal:
			d.add(rule{section: "fields", typ: "subtotal", match: d.labelled(label, "subtotal"), prio: 2, why: fmt.Sprintf("%q is a subtotal word", word)}, l)
		case role == roleChange:
			d.add(rule{section: "fields", typ: "change", match: d.labelled(label, "change"), prio: 4, why: fmt.Sprintf("%q is a change word", word)}, l)
		case role == roleTaxable:
			d.add(rule{section: "fields", typ: "tax", match: `^\s*` + d.genLabel(label, "") + `[\s:=]+(?P<taxable>` + d.num.full + `)` + d.num.suffix() + `$`, prio: 2, why: fmt.Sprintf("%q is a taxable-amount word", word)}, l)
		case role == roleTax:
			d.add(rule{section: "fields", typ: "tax", match: d.labelled(label, "tax"), prio: 2, why: fmt.Sprintf("%q is a tax word", word)}, l)
		case role == roleDiscount:
			d.add(rule{section: "fields", typ: "discount", match: `^\s*(?P<description>` + d.genLabel(label, "") + `)[\s:=]+(?P<amount>` + d.num.full + `)` + d.num.suffix() + `$`, prio: 7, why: fmt.Sprintf("%q is a discount word", word)}, l)
		case role == "" && seenTotal && strings.TrimSpace(label) != "":
			unknown = append(unknown, pending{label, l, v})
		case tenderRoles[role] != "":
			tenders++
			tendered += v
			d.tender(label, role, l, fmt.Sprintf("%q is a %s tender word", word, tenderRoles[role]))
		default:
			if w, ok := hasAnyWord(label, voidItemWords); ok {
				pre := voidPrefix(label, w)
				d.add(rule{section: "fields", typ: "item_void", match: `^\s*` + regexp.QuoteMeta(strings.TrimSpace(pre)) + `\s*` + `(?:` + descRE + `\s+)?(?P<amount>` + d.num.full + `)` + d.num.suffix() + `$`, prio: 8,
					why: fmt.Sprintf("%q marks a voided item", w)}, l)
				continue
			}
			items++
			d.item(label, l)
		}
	}
	// Unknown lines after the total: the change if the sums say so, else a tender of type other.
	for _, u := range unknown {
		if u.v > 0 && haveTotal && u.v == tendered-total && len(unknown) > 0 && tendered > 0 {
			d.add(rule{section: "fields", typ: "change", match: d.labelled(u.label, "change"), prio: 4,
				why: fmt.Sprintf("%q is not a known word, but its amount is Σtenders − total on the sample receipt: the change", strings.TrimSpace(u.label))}, u.line)
			continue
		}
		tenders++
		d.tender(u.label, roleTenderOth, u.line, "an amount after the total with a label the table does not know: a tender, type other (check)")
	}
	// A title no table knows, printed only on receipts with a negative total: a return.
	if r.kind == protocol.KindSale && haveTotal && total < 0 {
		for _, t := range titles {
			if !d.onPositive(t) {
				d.add(rule{section: "kind", typ: string(protocol.KindReturn), match: shape(t), prio: 0,
					why: fmt.Sprintf("%q is printed only on receipts with a negative total", strings.TrimSpace(t))}, "")
				d.inferredReturn = true
			}
		}
	}
	if items > 0 {
		d.itemsIn[r.kind]++
	}
	if tenders > 0 {
		d.tendersIn[r.kind]++
	}
	if r.kind == protocol.KindSale && haveTotal && total < 0 {
		d.negativeSale++
	}
	if r.kind == protocol.KindVoid && !haveTotal {
		d.voidsWithoutTotal++
	}
}

var skuLineRE = regexp.MustCompile(`^\s*([^\d]+?)[\s:#.]*(\d{3,14})\s*$`)

var (
	itemNoCodeRE = regexp.MustCompile(`^\s*\d{1,4}\s+\d{6,14}\s+\S`)
	codeRE       = regexp.MustCompile(`^\s*\d{6,14}\s+\S`)
)

var (
	pctRE   = regexp.MustCompile(`^(\d+(?:[.,]\d+)?)\s?%$`)
	intRE   = regexp.MustCompile(`^\d+$`)
	kindREs = func() map[protocol.Kind]*regexp.Regexp {
		m := map[protocol.Kind]*regexp.Regexp{}
		for _, kw := range kindWords {
			m[kw.kind] = regexp.MustCompile(kindRE(kw.kind, ""))
		}
		return m
	}()
)

var voidItemWords = []string{"ITEM VOID", "VOID", "STORNO", "CANCEL", "ANULADO", "CANCELADO", "ANNULÉ", "取消", "취소", "BATAL", "KOREKSI"}

// voidPrefix is the label up to the end of the void word and the decoration after it.
func voidPrefix(label, w string) string {
	u := strings.ToUpper(label)
	i := strings.Index(u, w)
	if i < 0 {
		return w
	}
	j := i + len(w)
	for j < len(label) && strings.ContainsRune("*#:-=> ", rune(label[j])) {
		j++
	}
	if j > len(label) {
		j = len(label)
	}
	return label[:j]
}

// otherLine handles a line with no amount that is not a header, title or fixed line.
func (d *drafter) otherLine(r *receipt, i int, l string, seenAmount bool) {
	if d.anyAmount.MatchString(l) {
		// What looks like money is never ignored: the line flags its receipt until a rule takes it.
		d.notes = append(d.notes, fmt.Sprintf("left unmatched (flags its receipt): %q — it holds what looks like an amount", strings.TrimSpace(l)))
		return
	}
	re, _ := d.genLine(l, false)
	// Repeated across receipts, or in the header or footer area: safe to ignore (no amount).
	n, ok := d.otherSeen[re]
	if !ok {
		cre, err := regexp.Compile(re)
		if err != nil {
			return
		}
		for _, o := range d.rs {
			for _, ol := range o.lines {
				if cre.MatchString(ol) {
					n++
					break
				}
			}
		}
		d.otherSeen[re] = n
	}
	footer := i > d.lastAmount
	if n >= 2 || !seenAmount || footer {
		d.add(rule{section: "fields", typ: "ignore", match: re, prio: 9, why: fmt.Sprintf("text without an amount, on %d receipt(s)", n)}, l)
		return
	}
	d.notes = append(d.notes, fmt.Sprintf("left unmatched (flags its receipt): %q — a wrapped description? add a rule or a continuation", strings.TrimSpace(l)))
}

// labelled is a keyword line's regex: its label words, then the amount.
func (d *drafter) labelled(label, role string) string {
	return `^\s*` + d.genLabel(label, role) + `[\s:=]+(?P<amount>` + d.num.full + `)` + d.num.suffix() + `$`
}

func (d *drafter) tender(label, role, line, why string) {
	typ := tenderRoles[role]
	lab := strings.Trim(label, decoration)
	if m := panRE.FindStringSubmatchIndex(lab); m != nil {
		words := strings.TrimSpace(lab[:m[0]])
		if role != roleTenderOth || hasTableWord(words) {
			d.tenders[normLabel(words)] = typ
		}
		d.add(rule{section: "fields", typ: "tender", match: `^\s*(?P<tender>` + d.genLabel(words, "") + `)[\s:]+[*Xx•]{4,}[- ]?(?P<last4>\d{4})[\s:=]+(?P<amount>` + d.num.full + `)` + d.num.suffix() + `$`, prio: 5,
			why: why + "; the card number is masked, its last four kept"}, line)
		return
	}
	if role != roleTenderOth || hasTableWord(lab) {
		// A label the table does not know stays out of fields.tenders: the parser then flags
		// each such tender as "counted as other" instead of the draft passing a guess as fact.
		d.tenders[normLabel(lab)] = typ
	}
	d.add(rule{section: "fields", typ: "tender", match: "tender-words", prio: 5, why: "tender lines: any word of the tender table or seen in the sample, then the amount"}, line)
}

func (d *drafter) item(label, line string) {
	full, sfx := d.num.full, d.num.suffix()
	pre := `^\s*`
	if w, ok := leadingKindWord(label); ok {
		pre = `^\s*` + regexp.QuoteMeta(w) + `\s+`
	}
	switch {
	case itemNoCodeRE.MatchString(label):
		pre += `\d{1,4}\s+(?P<sku>\d{6,14})\s+` // an item number and an article code before the description
	case codeRE.MatchString(label):
		pre += `(?P<sku>\d{6,14})\s+`
	}
	shapes := []struct{ name, re string }{
		{"quantity × unit price, then description", pre + `(?P<quantity>` + qtyRE + `)` + unitSfx + timesRE + `(?P<unit_price>` + full + `)\s+` + descRE + `\s+(?P<amount>` + full + `)` + sfx + `$`},
		{"description, quantity × unit price", pre + descRE + `\s+(?P<quantity>` + qtyRE + `)` + unitSfx + timesRE + `(?P<unit_price>` + full + `)(?:\s*/\s*[^\s\d]{1,3})?\s+(?P<amount>` + full + `)` + sfx + `$`},
		{"columns: description, quantity, unit price", pre + descRE + `\s{2,}(?P<quantity>` + qtyRE + `)\s+(?P<unit_price>` + full + `)\s+(?P<amount>` + full + `)` + sfx + `$`},
		{"columns: description, quantity", pre + descRE + `\s{2,}(?P<quantity>\d+)\s{2,}(?P<amount>` + full + `)` + sfx + `$`},
		{"columns: quantity, description, unit price", pre + `(?P<quantity>` + qtyRE + `)\s+` + descRE + `\s+(?P<unit_price>` + full + `)\s+(?P<amount>` + full + `)` + sfx + `$`},
		{"quantity × description", pre + `(?P<quantity>\d+)\s?[xX×*]\s+` + descRE + `\s+(?P<amount>` + full + `)` + sfx + `$`},
		{"columns: quantity, description", pre + `(?P<quantity>` + qtyRE + `)\s{2,}` + descRE + `\s+(?P<amount>` + full + `)` + sfx + `$`},
	}
	for i, s := range shapes {
		re := d.shapeREs[s.re]
		if re == nil {
			re = regexp.MustCompile(s.re)
			d.shapeREs[s.re] = re
		}
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if u := re.SubexpIndex("unit_price"); u >= 0 && !d.lineMath(m[re.SubexpIndex("quantity")], m[u], m[re.SubexpIndex("amount")]) {
			continue
		}
		d.add(rule{section: "fields", typ: "item", match: s.re, prio: 10 + i, why: "item lines: " + s.name + " (from the positions in the sample)"}, line)
		return
	}
	d.add(rule{section: "fields", typ: "item", match: pre + descRE + `\s+(?P<amount>` + full + `)` + sfx + `$`, prio: 15, why: "item lines: description, amount at the end"}, line)
}

func leadingKindWord(label string) (string, bool) {
	f := strings.Fields(label)
	if len(f) < 2 {
		return "", false
	}
	u := strings.ToUpper(f[0])
	for _, kw := range kindWords {
		if kw.kind == protocol.KindReturn || kw.kind == protocol.KindVoid {
			for _, w := range kw.words {
				if u == w {
					return f[0], true
				}
			}
		}
	}
	return "", false
}

// lineMath checks quantity × unit = amount for a sample line, so that digits in a description
// are not taken for a quantity column.
func (d *drafter) lineMath(q, unit, amt string) bool {
	u, ok1 := d.num.value(unit)
	a, ok2 := d.num.value(amt)
	if !ok1 || !ok2 {
		return false
	}
	q = strings.Replace(q, ",", ".", 1)
	var num, scale int64 = 0, 1
	ip, fp, _ := strings.Cut(q, ".")
	for _, c := range ip + fp {
		num = num*10 + int64(c-'0')
	}
	for range fp {
		scale *= 10
	}
	got := (num*u*2 + scale) / (2 * scale)
	return abs(got-abs(a)) <= 1
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// zCounter turns a report's title line into the z counter rule (its number, if any).
func (d *drafter) zCounter(l, w string) {
	re, _ := d.genLine(l, false)
	if strings.Contains(re, `\d+`) {
		re = replaceLast(re, `\d+`, `(?P<count>\d+)`)
		d.add(rule{section: "z", typ: "counter", match: re, why: fmt.Sprintf("report title %q with the report's number", w)}, l)
		return
	}
	d.add(rule{section: "fields", typ: "ignore", match: re, prio: 1, why: "the report title line"}, l)
}

func replaceLast(s, old, repl string) string {
	i := strings.LastIndex(s, old)
	if i < 0 {
		return s
	}
	return s[:i] + repl + s[i+len(old):]
}

var countEndRE = regexp.MustCompile(`^(.*?\D)\s*(\d+)$`)

// zLine makes a z_report rule for a report line.
func (d *drafter) zLine(l, label, amt string, ok bool) {
	if !ok {
		// A count only: no-sale counts.
		if m := countEndRE.FindStringSubmatch(l); m != nil {
			if f, w := zFieldOf(m[1]); f == "no_sale_count" {
				d.add(rule{section: "z", typ: f, match: `^\s*` + d.genLabel(m[1], "") + `\s*(?P<count>\d+)$`, why: fmt.Sprintf("%q: the no-sale count", w)}, l)
				return
			}
		}
		re, _ := d.genLine(l, false)
		if !digitsRE.MatchString(l) {
			d.add(rule{section: "fields", typ: "ignore", match: re, prio: 9, why: "report text without numbers"}, l)
			return
		}
		d.notes = append(d.notes, fmt.Sprintf("report line not understood (flags the report): %q", strings.TrimSpace(l)))
		return
	}
	f, w := zFieldOf(label)
	if f == "" {
		if r, rw := roleOf(label); tenderRoles[r] != "" {
			f, w = "tender", rw
		}
	}
	if f == "" || f == "no_sale_count" {
		d.notes = append(d.notes, fmt.Sprintf("report line not understood (flags the report): %q", strings.TrimSpace(l)))
		return
	}
	lab := d.genLabel(label, "z")
	if f == "tender" {
		r, _ := roleOf(label)
		typ := tenderRoles[r]
		if typ == "" {
			typ = protocol.TenderOther
		}
		words := strings.TrimSpace(digitsRE.Split(strings.Trim(label, decoration), 2)[0])
		if tenderRoles[r] != "" {
			d.tenders[normLabel(words)] = typ
		}
		lab = `(?P<tender>` + d.genLabel(words, "") + `)` + strings.TrimPrefix(lab, d.genLabel(words, ""))
	}
	if f == "tax" {
		lab = strings.Replace(lab, `(?P<count>\d+)`, `(?P<code>\d+)`, 1)
	}
	d.add(rule{section: "z", typ: f, match: `^\s*` + lab + `[\s:=]+(?P<amount>` + d.num.full + `)` + d.num.suffix() + `$`, why: fmt.Sprintf("%q: %s", w, f)}, l)
}

// genLabel generalises a label: words literal, numbers as \d+ (or groups for a role), spacing
// free. In a tax label a percentage is the rate (and the code) and an amount is the taxable.
func (d *drafter) genLabel(label, role string) string {
	toks := strings.Fields(strings.TrimRight(strings.TrimSpace(label), ":="))
	var parts []string
	haveCode, haveRate, haveTaxable, haveCount := false, false, false, false
	amt, pct := d.amtTok, pctRE
	for _, t := range toks {
		switch {
		case role == "tax" && pct.MatchString(t) && !haveRate:
			haveRate = true
			if !haveCode {
				haveCode = true
				parts = append(parts, `(?P<code>(?P<rate>\d+(?:[.,]\d+)?))\s?%`)
			} else {
				parts = append(parts, `(?P<rate>\d+(?:[.,]\d+)?)\s?%`)
			}
		case role == "tax" && len(t) == 1 && t >= "A" && t <= "Z" && !haveCode && !haveRate:
			haveCode = true
			parts = append(parts, `(?P<code>[A-Z])`)
		case role == "tax" && amt.MatchString(t) && !haveTaxable && strings.ContainsAny(t, ".,"):
			haveTaxable = true
			parts = append(parts, `(?P<taxable>`+d.num.full+`)`)
		case role == "z" && !haveCount && intRE.MatchString(t):
			haveCount = true
			parts = append(parts, `(?P<count>\d+)`)
		default:
			parts = append(parts, digitsRE.ReplaceAllString(regexp.QuoteMeta(t), `\d+`))
		}
	}
	if len(parts) == 0 {
		return ``
	}
	return strings.Join(parts, `\s+`)
}

// genLine generalises a whole line: dates and times become groups, a number after a receipt
// word becomes the receipt, a masked card number keeps its last four.
func (d *drafter) genLine(l string, header bool) (string, []string) {
	toks := strings.Fields(l)
	for i := 1; i < len(toks); i++ { // "3:04 PM" is one time
		if u := strings.ToUpper(toks[i]); (u == "AM" || u == "PM") && timeRE.MatchString(toks[i-1]) {
			toks[i-1] += " " + toks[i]
			toks = append(toks[:i], toks[i+1:]...)
		}
	}
	var parts, groups []string
	prev := ""
	for _, t := range toks {
		p, g := d.genToken(t, prev, header, groups)
		parts = append(parts, p)
		groups = append(groups, g...)
		prev = t
	}
	return `^\s*` + strings.Join(parts, `\s+`) + `\s*$`, groups
}

func has(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (d *drafter) genToken(t, prev string, header bool, groups []string) (string, []string) {
	if loc := d.dates.find(t); loc != nil && !has(groups, "date") {
		return regexp.QuoteMeta(t[:loc.start]) + `(?P<date>` + loc.re + `)` + digitsRE.ReplaceAllString(regexp.QuoteMeta(t[loc.end:]), `\d+`), []string{"date"}
	}
	if loc := timeRE.FindStringIndex(t); loc != nil && !has(groups, "time") && d.dates.timeLayout != "" {
		rest := t[loc[1]:]
		ampm := ""
		if u := strings.ToUpper(strings.TrimSpace(rest)); u == "AM" || u == "PM" {
			ampm, rest = `\s?[AaPp][Mm]`, ""
		}
		return regexp.QuoteMeta(t[:loc[0]]) + `(?P<time>\d{1,2}:\d\d(?::\d\d)?` + ampm + `)` + digitsRE.ReplaceAllString(regexp.QuoteMeta(rest), `\d+`), []string{"time"}
	}
	if m := panRE.FindStringSubmatchIndex(t); m != nil {
		return regexp.QuoteMeta(t[:m[0]]) + `[*Xx•]{4,}[- ]?(?P<last4>\d{4})` + digitsRE.ReplaceAllString(regexp.QuoteMeta(t[m[1]:]), `\d+`), nil
	}
	loc := digitsRE.FindStringIndex(t)
	if loc == nil {
		return regexp.QuoteMeta(t), nil
	}
	if header && !has(groups, "receipt") && (isReceiptLabel(t[:loc[0]]) || (loc[0] == 0 && isReceiptLabel(prev))) {
		return regexp.QuoteMeta(t[:loc[0]]) + `(?P<receipt>\d+)` + digitsRE.ReplaceAllString(regexp.QuoteMeta(t[loc[1]:]), `\d+`), []string{"receipt"}
	}
	return digitsRE.ReplaceAllString(regexp.QuoteMeta(t), `\d+`), nil
}

func isReceiptLabel(s string) bool {
	if strings.HasSuffix(strings.TrimRight(s, " :."), "#") {
		return true
	}
	n := normLabel(s)
	if n == "" {
		return false
	}
	for _, w := range receiptWords {
		if r, _ := firstRune(w); isCJK(r) && strings.HasSuffix(n, w) {
			return true
		}
		if n == w || strings.HasSuffix(n, " "+w) || strings.HasSuffix(n, "-"+w) || strings.HasSuffix(n, "."+w) {
			return true
		}
	}
	return false
}

// pickReceipt chooses the line that carries the receipt number: of the lines with a number
// after a receipt word, the one whose number varies across receipts (a store number does
// not), else one labelled by a word rather than by "#".
func (d *drafter) pickReceipt() {
	type cand struct {
		texts    map[string]bool
		receipts int
		hash     bool
	}
	cands := map[string]*cand{}
	for _, r := range d.rs {
		seen := map[string]bool{}
		for _, l := range r.lines {
			if _, _, ok := d.num.split(l); (ok && d.num.minor > 0) || !hasReceiptNumber(l) || runeLen(l) > maxLineLen {
				continue
			}
			sh := shape(l)
			c := cands[sh]
			if c == nil {
				c = &cand{texts: map[string]bool{}, hash: !hasWordReceiptNumber(l)}
				cands[sh] = c
			}
			c.texts[strings.TrimSpace(l)] = true
			if !seen[sh] {
				seen[sh] = true
				c.receipts++
			}
		}
	}
	best, bestScore := "", -1
	for sh, c := range cands {
		score := c.receipts * 4
		if len(c.texts) > 1 {
			score += 1000
		}
		if !c.hash {
			score += 100
		}
		if score > bestScore || (score == bestScore && sh < best) {
			best, bestScore = sh, score
		}
	}
	d.receiptShape = best
	if best == "" {
		d.receiptShape, d.receiptSeq = d.sequenceLine()
	}
}

// sequenceLine finds a line printed on most receipts whose one long number goes up from
// receipt to receipt: the receipt number, whatever its label.
func (d *drafter) sequenceLine() (string, bool) {
	type obs struct {
		nums []string
	}
	seen := map[string]*obs{}
	for _, r := range d.rs {
		done := map[string]bool{}
		for _, l := range r.lines {
			ns := longNumRE.FindAllString(l, -1)
			if len(ns) != 1 || d.dates.find(l) != nil || runeLen(l) > maxLineLen {
				continue
			}
			if _, _, ok := d.num.split(l); ok && d.num.minor > 0 {
				continue
			}
			sh := shape(l)
			if done[sh] {
				continue
			}
			done[sh] = true
			if seen[sh] == nil {
				seen[sh] = &obs{}
			}
			seen[sh].nums = append(seen[sh].nums, ns[0])
		}
	}
	best, bestN := "", 0
	for sh, o := range seen {
		if len(o.nums)*5 < len(d.rs)*4 || len(o.nums) < 2 {
			continue
		}
		up := true
		for i := 1; i < len(o.nums); i++ {
			a, b := strings.TrimLeft(o.nums[i-1], "0"), strings.TrimLeft(o.nums[i], "0")
			if len(a) > len(b) || (len(a) == len(b) && a >= b) {
				up = false
			}
		}
		if up && (len(o.nums) > bestN || (len(o.nums) == bestN && sh < best)) {
			best, bestN = sh, len(o.nums)
		}
	}
	return best, best != ""
}

func (d *drafter) isReceiptLine(l string) bool {
	return d.receiptShape != "" && shape(l) == d.receiptShape
}

// hasWordReceiptNumber is hasReceiptNumber with a word label (not "#").
func hasWordReceiptNumber(l string) bool {
	return hasReceiptNumber(strings.ReplaceAll(l, "#", " "))
}

var vatRowRE = regexp.MustCompile(`^(?:[A-Z]\s+)?\d+(?:[.,]\d+)?\s?%\s+\S+$`)

// vatRow is the regex of a VAT table row: an optional class letter, the rate, the taxable
// base, the tax (a gross column after it is not supported).
func (d *drafter) vatRow() string {
	return `^\s*(?:(?P<code>[A-Z])\s+)?(?P<rate>\d+(?:[.,]\d+)?)\s?%\s+(?P<taxable>` + d.num.full + `)\s+(?P<amount>` + d.num.full + `)` + d.num.suffix() + `$`
}

var longNumRE = regexp.MustCompile(`\d{3,}`)

var receiptNumRE = regexp.MustCompile(`\d{2,}`)

// hasReceiptNumber says whether a line carries a number after a receipt word.
func hasReceiptNumber(l string) bool {
	toks := strings.Fields(l)
	prev := ""
	for _, t := range toks {
		if loc := receiptNumRE.FindStringIndex(t); loc != nil {
			if isReceiptLabel(t[:loc[0]]) || (loc[0] == 0 && isReceiptLabel(prev)) {
				return true
			}
		}
		prev = t
	}
	return false
}

// kindRE is the classification regex for a kind: its title words from the table (and the one
// seen), as a whole line — or, for reports, at the start of one.
func kindRE(k protocol.Kind, seen string) string {
	var alts []string
	for _, kw := range kindWords {
		if kw.kind == k {
			for _, w := range kw.words {
				alts = append(alts, regexp.QuoteMeta(w))
			}
		}
	}
	if seen != "" && !has(alts, regexp.QuoteMeta(seen)) {
		alts = append(alts, regexp.QuoteMeta(seen))
	}
	sort.SliceStable(alts, func(i, j int) bool { return len(alts[i]) > len(alts[j]) })
	deco := `[\s*#=_.:()\[\]<>|~+/-]*`
	if k.IsReport() {
		return `^(?:[\d./:-]+\s+)*` + deco + `(?i:` + strings.Join(alts, "|") + `)` // after a date and time, too
	}
	word, alt := `[^\s\d]+`, `(?i:`+strings.Join(alts, "|")+`)`
	return `^` + deco + `(?:` + alt + `(?:\s+` + word + `){0,5}|(?:` + word + `\s+){0,5}` + alt + `)` + deco + `$`
}

// finishRules fills in the tender alternation, widths and require lists.
func (d *drafter) finishRules() {
	for _, r := range d.rules {
		if r.section != "fields" {
			continue
		}
		// A rule whose sample lines all had one width (≥ 3 of them) gets it: a right-aligned
		// column layout, where a dropped or inserted byte changes the width.
		if len(r.lengths) == 1 && r.hits >= 3 && r.typ != "header" && r.typ != "ignore" && r.typ != "card" {
			for w := range r.lengths {
				r.width = w
				r.why += fmt.Sprintf("; all %d sample lines are %d wide", r.hits, w)
			}
		}
		switch r.typ {
		case "item":
			r.require = d.kindsWith(d.itemsIn)
		case "tender":
			r.require = d.kindsWith(d.tendersIn)
		}
	}
}

// kindsWith lists the sale/return/void kinds in which every sample receipt had the thing.
func (d *drafter) kindsWith(in map[protocol.Kind]int) []string {
	var out []string
	for _, k := range []protocol.Kind{protocol.KindSale, protocol.KindReturn, protocol.KindVoid} {
		if d.kindN[k] > 0 && in[k] == d.kindN[k] {
			out = append(out, string(k))
		}
	}
	return out
}

// tenderAlternation is the tender rule's word list: the table and the labels seen.
func (d *drafter) tenderAlternation() string {
	words := map[string]bool{}
	for _, rw := range roleWords {
		if tenderRoles[rw.role] != "" {
			for _, w := range rw.words {
				words[w] = true
				d.tendersDefault(w, tenderRoles[rw.role])
			}
		}
	}
	for l := range d.tenders {
		if l != "" {
			words[l] = true
		}
	}
	var alts []string
	for w := range words {
		alts = append(alts, digitsRE.ReplaceAllString(regexp.QuoteMeta(w), `\d+`))
	}
	sort.Slice(alts, func(i, j int) bool {
		if len(alts[i]) != len(alts[j]) {
			return len(alts[i]) > len(alts[j])
		}
		return alts[i] < alts[j]
	})
	return `(?i:` + strings.Join(alts, "|") + `)`
}

func (d *drafter) tendersDefault(w, typ string) {
	if _, ok := d.tenders[w]; !ok {
		d.tenders[w] = typ
	}
}

func quoteAll(ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, regexp.QuoteMeta(s))
	}
	return out
}

// genericZ adds report rules from the keyword table, after those drawn from the sample: a Z
// the sample did not hold still has its totals read (and a line neither knows flags it).
func (d *drafter) genericZ() {
	amt := `[\s:=]+(?P<amount>` + d.num.full + `)` + d.num.suffix() + `$`
	for _, k := range []protocol.Kind{protocol.KindZReport, protocol.KindXReport} {
		title := kindRE(k, "")
		if d.dates.form != nil {
			// a date and time before the title are the report's
			dt := `^(?:(?P<date>` + d.dates.find(d.dates.sampleDate).re + `)\s+)?(?:(?P<time>\d{1,2}:\d\d(?::\d\d)?)\s+)?`
			title = dt + strings.TrimPrefix(title, `^(?:[\d./:-]+\s+)*`)
		}
		d.add(rule{section: "z", typ: "counter", match: title + `\D*(?P<count>\d+)?.*$`, prio: 5, why: "report title (keyword table), with its number if printed"}, "")
	}
	for i, zw := range zWords {
		alt := `(?:[^\s\d]+\s+)?(?i:` + strings.Join(quoteAll(zw.words), "|") + `)(?:\s+[^\s\d]+)?`
		var m string
		switch zw.field {
		case "no_sale_count":
			m = `^\s*` + alt + `[\s:=]+(?P<count>\d+)$`
		case "tender":
			m = `^\s*(?P<tender>` + alt + `)(?:\s+\d+)?` + amt
		case "tax", "taxable":
			m = `^\s*` + alt + `(?:\s+(?P<code>\d+))?` + amt
		default:
			m = `^\s*` + alt + `(?:\s+(?P<count>\d+))?` + amt
		}
		d.add(rule{section: "z", typ: zw.field, match: m, prio: 10 + i, why: "report line from the keyword table"}, "")
	}
}

// hasTableWord says whether a tender label is a word of the tender table.
func hasTableWord(label string) bool {
	r, _ := roleOf(label)
	return tenderRoles[r] != ""
}

// seqReceiptRE generalises a receipt line found by its sequence: the long number is the receipt,
// other digits are \d+.
func (d *drafter) seqReceiptRE(l string) string {
	loc := longNumRE.FindStringIndex(l)
	before, after := l[:loc[0]], l[loc[1]:]
	g := func(s string) string {
		q := regexp.QuoteMeta(s)
		q = digitsRE.ReplaceAllString(q, `\d+`)
		return spacesRE.ReplaceAllString(q, `\s+`)
	}
	return `^\s*` + g(strings.TrimLeft(before, " ")) + `(?P<receipt>\d+)` + g(strings.TrimRight(after, " ")) + `\s*$`
}

// fitCurrency reconciles the currency guessed from a symbol with the decimals the amounts are
// printed with: records carry money in the currency's ISO 4217 minor units, so a profile whose
// currency disagrees with its minor digits does not load. "$" without decimals is a peso (CLP);
// any other disagreement drops the guess and says so.
func fitCurrency(cur string, minor int) (string, string) {
	iso, known := protocol.MinorDigits(cur)
	if cur == "" || !known || iso == minor {
		return cur, ""
	}
	if cur == "USD" && minor == 0 {
		return "CLP", "\"$\" with amounts printed without decimals: a peso without minor units (CLP); check (COP, ARS and MXN print decimals)"
	}
	return "", fmt.Sprintf("the symbol suggests %s (%d decimals in ISO 4217) but amounts print %d decimals", cur, iso, minor)
}
