// Package escpos decodes tapped receipt-printer byte streams (Epson ESC/POS and Star Line mode)
// into text lines and device events.
//
// The Decoder is a command-table state machine: every command's length is known (fixed, or read
// from its length prefix), so raster and graphics payloads, which contain 0x0A and printable
// bytes, are skipped instead of being mistaken for text. It is streaming: bytes may arrive in
// chunks of any size, and a command split across chunks decodes exactly as if it had arrived
// whole. Text is decoded with the current code page (switched by ESC t n, or ESC GS t n in Star
// Line mode) into UTF-8. Barcode and 2D-code payloads are kept as events because they often
// carry the receipt number.
//
// Caveats: an unknown command is counted in Stats.Unknown and skipped as a 3-byte command, which
// is the most common length; a stream that uses many unknown commands will lose or gain a byte
// of text around each. Bytes meant for a customer display (ESC = n) are decoded like the rest.
package escpos

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
)

// Dialect selects the command table.
type Dialect string

// The dialects.
const (
	DialectESCPOS   Dialect = "escpos"
	DialectStarLine Dialect = "star-line"
	DialectPlain    Dialect = "plain" // no commands: text and line ends only
)

// LineEnd says which bytes end a line.
type LineEnd string

// The line-end conventions.
const (
	LineEndLF   LineEnd = "lf"   // LF ends a line; CR is ignored
	LineEndCRLF LineEnd = "crlf" // same as lf: LF ends a line, CR is ignored
	LineEndLFCR LineEnd = "lfcr" // same as lf (the npm receipt-printer-encoder writes LF CR)
	LineEndCR   LineEnd = "cr"   // CR ends a line; LF is ignored
	LineEndAny  LineEnd = "any"  // LF or CR ends a line; the second byte of a CR LF / LF CR pair is ignored
)

// EventKind is the kind of an Event.
type EventKind uint8

// The event kinds.
const (
	EventLine     EventKind = iota + 1 // a text line (Text, UTF-8, without terminator)
	EventInit                          // ESC @
	EventCut                           // paper cut (Detail "full" or "partial")
	EventDrawer                        // cash drawer kick (Detail: pin)
	EventBarcode                       // 1D barcode (Text: data, Detail: symbology)
	EventCode2D                        // QR / PDF417 payload (Text: data, Detail: symbology)
	EventFormFeed                      // FF
)

var kindNames = [...]string{"", "line", "init", "cut", "drawer", "barcode", "code2d", "form_feed"}

func (k EventKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", k)
}

// Event is one decoded item.
type Event struct {
	Kind   EventKind
	Text   string
	Detail string
	Offset int64 // stream offset just after the bytes that produced the event
}

// Config configures a Decoder.
type Config struct {
	Dialect  Dialect // default escpos
	CodePage string  // initial code page, default CP437 (restored by ESC @)
	LineEnd  LineEnd // default lf
	MaxLine  int     // a longer line is split; default 4096 bytes
	MaxData  int     // barcode/2D payloads longer than this are truncated; default 65536
	// MultiByte selects two-byte text for Kanji mode: gb18030, gbk, big5, shift_jis, euc-kr;
	// empty or "none" for single-byte printers.
	MultiByte string
	// KanjiOff starts (and ESC @ restarts) with Kanji mode off, so multi-byte text needs FS &
	// first. By default Kanji mode is on when MultiByte is set.
	KanjiOff bool
}

// Stats counts what a Decoder saw.
type Stats struct {
	Bytes        int64 // bytes written
	Commands     int64 // commands decoded
	Unknown      int64 // unknown commands (skipped by best-known length)
	Lines        int64 // line events
	Skipped      int64 // payload bytes skipped (graphics, user characters, …)
	BadCodePages int64 // code-page selections of an unknown table number (previous page kept)
	BadCharsets  int64 // ESC R selections of a set the decoder does not model (ASCII kept)
	Overlaps     int64 // moves left (ESC $ / ESC \ before the print position): rendered as one space
	Mojibake     int64 // characters that did not decode (U+FFFD) plus stray control bytes in text
	BadLines     int64 // line events carrying mojibake (their Event.Detail is "mojibake")
}

type state uint8

const (
	stText state = iota
	stCmd
	stSkip
	stData      // collect remain bytes into data, then emit
	stUntilNUL  // collect into data until NUL, then emit
	stSkipNUL   // skip until NUL
	stTabs      // ESC D: collect tab stops until NUL
	stRasterLen // Star raster "b": collect n1 n2, then skip the block
	stUntilRS   // collect until RS (Star barcode), then emit
	stUserChars // ESC & y c1 c2 [x d…]…: read x, skip y*x, repeat
	stUCSkip    // skipping one user character's dot data
)

