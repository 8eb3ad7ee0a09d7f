// Package draft infers a draft firmware profile from a masked sample of a few receipts (a raw
// printer stream or a capture file): framing, fixed lines, the amount format and line rules,
// each with a YAML comment saying what was guessed and why.
//
// # Basics
//
// Draft decodes the sample with the given dialect and code page, cuts it into receipts (at
// device events — cut, form feed — or at a repeated first line), then reads the lines: lines
// printed on most receipts are fixed and ignored, the last number of each line gives the amount
// format, and each line with an amount gets a role from its position and a small multilingual
// keyword table (TOTAL, SUMME, TOTAL A PAGAR, 合計, 합계, JUMLAH, …). The draft sets
// unmatched: flag and keeps the parser's invariants on, so that a line it did not foresee, or
// a guess that is wrong about money, flags or quarantines the transaction instead of passing.
// Before it returns, Draft loads its output with the profile loader and parses the sample with
// it, choosing between the guesses the sample cannot settle (prices with tax included or not,
// day or month first) by the result, which it reports in the header comment.
//
// # Caveats
//
//   - A draft is a starting point for `profile test --explain`, not a finished profile: kinds
//     whose title is not in the table (a return printed without RETURN) default to sale.
//   - Lines in the item area that carry no amount and do not repeat (wrapped descriptions) are
//     left unmatched: they flag the receipt, which is the point.
//   - Text that looks like a card number is masked before the draft uses it; the sample should
//     be masked already (`capture` does that).
package draft

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/lanebridge/lanebridge/agent/internal/escpos"
	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/protocol"
)

// Options configure Draft.
type Options struct {
	Dialect  string // escpos (default), star-line or plain
	CodePage string // the printer's code page (default CP437); gb18030, gbk, big5, shift_jis or euc-kr select multi-byte text
	Name     string // profile name (default "draft")
	Source   string // the sample's file name, for the header comment
}

// Limits that keep Draft quick on any input.
const (
	MaxSample   = 4 << 20 // bytes
	maxReceipts = 200
	maxLineLen  = 160 // runes; longer lines are not used to build rules
	maxRules    = 300
	maxLines    = 3000 // lines of the receipts used
)

// ErrNoReceipts is returned when the sample holds no receipt Draft can find.
var ErrNoReceipts = errors.New("no receipts found in the sample")

type event struct {
	kind escpos.EventKind
	text string
}

type receipt struct {
	lines []string // masked, right-trimmed, no empty lines
	kind  protocol.Kind
}

