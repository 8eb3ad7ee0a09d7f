package profile

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/escpos"
	"github.com/lanebridge/lanebridge/protocol"
)

type compiled struct {
	format        string
	dialect       escpos.Dialect
	lineEnd       escpos.LineEnd
	codePage      string
	idle          time.Duration
	subs          []substitution
	ignore        []*regexp.Regexp
	trim          string
	dropEmpty     bool
	conts         []continuation
	start         []marker
	end           []marker
	timeout       time.Duration
	onRestart     string
	kindRules     []kindRule
	defKind       protocol.Kind
	rules         []fieldRule
	zrules        []zRule
	loc           *time.Location
	tenders       map[string]string
	flagUnmatched bool
	num           numFormat

	linesTotal, tendersTotal, lineMath bool
	totalRequired                      map[protocol.Kind]bool

	csvDelim   rune
	csvColumns map[string]string // canonical → header

	extras      map[string]*extra
	cellColumns bool // cells widths count display columns
}

type substitution struct {
	re   *regexp.Regexp
	repl string
}

type continuation struct {
	re  *regexp.Regexp
	sep string
}

type marker struct {
	re    *regexp.Regexp
	event escpos.EventKind
}

type kindRule struct {
	re     *regexp.Regexp
	kind   protocol.Kind
	extras extraSet
}

type fieldRule struct {
	re      *regexp.Regexp
	typ     string
	set     map[string]string
	require map[protocol.Kind]bool
	width   int
	extras  extraSet
	wrap    *wrapRule
	cells   map[string]int
}

type zRule struct {
	re     *regexp.Regexp
	field  string
	set    map[string]string
	extras extraSet
}

// Field rule types.
var ruleTypes = []string{"header", "item", "item_detail", "item_void", "discount", "tax", "subtotal", "total",
	"tender", "change", "card", "original_receipt", "ignore"}

// Named groups a field rule may capture.
var groupNames = []string{"receipt", "date", "time", "terminal", "sku", "description", "quantity", "unit_price",
	"amount", "department", "rate", "code", "taxable", "tender", "brand", "last4", "original", "count"}

// Z report fields.
var zFields = []string{"counter", "gross", "net", "refunds", "voids", "no_sale_count", "tender", "tax", "taxable",
	"grand_total", "ignore"}

var eventNames = map[string]escpos.EventKind{
	"init": escpos.EventInit, "cut": escpos.EventCut, "drawer": escpos.EventDrawer, "form_feed": escpos.EventFormFeed,
	"barcode": escpos.EventBarcode,
}

// CSV columns the csv format understands.
var csvColumnNames = []string{"receipt", "kind", "date", "time", "terminal", "sku", "description", "quantity",
	"unit_price", "amount", "voided", "discount", "tax", "total", "tenders", "change", "original_receipt", "currency"}