// Decoder decodes a byte stream. It is not safe for concurrent use.
type Decoder struct {
	cfg     Config
	initial CodePage
	cp      CodePage

	st     state
	hdr    []byte // command bytes collected so far
	remain int    // bytes left to skip or collect
	data   []byte
	dataEv Event // event to emit when data is complete (Text filled in)
	ucY    int   // ESC &: bytes per column
	ucLeft int   // ESC &: characters left

	lay   layout
	intl  *[128]rune // ESC R replacement table, nil for USA
	mb    *mbCodec
	mbDec *encoding.Decoder
	mbBuf []byte
	kanji bool
	// sjisSystem: FS C 1 selected the Shift JIS code system (multibyte shift_jis), in which
	// two-byte characters are printed whatever FS . says.
	sjisSystem bool
	raster     bool  // Star raster mode: only ESC commands and "b n1 n2 data" blocks
	lineBad    int64 // stray control bytes in the current line

	line     []byte
	lastTerm byte // the previous byte, when it ended a line (for LineEndAny pairs)
	off      int64
	events   []Event
	stats    Stats
}

// NewDecoder returns a decoder for cfg.
func NewDecoder(cfg Config) (*Decoder, error) {
	if cfg.Dialect == "" {
		cfg.Dialect = DialectESCPOS
	}
	switch cfg.Dialect {
	case DialectESCPOS, DialectStarLine, DialectPlain:
	default:
		return nil, fmt.Errorf("escpos: unknown dialect %q (want escpos, star-line or plain)", cfg.Dialect)
	}
	if cfg.LineEnd == "" {
		cfg.LineEnd = LineEndLF
	}
	switch cfg.LineEnd {
	case LineEndLF, LineEndCRLF, LineEndLFCR, LineEndCR, LineEndAny:
	default:
		return nil, fmt.Errorf("escpos: unknown line end %q (want lf, crlf, lfcr, cr or any)", cfg.LineEnd)
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = 4096
	}
	if cfg.MaxData <= 0 {
		cfg.MaxData = 65536
	}
	cp, err := LookupCodePage(cfg.CodePage)
	if err != nil {
		return nil, fmt.Errorf("escpos: %w", err)
	}
	mb, err := lookupMultiByte(cfg.MultiByte)
	if err != nil {
		return nil, fmt.Errorf("escpos: %w", err)
	}
	d := &Decoder{cfg: cfg, initial: cp, cp: cp, hdr: make([]byte, 0, 16), lay: newLayout(), mb: mb}
	if mb != nil {
		d.mbDec = mb.enc.NewDecoder()
		d.kanji = !cfg.KanjiOff
	}
	return d, nil
}

// Stats returns the counters.
func (d *Decoder) Stats() Stats { return d.stats }

// CodePage returns the name of the code page currently in effect.
func (d *Decoder) CodePage() string { return d.cp.Name }

// Events returns the events decoded since the last call and forgets them.
func (d *Decoder) Events() []Event {
	ev := d.events
	d.events = nil
	return ev
}

// Pending reports whether a partial line is waiting for its terminator.
func (d *Decoder) Pending() bool { return len(d.line) > 0 }

// Flush ends a partial line (for an idle gap) and emits it if it is not empty.
func (d *Decoder) Flush() { d.endLine(false) }