// Draft returns the YAML text of a draft profile for sample.
func Draft(sample []byte, opt Options) ([]byte, error) {
	if len(sample) > MaxSample {
		return nil, fmt.Errorf("sample is %d bytes: give a few receipts (at most %d bytes)", len(sample), MaxSample)
	}
	if opt.Dialect == "" {
		opt.Dialect = string(escpos.DialectESCPOS)
	}
	if opt.Name == "" {
		opt.Name = "draft"
	}
	dc := decoding{dialect: opt.Dialect, codePage: opt.CodePage}
	switch strings.ToLower(strings.ReplaceAll(opt.CodePage, "_", "-")) {
	case "gb18030", "gbk", "gb2312", "cp936", "big5", "shift-jis", "sjis", "cp932", "euc-kr", "cp949":
		dc.multiByte, dc.codePage = strings.ToLower(opt.CodePage), ""
	}
	if dc.codePage == "" {
		dc.codePage = "CP437"
	}
	dc.lineEnd = detectLineEnd(sample, escpos.Dialect(opt.Dialect))
	dec, err := escpos.NewDecoder(escpos.Config{Dialect: escpos.Dialect(dc.dialect), CodePage: dc.codePage, LineEnd: dc.lineEnd, MultiByte: dc.multiByte})
	if err != nil {
		return nil, fmt.Errorf("decode the sample (check --dialect and --code-page): %w", err)
	}
	dec.Write(sample)
	dec.Flush()
	masker := pan.New(pan.Options{})
	var evs []event
	for _, ev := range dec.Events() {
		switch ev.Kind {
		case escpos.EventLine:
			m, res := masker.Mask([]byte(ev.Text))
			if res.Dropped() {
				continue // track data or a security code: never used, never written
			}
			evs = append(evs, event{kind: ev.Kind, text: strings.ToValidUTF8(strings.TrimRight(string(m), " \t"), "?")})
		case escpos.EventBarcode, escpos.EventCode2D:
			m, _ := masker.Mask([]byte(fmt.Sprintf("[%s %s] %s", ev.Kind, ev.Detail, ev.Text)))
			evs = append(evs, event{kind: escpos.EventLine, text: strings.ToValidUTF8(strings.TrimRight(string(m), " \t"), "?")})
		default:
			evs = append(evs, event{kind: ev.Kind})
		}
	}
	fr, receipts, err := frame(evs)
	if err != nil {
		return nil, err
	}
	if len(receipts) > maxReceipts {
		receipts = receipts[:maxReceipts]
	}
	// A few receipts are enough; bound the work on a large sample.
	lines := 0
	for i, r := range receipts {
		lines += len(r.lines)
		if lines > maxLines && i > 0 {
			receipts = receipts[:i]
			break
		}
	}
	d := newDrafter(opt, dc, fr, receipts, dec.Stats())
	d.analyse()
	return d.best(sample)
}

type decoding struct {
	dialect, codePage, multiByte string
	lineEnd                      escpos.LineEnd
}

// detectLineEnd picks the line end from the bytes: CR only, or LF (with CR LF or LF CR pairs).
func detectLineEnd(b []byte, d escpos.Dialect) escpos.LineEnd {
	lf, cr := bytes.Count(b, []byte{'\n'}), bytes.Count(b, []byte{'\r'})
	lfcr, crlf := bytes.Count(b, []byte("\n\r")), bytes.Count(b, []byte("\r\n"))
	switch {
	case lf == 0 && cr > 0:
		return escpos.LineEndCR
	case lfcr > crlf:
		return escpos.LineEndLFCR
	case crlf > 0:
		return escpos.LineEndCRLF
	}
	return escpos.LineEndLF
}

// framing is where receipts start and end.
type framing struct {
	startEvent, endEvent string
	startText, endText   string
	why                  []string
}

var (
	digitsRE = regexp.MustCompile(`[0-9]+`)
	spacesRE = regexp.MustCompile(`(?:\\ |\s)+`)
)

// shape is a regex matching lines like s: digits may vary, spacing may vary.
func shape(s string) string {
	q := regexp.QuoteMeta(strings.TrimSpace(s))
	q = digitsRE.ReplaceAllString(q, `\d+`)
	q = spacesRE.ReplaceAllString(q, `\s+`)
	return `^\s*` + q + `\s*$`
}

