package escpos

import "math"

// Horizontal layout. Printers position text in dots; a tapped stream only shows where the
// printer was told to move (ESC $ absolute, ESC \ relative, HT to the next ESC D tab stop). The
// decoder follows the print position in dots using the current font's cell width, and renders
// each move as the number of spaces the move spans at that width, so that columns a POS
// application laid out by position stay apart in the decoded line.
//
// Widths follow Epson TM-series 80 mm models (180 dpi): font A cells are 12 dots, font B and C
// 9 dots; double width (ESC ! bit 5, GS ! width 1..8) multiplies the cell; ESC SP n adds right
// spacing in motion units. The horizontal motion unit is one dot (1/180 inch) unless GS P x y
// sets 1/x inch. Default tab stops are every 8 font-A characters.

const (
	dotsFontA   = 12
	dotsFontB   = 9
	defaultDPI  = 180
	maxTabStops = 32
	// maxPosition bounds the print position: a move beyond it is ignored, as a printer ignores
	// a position outside its print area. 2048 dots is over 11 inches at 180 dpi, wider than any
	// receipt paper, so no real layout is cut, and a hostile stream cannot turn a 4-byte
	// command into megabytes of spaces.
	maxPosition = 2048
)

type layout struct {
	fontB    bool
	mulESC   int     // width multiplier from ESC ! (1 or 2)
	mulGS    int     // width multiplier from GS ! (1..8)
	lastGS   bool    // GS ! was the last size command (it wins over ESC !)
	spacing  int     // ESC SP right-side spacing, motion units
	unit     float64 // dots per horizontal motion unit
	x        float64 // print position in dots from the start of the line
	tabs     []float64
	userTabs bool // ESC D was given (tabs replaced; empty = HT ignored)
}

func newLayout() layout { return layout{mulESC: 1, mulGS: 1, unit: 1} }

// cell is the width in dots of one character cell with the current font and size.
func (l *layout) cell() float64 {
	base := float64(dotsFontA)
	if l.fontB {
		base = dotsFontB
	}
	mul := l.mulESC
	if l.lastGS {
		mul = l.mulGS
	}
	return base*float64(mul) + float64(l.spacing)*l.unit
}

// tabStop returns the first tab stop right of x; ok is false when there is none.
func (l *layout) tabStop() (float64, bool) {
	if !l.userTabs {
		step := 8 * float64(dotsFontA)
		return (math.Floor(l.x/step) + 1) * step, true
	}
	for _, t := range l.tabs {
		if t > l.x+1e-9 {
			return t, true
		}
	}
	return 0, false
}

// setTabs applies ESC D n1 … nk NUL: stops at n × the current cell width, ascending.
func (l *layout) setTabs(ns []byte) {
	l.userTabs = true
	l.tabs = l.tabs[:0]
	cw := l.cell()
	prev := 0
	for _, n := range ns {
		if int(n) <= prev || len(l.tabs) >= maxTabStops {
			break // the printer stops reading stops at a non-ascending value
		}
		prev = int(n)
		l.tabs = append(l.tabs, float64(n)*cw)
	}
}

// moveTo moves the print position to target dots, rendering the gap as spaces. A move that does
// not go right (overprinting) is rendered as one space when text precedes it, so two fields never
// merge, and counted in Stats.Overlaps, as is a move beyond maxPosition (ignored).
func (d *Decoder) moveTo(target float64) {
	l := &d.lay
	if target < 0 {
		target = 0
	}
	if target > maxPosition {
		d.stats.Overlaps++
		return
	}
	cw := l.cell()
	switch {
	case target > l.x+1e-9:
		n := int(math.Round((target - l.x) / cw))
		n = max(n, 1)
		for range n {
			d.appendSpace()
		}
		l.x = target
	case target < l.x-1e-9:
		d.stats.Overlaps++
		if len(d.line) > 0 && d.line[len(d.line)-1] != ' ' {
			d.appendSpace()
		}
		l.x = target
	}
}

func (d *Decoder) appendSpace() {
	x := d.lay.x
	d.appendText([]byte{' '})
	d.lay.x = x
}