// Write decodes p. It never fails; the error is always nil (io.Writer).
func (d *Decoder) Write(p []byte) (int, error) {
	for i := 0; i < len(p); {
		switch d.st {
		case stText:
			if d.raster {
				d.rasterByte(p[i])
				d.off++
				i++
				continue
			}
			// Fast path: copy a run of printable ASCII.
			j := i
			if d.intl == nil && len(d.mbBuf) == 0 {
				for j < len(p) && p[j] >= 0x20 && p[j] < 0x7F {
					j++
				}
			}
			if j > i {
				d.lastTerm = 0
				d.appendText(p[i:j])
				d.off += int64(j - i)
				i = j
				continue
			}
			d.textByte(p[i])
			d.off++
			i++
		case stSkip:
			n := min(d.remain, len(p)-i)
			d.remain -= n
			d.stats.Skipped += int64(n)
			d.off += int64(n)
			i += n
			if d.remain == 0 {
				d.st = stText
			}
		case stData:
			n := min(d.remain, len(p)-i)
			if room := d.cfg.MaxData - len(d.data); room > 0 {
				d.data = append(d.data, p[i:i+min(n, room)]...)
			}
			d.remain -= n
			d.off += int64(n)
			i += n
			if d.remain == 0 {
				d.emitData()
			}
		case stRasterLen:
			d.data = append(d.data, p[i])
			d.off++
			i++
			if len(d.data) == 2 {
				n := u16(d.data[0], d.data[1])
				d.data = d.data[:0]
				d.skip(n)
			}
		case stTabs:
			c := p[i]
			d.off++
			i++
			if c == 0 || len(d.data) >= maxTabStops {
				d.lay.setTabs(d.data)
				d.data = d.data[:0]
				d.st = stText
				if c != 0 {
					d.textByte(c) // more than 32 stops: the printer reads no further
				}
				continue
			}
			d.data = append(d.data, c)
		case stUntilNUL, stUntilRS, stSkipNUL:
			c := p[i]
			d.off++
			i++
			end := (d.st == stUntilRS && c == 0x1E) || (d.st != stUntilRS && c == 0)
			if end {
				if d.st == stSkipNUL {
					d.st = stText
				} else {
					d.emitData()
				}
				continue
			}
			if d.st == stSkipNUL {
				d.stats.Skipped++
				if d.remain--; d.remain <= 0 {
					d.st = stText
				}
				continue
			}
			if len(d.data) < d.cfg.MaxData && len(d.data) < 4096 {
				d.data = append(d.data, c)
			} else {
				d.emitData() // no terminator in sight: give up on this payload
			}
		case stUserChars:
			// ESC &: read x (columns), then skip y*x bytes of dot data.
			x := int(p[i])
			d.off++
			i++
			d.ucLeft--
			switch {
			case d.ucY*x > 0:
				d.remain = d.ucY * x
				d.st = stUCSkip
			case d.ucLeft <= 0:
				d.st = stText
			}
		case stUCSkip:
			n := min(d.remain, len(p)-i)
			d.remain -= n
			d.stats.Skipped += int64(n)
			d.off += int64(n)
			i += n
			if d.remain == 0 {
				d.st = stUserChars
				if d.ucLeft <= 0 {
					d.st = stText
				}
			}
		case stCmd:
			d.hdr = append(d.hdr, p[i])
			d.off++
			i++
			var need int
			if d.cfg.Dialect == DialectStarLine {
				need = d.star(d.hdr)
			} else {
				need = d.escpos(d.hdr)
			}
			if need == 0 {
				d.hdr = d.hdr[:0]
			} else if len(d.hdr) >= cap(d.hdr) {
				// A header can never be this long; treat as unknown and resync.
				d.stats.Unknown++
				d.hdr = d.hdr[:0]
				d.st = stText
			}
		}
	}
	d.stats.Bytes += int64(len(p))
	return len(p), nil
}

// appendText appends ASCII text, splitting lines at exactly MaxLine bytes so that the result
// does not depend on how the input was chunked.
func (d *Decoder) appendText(b []byte) {
	for len(b) > 0 {
		room := d.cfg.MaxLine - len(d.line)
		if room <= 0 {
			d.endLine(false)
			continue
		}
		n := min(room, len(b))
		d.line = append(d.line, b[:n]...)
		d.lay.x += float64(n) * d.lay.cell()
		b = b[n:]
	}
}

// rasterByte handles a byte in Star raster mode: "b n1 n2 d1…dk" (k = n1 + 256 n2) transfers
// one raster line, ESC starts a command (ESC * r B leaves the mode); anything else is image
// data and counted as skipped, so neither garbage lines nor BEL/SUB drawer events come from it.
func (d *Decoder) rasterByte(c byte) {
	switch {
	case c == 0x1B:
		d.st = stCmd
		d.hdr = append(d.hdr[:0], c)
	case c == 'b':
		d.stats.Commands++
		d.data = d.data[:0]
		d.st = stRasterLen
	default:
		d.stats.Skipped++
	}
}

// textChar appends one decoded character that takes cells character cells.
func (d *Decoder) textChar(r rune, cells int) {
	if len(d.line)+4 > d.cfg.MaxLine {
		d.endLine(false)
	}
	d.line = utf8.AppendRune(d.line, r)
	d.lay.x += float64(cells) * d.lay.cell()
}