func frame(evs []event) (framing, []receipt, error) {
	count := map[escpos.EventKind]int{}
	for _, e := range evs {
		count[e.kind]++
	}
	if count[escpos.EventLine] == 0 {
		return framing{}, nil, fmt.Errorf("%w: the sample decodes to no text (check --dialect and --code-page)", ErrNoReceipts)
	}
	var fr framing
	end := escpos.EventKind(0)
	switch {
	case count[escpos.EventCut] > 0:
		end, fr.endEvent = escpos.EventCut, "cut"
	case count[escpos.EventFormFeed] > 0:
		end, fr.endEvent = escpos.EventFormFeed, "form_feed"
	}
	if end != 0 {
		type seg struct {
			lines   []string
			initFst bool // an init came before the first text line
			ended   bool
		}
		var segs []seg
		cur := seg{}
		sawInit := false
		for _, e := range evs {
			switch {
			case e.kind == end:
				cur.ended = true
				segs = append(segs, cur)
				cur, sawInit = seg{}, false
			case e.kind == escpos.EventInit:
				sawInit = true
			case e.kind == escpos.EventLine && strings.TrimSpace(e.text) != "":
				if len(cur.lines) == 0 {
					cur.initFst = sawInit
				}
				cur.lines = append(cur.lines, e.text)
			}
		}
		segs = append(segs, cur)
		var rs []receipt
		allInit, firsts := true, map[string]int{}
		for i, s := range segs {
			if len(s.lines) == 0 || (!s.ended && i > 0) {
				continue // nothing printed, or text after the last cut (a receipt cut off)
			}
			rs = append(rs, receipt{lines: s.lines})
			allInit = allInit && s.initFst
			firsts[shape(s.lines[0])]++
		}
		if len(rs) == 0 {
			return fr, nil, ErrNoReceipts
		}
		fr.why = append(fr.why, fmt.Sprintf("%d receipts, each ended by a %s", len(rs), fr.endEvent))
		best, n := mostCommon(firsts)
		switch {
		case allInit && count[escpos.EventInit] > 0:
			fr.startEvent = "init"
			fr.why = append(fr.why, "every receipt starts with ESC @ (init)")
		case n*5 >= len(rs)*4 && len(best) < 300:
			fr.startText = best
			fr.why = append(fr.why, fmt.Sprintf("%d of %d receipts start with a line like this", n, len(rs)))
		default:
			fr.startEvent = fr.endEvent
			fr.endEvent = ""
			fr.why = append(fr.why, "receipts share no first line and send no init: a receipt starts at the cut before it (the first receipt of a capture is quarantined as text outside a transaction)")
		}
		return fr, rs, nil
	}
	// No device events: a repeated first line starts a receipt.
	var lines []string
	for _, e := range evs {
		if e.kind == escpos.EventLine && strings.TrimSpace(e.text) != "" {
			lines = append(lines, e.text)
		}
	}
	if len(lines) == 0 {
		return fr, nil, fmt.Errorf("%w: the sample holds only blank lines", ErrNoReceipts)
	}
	start := shape(lines[0])
	re, err := regexp.Compile(start)
	if err != nil || len(start) > 300 {
		return fr, nil, fmt.Errorf("%w: the first line cannot start a receipt", ErrNoReceipts)
	}
	var rs []receipt
	for _, l := range lines {
		if re.MatchString(l) {
			rs = append(rs, receipt{})
		}
		if len(rs) > 0 {
			rs[len(rs)-1].lines = append(rs[len(rs)-1].lines, l)
		}
	}
	if len(rs) < 2 {
		return fr, nil, fmt.Errorf("%w: no cut or form feed, and the first line does not repeat: give at least two receipts", ErrNoReceipts)
	}
	fr.startText = start
	fr.why = append(fr.why, fmt.Sprintf("no device events; %d receipts start with a line like the sample's first", len(rs)))
	lasts := map[string]int{}
	for _, r := range rs {
		lasts[shape(r.lines[len(r.lines)-1])]++
	}
	if best, n := mostCommon(lasts); n == len(rs) && best != start && len(best) < 300 && oncePerReceipt(best, rs) {
		fr.endText = best
		fr.why = append(fr.why, "and every one ends with a line like this")
	}
	return fr, rs, nil
}

// oncePerReceipt says whether lines of this shape are printed once per receipt (an end marker
// printed mid-receipt too would cut receipts in two).
func oncePerReceipt(sh string, rs []receipt) bool {
	re, err := regexp.Compile(sh)
	if err != nil {
		return false
	}
	for _, r := range rs {
		n := 0
		for _, l := range r.lines {
			if re.MatchString(l) {
				n++
			}
		}
		if n != 1 {
			return false
		}
	}
	return true
}

func mostCommon(m map[string]int) (string, int) {
	best, n := "", 0
	for k, v := range m {
		if v > n || (v == n && k < best) {
			best, n = k, v
		}
	}
	return best, n
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }
