package profile

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Wrapped cells. A layout that prints a cell wider than its column continues it on the next
// line(s): "Bio-Vollkornbrot mit Sonnenblum     3,49 A" / "enkernen". A field rule's wrap
// joins such continuation lines onto the groups the rule captured (the description, before
// the amount that ends the first line; the rest of an amount "1.000" / ",00"); its cells say
// how wide a cell is, so that a full cell that nothing continues is flagged rather than kept
// cut short.

// wrapRule is a compiled Wrap.
type wrapRule struct {
	re  *regexp.Regexp
	sep string
	max int
}

// defaultWrapLines is how many continuation lines a wrap joins at most unless max_lines says.
const defaultWrapLines = 3

// textGroups are joined with the wrap's separator; every other group (numbers, codes) is
// joined without one.
var textGroups = []string{"description", "department", "tender", "brand"}

func compileWrap(where string, w *Wrap, cells map[string]int) (*wrapRule, error) {
	for name, width := range cells {
		if !slices.Contains(groupNames, name) {
			return nil, fmt.Errorf("%s.cells: unknown group %q (known: %s)", where, name, strings.Join(sorted(groupNames), ", "))
		}
		if width <= 0 {
			return nil, fmt.Errorf("%s.cells.%s: width %d must be positive (the cell's width in characters)", where, name, width)
		}
	}
	if w == nil {
		return nil, nil
	}
	re, err := compileGroups(where+".wrap.match", w.Match, nil, groupNames)
	if err != nil {
		return nil, err
	}
	if re.NumSubexp() == 0 || !slices.ContainsFunc(re.SubexpNames(), func(n string) bool { return n != "" }) {
		return nil, fmt.Errorf("%s.wrap.match: no named group (name the part that continues a cell, e.g. (?P<description>…))", where)
	}
	wr := &wrapRule{re: re, sep: " ", max: defaultWrapLines}
	if w.Separator != nil {
		wr.sep = *w.Separator
	}
	if w.MaxLines < 0 {
		return nil, fmt.Errorf("%s.wrap.max_lines: must not be negative", where)
	}
	if w.MaxLines > 0 {
		wr.max = w.MaxLines
	}
	return wr, nil
}

// fullCells returns the names of g's groups that fill the width cells gives them.
func fullCells(cells map[string]int, g map[string]string, columns bool) []string {
	var full []string
	for name, width := range cells {
		n := utf8.RuneCountInString(g[name])
		if columns {
			n = displayWidth(g[name])
		}
		if n >= width {
			full = append(full, name)
		}
	}
	sort.Strings(full)
	return full
}

// joinWrapped appends the continuation lines after the current line (b.pos) to g, as rule r's
// wrap describes, and returns how many lines it took. A line that some field rule handles is
// not taken as a continuation, except to bring the amount the rule's own line lacked. A cell still full after the last piece
// is left for the next line to settle (b.fullCell).
func (b *builder) joinWrapped(idx int, r fieldRule, g map[string]string) int {
	full := fullCells(r.cells, g, b.p.c.cellColumns)
	taken := 0
	if r.wrap != nil {
		for k := b.pos + 1; k < len(b.lines) && taken < r.wrap.max; k++ {
			next := b.lines[k]
			if next.marker {
				break
			}
			m := r.wrap.re.FindStringSubmatch(next.text)
			if m == nil {
				break
			}
			piece := groups(r.wrap.re.SubexpNames(), m, nil)
			if len(piece) == 0 {
				break
			}
			// A line a rule handles is a line of its own, not the rest of a cell — unless the
			// rule's line had no amount and this one, a line of the same type, brings it (a
			// description printed alone on a line, continued on the line with its amount).
			if own := b.ownLine(next); own != "" && (own != r.typ || g["amount"] != "" || piece["amount"] == "") {
				break
			}
			for name, v := range piece {
				switch {
				case g[name] == "":
					g[name] = v
				case slices.Contains(textGroups, name) && !slices.Contains(full, name):
					g[name] += r.wrap.sep + v
				default:
					g[name] += v
				}
			}
			// A piece that fills its cell again continues on the next line.
			full = fullCells(r.cells, piece, b.p.c.cellColumns)
			taken++
		}
	}
	if len(full) > 0 {
		b.fullCell = &fullCell{line: b.pos + taken, rule: idx, names: full, widths: r.cells}
	}
	return taken
}

// ownLine returns the type of the first field rule that handles l by itself, or "".
func (b *builder) ownLine(l txLine) string {
	for _, r := range b.p.c.rules {
		if r.width > 0 && utf8.RuneCountInString(l.text) != r.width {
			continue
		}
		if b.xc.find(r.re, r.extras, l.text) != nil {
			return r.typ
		}
	}
	return ""
}

// fullCell is a cell that filled its width on the last line a rule took: if the next line is
// handled by no rule, it is probably the rest of the cell.
type fullCell struct {
	line   int // index of the last line the rule took
	rule   int
	names  []string
	widths map[string]int
}

func (f *fullCell) flag(lines []txLine) string {
	var cells []string
	for _, n := range f.names {
		cells = append(cells, fmt.Sprintf("%s (%d characters)", n, f.widths[n]))
	}
	return fmt.Sprintf("line %d fills its cell %s and line %d %q that follows was not joined to it: the cell may be cut (give fields.rules[%d] a wrap that matches the continuation)",
		f.line+1, strings.Join(cells, ", "), f.line+2, lines[f.line+1].text, f.rule)
}

// displayWidth is the width of s in printer columns: East Asian wide and fullwidth characters
// (Hangul, kana, CJK ideographs, fullwidth forms) take two.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n++
		if wide(r) {
			n++
		}
	}
	return n
}

func wide(r rune) bool {
	switch {
	case r >= 0x1100 && r <= 0x115F, r >= 0x2E80 && r <= 0x303E, r >= 0x3041 && r <= 0x33FF,
		r >= 0x3400 && r <= 0x4DBF, r >= 0x4E00 && r <= 0x9FFF, r >= 0xA000 && r <= 0xA4CF,
		r >= 0xAC00 && r <= 0xD7A3, r >= 0xF900 && r <= 0xFAFF, r >= 0xFE30 && r <= 0xFE4F,
		r >= 0xFF00 && r <= 0xFF60, r >= 0xFFE0 && r <= 0xFFE6, r >= 0x20000 && r <= 0x3FFFD:
		return true
	}
	return false
}