func (p *Profile) compile() error {
	c := &p.c
	if p.Name == "" {
		return fmt.Errorf("name: missing (give the profile a name equal to its file name)")
	}
	c.format = p.Decoding.Format
	if c.format == "" {
		c.format = "text"
	}
	if !slices.Contains([]string{"text", "canonical-jsonl", "csv"}, c.format) {
		return fmt.Errorf("decoding.format: %q is not one of text, canonical-jsonl, csv", c.format)
	}
	c.dialect = escpos.Dialect(p.Decoding.Dialect)
	if c.dialect == "" {
		c.dialect = escpos.DialectPlain
	}
	c.lineEnd = escpos.LineEnd(p.Decoding.LineEnd)
	if c.lineEnd == "" {
		c.lineEnd = escpos.LineEndAny
	}
	c.codePage = p.Decoding.CodePage
	if c.codePage == "" {
		c.codePage = "CP437"
	}
	switch p.Decoding.KanjiMode {
	case "", "on", "off":
	default:
		return fmt.Errorf("decoding.kanji_mode: %q is not on or off (write kanji_mode: on, or off when the POS sends FS & before multi-byte text)", p.Decoding.KanjiMode)
	}
	if p.Decoding.KanjiMode != "" && p.Decoding.MultiByte == "" {
		return fmt.Errorf("decoding.kanji_mode: set without decoding.multibyte (add multibyte: gb18030, gbk, big5, shift_jis or euc-kr, or remove kanji_mode)")
	}
	if _, err := escpos.NewDecoder(p.decoderConfig()); err != nil {
		if p.Decoding.MultiByte != "" && strings.Contains(err.Error(), "multi-byte") {
			return fmt.Errorf("decoding.multibyte: %w", err)
		}
		return fmt.Errorf("decoding: %w", err)
	}
	c.idle = time.Duration(p.Decoding.IdleFlush)

	var err error
	for i, s := range p.Cleaning.Substitutions {
		re, e := compileRE(fmt.Sprintf("cleaning.substitutions[%d].pattern", i), s.Pattern)
		if e != nil {
			return e
		}
		c.subs = append(c.subs, substitution{re, s.Replace})
	}
	if c.ignore, err = compileAll("cleaning.ignore_lines", p.Cleaning.IgnoreLines); err != nil {
		return err
	}
	c.trim = p.Cleaning.Trim
	if c.trim == "" {
		c.trim = "right"
	}
	if !slices.Contains([]string{"right", "both", "none"}, c.trim) {
		return fmt.Errorf("cleaning.trim: %q is not one of right, both, none", c.trim)
	}
	c.dropEmpty = p.Cleaning.DropEmpty == nil || *p.Cleaning.DropEmpty
	for i, k := range p.Cleaning.Continuations {
		re, e := compileRE(fmt.Sprintf("cleaning.continuations[%d].match", i), k.Match)
		if e != nil {
			return e
		}
		c.conts = append(c.conts, continuation{re, k.Separator})
	}

	if c.start, err = compileMarkers("framing.start", p.Framing.Start); err != nil {
		return err
	}
	if c.end, err = compileMarkers("framing.end", p.Framing.End); err != nil {
		return err
	}
	if c.format == "text" && len(c.start) == 0 {
		return fmt.Errorf("framing.start: a text profile needs at least one start marker")
	}
	c.timeout = time.Duration(p.Framing.Timeout)
	c.onRestart = p.Framing.OnRestart
	if c.onRestart == "" {
		c.onRestart = "close"
	}
	if !slices.Contains([]string{"close", "quarantine", "ignore"}, c.onRestart) {
		return fmt.Errorf("framing.on_restart: %q is not one of close, quarantine, ignore", c.onRestart)
	}
	if p.Framing.ExtraLines < 0 {
		return fmt.Errorf("framing.extra_lines: must not be negative")
	}

	if err := p.compileExtras(); err != nil {
		return err
	}
	c.defKind = protocol.Kind(p.Classification.Default)
	if c.defKind == "" {
		c.defKind = protocol.KindSale
	}
	if !c.defKind.Valid() {
		return fmt.Errorf("classification.default: %q is not a kind (%s)", c.defKind, kindList())
	}
	for i, r := range p.Classification.Rules {
		re, e := compileRE(fmt.Sprintf("classification.rules[%d].match", i), r.Match)
		if e != nil {
			return e
		}
		k := protocol.Kind(r.Kind)
		if !k.Valid() {
			return fmt.Errorf("classification.rules[%d].kind: %q is not a kind (%s)", i, r.Kind, kindList())
		}
		xs, e := p.lookupExtras(fmt.Sprintf("classification.rules[%d]", i), r.Extras)
		if e != nil {
			return e
		}
		c.kindRules = append(c.kindRules, kindRule{re, k, xs})
	}

	for i, r := range p.Fields.Rules {
		where := fmt.Sprintf("fields.rules[%d]", i)
		if !slices.Contains(ruleTypes, r.Type) {
			return fmt.Errorf("%s.type: %q is not one of %s", where, r.Type, strings.Join(ruleTypes, ", "))
		}
		re, e := compileGroups(where+".match", r.Match, r.Set, groupNames)
		if e != nil {
			return e
		}
		var req map[protocol.Kind]bool
		for _, k := range r.Require {
			if !protocol.Kind(k).Valid() {
				return fmt.Errorf("%s.require: %q is not a kind (%s)", where, k, kindList())
			}
			if req == nil {
				req = map[protocol.Kind]bool{}
			}
			req[protocol.Kind(k)] = true
		}
		if r.Width < 0 {
			return fmt.Errorf("%s.width: must not be negative", where)
		}
		xs, e := p.lookupExtras(where, r.Extras)
		if e != nil {
			return e
		}
		wr, e := compileWrap(where, r.Wrap, r.Cells)
		if e != nil {
			return e
		}
		c.rules = append(c.rules, fieldRule{re, r.Type, r.Set, req, r.Width, xs, wr, r.Cells})
	}
	for i, r := range p.ZReport.Rules {
		where := fmt.Sprintf("z_report.rules[%d]", i)
		if !slices.Contains(zFields, r.Field) {
			return fmt.Errorf("%s.field: %q is not one of %s", where, r.Field, strings.Join(zFields, ", "))
		}
		re, e := compileGroups(where+".match", r.Match, r.Set, groupNames)
		if e != nil {
			return e
		}
		xs, e := p.lookupExtras(where, r.Extras)
		if e != nil {
			return e
		}
		c.zrules = append(c.zrules, zRule{re, r.Field, r.Set, xs})
	}
	tz := p.Fields.Timezone
	if tz == "" {
		tz = "UTC"
	}
	if c.loc, err = time.LoadLocation(tz); err != nil {
		return fmt.Errorf("fields.timezone: %w", err)
	}
	if p.Fields.DateFormat == "" && c.format == "text" {
		return fmt.Errorf("fields.date_format: missing (a Go layout such as 01/02/2006)")
	}
	c.tenders = map[string]string{}
	for label, typ := range p.Fields.Tenders {
		if !slices.Contains([]string{protocol.TenderCash, protocol.TenderCard, protocol.TenderCheck, protocol.TenderGift, protocol.TenderOther}, typ) {
			return fmt.Errorf("fields.tenders[%q]: %q is not one of cash, card, check, gift, other", label, typ)
		}
		c.tenders[strings.ToUpper(strings.TrimSpace(label))] = typ
	}
	switch p.Fields.CellUnits {
	case "", "characters":
	case "columns":
		c.cellColumns = true
	default:
		return fmt.Errorf("fields.cell_units: %q is not characters or columns", p.Fields.CellUnits)
	}
	switch p.Fields.Unmatched {
	case "", "ignore":
	case "flag":
		c.flagUnmatched = true
	default:
		return fmt.Errorf("fields.unmatched: %q is not ignore or flag", p.Fields.Unmatched)
	}

	if c.num, err = newNumFormat(p.Numbers, p.Fields.Currency); err != nil {
		return fmt.Errorf("numbers: %w", err)
	}

	on := func(b *bool) bool { return b == nil || *b }
	c.linesTotal, c.tendersTotal, c.lineMath = on(p.Invariants.LinesTotal), on(p.Invariants.TendersTotal), on(p.Invariants.LineMath)
	if p.Invariants.Tolerance < 0 {
		return fmt.Errorf("invariants.tolerance: must not be negative")
	}
	c.totalRequired = map[protocol.Kind]bool{}
	req := p.Invariants.TotalRequired
	if req == nil {
		req = []string{string(protocol.KindSale), string(protocol.KindReturn)}
	}
	for _, k := range req {
		if !protocol.Kind(k).Valid() {
			return fmt.Errorf("invariants.total_required: %q is not a kind (%s)", k, kindList())
		}
		c.totalRequired[protocol.Kind(k)] = true
	}

	c.csvDelim = ','
	if d := p.CSV.Delimiter; d != "" {
		r := []rune(d)
		if len(r) != 1 {
			return fmt.Errorf("csv.delimiter: %q must be one character", d)
		}
		c.csvDelim = r[0]
	}
	c.csvColumns = map[string]string{}
	for _, col := range csvColumnNames {
		c.csvColumns[col] = col
	}
	for col, header := range p.CSV.Columns {
		if !slices.Contains(csvColumnNames, col) {
			return fmt.Errorf("csv.columns: %q is not a column (%s)", col, strings.Join(csvColumnNames, ", "))
		}
		c.csvColumns[col] = header
	}
	return nil
}