func (d *Decoder) textByte(c byte) {
	if len(d.mbBuf) > 0 && (c < 0x20 || c == 0x7F) {
		d.mbFlush() // a control byte inside a multi-byte character: the character is lost
	}
	le := d.cfg.LineEnd
	switch {
	case c == 0x0A || c == 0x0D:
		isEnd := (c == 0x0A && le != LineEndCR) || (c == 0x0D && (le == LineEndCR || le == LineEndAny))
		if !isEnd {
			return
		}
		if le == LineEndAny && d.lastTerm != 0 && d.lastTerm != c {
			d.lastTerm = 0 // second byte of a pair
			return
		}
		d.lastTerm = c
		d.endLine(true)
		return
	}
	d.lastTerm = 0
	switch {
	case c == 0x0C:
		d.endLine(false)
		d.emit(Event{Kind: EventFormFeed})
	case c == 0x09:
		if d.cfg.Dialect == DialectPlain {
			d.appendText([]byte{'\t'})
		} else if t, ok := d.lay.tabStop(); ok {
			d.stats.Commands++
			d.moveTo(t)
		}
	case d.cfg.Dialect == DialectESCPOS && (c == 0x1B || c == 0x1D || c == 0x1C || c == 0x10):
		d.st = stCmd
		d.hdr = append(d.hdr[:0], c)
	case d.cfg.Dialect == DialectStarLine && c == 0x1B:
		d.st = stCmd
		d.hdr = append(d.hdr[:0], c)
	case d.cfg.Dialect == DialectStarLine && (c == 0x07 || c == 0x1A):
		d.stats.Commands++
		pin := "1"
		if c == 0x1A {
			pin = "2"
		}
		d.emit(Event{Kind: EventDrawer, Detail: pin})
	case c == 0 || (d.cfg.Dialect == DialectStarLine && c == 0x18): // NUL padding; Star CAN
	case c < 0x20 || c == 0x7F:
		d.lineBad++ // a control byte that is no command: a sign of the wrong dialect or code page
	case d.kanji && (c >= 0x80 || len(d.mbBuf) > 0):
		d.mbByte(c)
	case c < 0x80 && d.intl != nil:
		d.textChar(d.intl[c], 1)
	default:
		if len(d.line)+4 > d.cfg.MaxLine {
			d.endLine(false)
		}
		d.line = d.cp.appendByte(d.line, c)
		d.lay.x += d.lay.cell()
	}
}

// endLine emits the current line; an empty line only when always is set.
func (d *Decoder) endLine(always bool) {
	if len(d.mbBuf) > 0 {
		d.mbFlush()
	}
	d.lay.x = 0
	if len(d.line) == 0 && !always {
		d.stats.Mojibake += d.lineBad
		d.lineBad = 0
		return
	}
	text := string(d.line)
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	d.line = d.line[:0]
	d.stats.Lines++
	ev := Event{Kind: EventLine, Text: text}
	if bad := d.lineBad + int64(strings.Count(text, "\uFFFD")); bad > 0 {
		d.stats.Mojibake += bad
		d.stats.BadLines++
		ev.Detail = "mojibake"
	}
	d.lineBad = 0
	d.emit(ev)
}

func (d *Decoder) emit(e Event) {
	e.Offset = d.off
	d.events = append(d.events, e)
}

func (d *Decoder) emitData() {
	ev := d.dataEv
	data := d.data
	if ev.Kind == EventCode2D && ev.Detail == "" {
		// GS ( k: cn fn m d… ; only "store data" (fn 0x50) carries a payload.
		if len(data) >= 3 && data[1] == 0x50 {
			switch data[0] {
			case 0x31:
				ev.Detail = "qr"
			case 0x30:
				ev.Detail = "pdf417"
			default:
				ev.Detail = fmt.Sprintf("2d-%d", data[0])
			}
			data = data[3:]
		} else {
			ev.Kind = 0
		}
	}
	if ev.Kind != 0 {
		ev.Text = strings.ToValidUTF8(string(data), "\uFFFD")
		d.emit(ev)
	}
	d.data = d.data[:0]
	d.st = stText
}

// startData switches to collecting n payload bytes that become ev.
func (d *Decoder) startData(n int, ev Event) {
	d.dataEv = ev
	d.data = d.data[:0]
	if n <= 0 {
		d.emitData()
		return
	}
	d.remain = n
	d.st = stData
}

func (d *Decoder) skip(n int) {
	if n <= 0 {
		d.st = stText
		return
	}
	d.remain = n
	d.st = stSkip
}

// done finishes a command with no payload.
func (d *Decoder) done() int {
	d.stats.Commands++
	d.st = stText
	return 0
}

func (d *Decoder) unknown(h []byte, n int) int {
	if len(h) < n {
		return n
	}
	d.stats.Unknown++
	d.st = stText
	return 0
}

func (d *Decoder) setTable(n byte, tables map[byte]string) {
	name, ok := tables[n]
	if !ok {
		d.stats.BadCodePages++
		return
	}
	if cp, err := LookupCodePage(name); err == nil {
		d.cp = cp
	}
}

func (d *Decoder) initPrinter() {
	d.endLine(false)
	d.cp = d.initial
	d.lay = newLayout()
	d.intl = nil
	d.raster = false
	d.kanji = d.mb != nil && !d.cfg.KanjiOff
	d.sjisSystem = false
	d.emit(Event{Kind: EventInit})
}

func (d *Decoder) setCharset(n byte) {
	t, ok := intlTable(n)
	if !ok {
		d.stats.BadCharsets++
		return
	}
	d.intl = t
}

func u16(lo, hi byte) int { return int(lo) | int(hi)<<8 }