func (p *Profile) decoderConfig() escpos.Config {
	return escpos.Config{Dialect: p.c.dialect, CodePage: p.c.codePage, LineEnd: p.c.lineEnd, MaxLine: p.Decoding.MaxLine,
		MultiByte: p.Decoding.MultiByte, KanjiOff: p.Decoding.KanjiMode == "off"}
}

func kindList() string {
	var s []string
	for _, k := range protocol.Kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

func compileRE(where, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, fmt.Errorf("%s: empty regular expression", where)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return re, nil
}

func compileAll(where string, exprs []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for i, e := range exprs {
		re, err := compileRE(fmt.Sprintf("%s[%d]", where, i), e)
		if err != nil {
			return nil, err
		}
		out = append(out, re)
	}
	return out, nil
}

func compileGroups(where, expr string, set map[string]string, allowed []string) (*regexp.Regexp, error) {
	re, err := compileRE(where, expr)
	if err != nil {
		return nil, err
	}
	for _, n := range re.SubexpNames() {
		if n != "" && !slices.Contains(allowed, n) {
			return nil, fmt.Errorf("%s: unknown group name %q (known: %s)", where, n, strings.Join(sorted(allowed), ", "))
		}
	}
	for n := range set {
		if !slices.Contains(allowed, n) {
			return nil, fmt.Errorf("%s: set: unknown field %q (known: %s)", where, n, strings.Join(sorted(allowed), ", "))
		}
	}
	return re, nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func compileMarkers(where string, ms []Marker) ([]marker, error) {
	var out []marker
	for i, m := range ms {
		w := fmt.Sprintf("%s[%d]", where, i)
		switch {
		case m.Text != "" && m.Event != "":
			return nil, fmt.Errorf("%s: give either text or event, not both", w)
		case m.Text != "":
			re, err := compileRE(w+".text", m.Text)
			if err != nil {
				return nil, err
			}
			out = append(out, marker{re: re})
		case m.Event != "":
			ev, ok := eventNames[m.Event]
			if !ok {
				return nil, fmt.Errorf("%s.event: %q is not one of init, cut, drawer, form_feed, barcode", w, m.Event)
			}
			out = append(out, marker{event: ev})
		default:
			return nil, fmt.Errorf("%s: needs text or event", w)
		}
	}
	return out, nil
}
