package profile

import (
	"fmt"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/escpos"
	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/protocol"
)

// Result is one closed transaction.
type Result struct {
	Record *protocol.Record // nil when Err is set
	Raw    string           // masked text of the transaction (decoded lines, device events in [brackets])
	Err    error            // parse failure: quarantine Raw with this reason
	Flags  []string         // invariant failures: the record is captured but flagged
	// Trace, only when tracing is on (SetTrace), says for each line of Raw which rule took it.
	Trace []LineTrace
}

// Parser turns a byte stream into transactions. Implementations are not safe for concurrent
// use: one goroutine feeds one parser.
type Parser interface {
	// Feed decodes p, which arrived at now, and returns the transactions it closed. p is not
	// retained.
	Feed(p []byte, now time.Time) []Result
	// Flush ends a partial line after the profile's idle gap and force-closes a transaction open
	// longer than the profile's timeout, both measured back from now. Call it periodically.
	Flush(now time.Time) []Result
	// Close ends the input: every pending line and open transaction is closed and returned.
	Close() []Result
	// Stats returns counters for metrics.
	Stats() Stats
}

// Stats counts what a parser did.
type Stats struct {
	Lines           int64 // decoded lines
	PANsMasked      int64
	LinesDropped    int64 // track data and CVV/PIN lines removed
	Records         int64
	Flagged         int64
	Quarantined     int64
	UnknownCommands int64
	OutOfOrder      int64        // framing events out of order: an end with no transaction open, a start inside one
	Decoder         escpos.Stats // the byte decoder's counters (text formats only)
}

// NewParser returns a parser for one terminal. terminal is the configured terminal id; when it
// is empty the id read from the text (a rule's terminal group) is used.
func (p *Profile) NewParser(terminal string) Parser {
	switch p.c.format {
	case "canonical-jsonl":
		return newJSONLParser(p, terminal)
	case "csv":
		return &csvParser{lineSplitter: newLineSplitter(p), p: p, terminal: terminal}
	}
	dec, err := escpos.NewDecoder(p.decoderConfig())
	if err != nil {
		// compile validated this configuration.
		panic(fmt.Sprintf("profile %s: decoder: %v", p.Name, err))
	}
	return &textParser{p: p, terminal: terminal, dec: dec, masker: pan.New(pan.Options{LastFourOnly: p.Card.LastFourOnly})}
}

// Format returns the profile's decoding format: text, canonical-jsonl or csv.
func (p *Profile) Format() string { return p.c.format }

// RemovedLine returns what stands for an input line that held track data or a card security
// code when a source removes it before the parser sees it (the raw journal): for canonical-jsonl
// a marker the parser quarantines, so that a record is not lost without a trace; for other
// formats nil (the line is left out, as a printed line is from its receipt).
func (p *Profile) RemovedLine() []byte {
	if p.c.format == "canonical-jsonl" {
		return []byte(cardDataRemoved)
	}
	return nil
}

// PrepareLine returns raw input line as card-data masking must scan it for this profile's
// format: for canonical-jsonl with its JSON escapes of printable ASCII written out (the same
// JSON, but a card number spelled "\u0034111…" is then seen), for other formats line itself.
// Sources that mask bytes before the parser sees them (the raw journal) apply it first; the
// parser applies it too.
func (p *Profile) PrepareLine(line []byte) []byte {
	if p.c.format == "canonical-jsonl" {
		return unescapeASCII(line)
	}
	return line
}

type txLine struct {
	text   string
	cards  []pan.Card
	marker bool       // the line matched a framing marker
	trace  *LineTrace // set when tracing: the rule that takes the line is written here
}

type textParser struct {
	p        *Profile
	terminal string
	dec      *escpos.Decoder
	masker   *pan.Masker
	stats    Stats

	now                time.Time // time of the bytes being processed
	lastData, lastLine time.Time

	open       bool
	closingIn  int // lines still to take after an end marker; -1 when no end seen
	lines      []txLine
	raw        []string
	prev       string // last cleaned line, for dedupe
	orphanRaw  []string
	orphanText bool // an orphan line survived cleaning
	out        []Result
	tracing    bool
	trace      []*LineTrace // parallel to raw while tracing
}

func (t *textParser) Stats() Stats {
	s := t.stats
	ms := t.masker.Stats()
	s.PANsMasked, s.LinesDropped = ms.PANsMasked, ms.TrackDropped+ms.LabelDropped
	s.UnknownCommands = t.dec.Stats().Unknown
	s.Decoder = t.dec.Stats()
	return s
}

func (t *textParser) Feed(b []byte, now time.Time) []Result {
	c := &t.p.c
	t.now = now
	if t.dec.Pending() && c.idle > 0 && !t.lastData.IsZero() && now.Sub(t.lastData) >= c.idle {
		t.dec.Flush()
		t.drain()
	}
	if t.open && c.timeout > 0 && now.Sub(t.lastLine) >= c.timeout {
		t.closeTx()
	}
	if len(b) > 0 {
		t.lastData = now
		t.dec.Write(b)
		t.drainAt(now)
	}
	return t.take()
}

func (t *textParser) Flush(now time.Time) []Result {
	c := &t.p.c
	t.now = now
	if t.dec.Pending() && (c.idle <= 0 || now.Sub(t.lastData) >= c.idle) {
		t.dec.Flush()
		t.drainAt(now)
	}
	if t.open && c.timeout > 0 && now.Sub(t.lastLine) >= c.timeout {
		t.closeTx()
	}
	// Text outside a transaction is reported once the line has been quiet for the timeout
	// (or the idle gap), so that one burst becomes one quarantine entry.
	if gap := max(c.timeout, c.idle); t.orphanText && gap > 0 && now.Sub(t.lastLine) >= gap {
		t.flushOrphans()
	}
	return t.take()
}

func (t *textParser) Close() []Result {
	t.dec.Flush()
	t.drain()
	if t.open {
		t.closeTx()
	}
	t.flushOrphans()
	return t.take()
}

func (t *textParser) take() []Result {
	out := t.out
	t.out = nil
	return out
}

func (t *textParser) drain() { t.drainAt(t.lastData) }

func (t *textParser) drainAt(now time.Time) {
	for _, ev := range t.dec.Events() {
		switch ev.Kind {
		case escpos.EventLine:
			t.lastLine = now
			t.line(ev.Text)
		case escpos.EventBarcode, escpos.EventCode2D:
			// Payloads are masked like text and offered to the rules as a pseudo-line.
			t.lastLine = now
			t.line(fmt.Sprintf("[%s %s] %s", ev.Kind, ev.Detail, ev.Text))
		default:
			t.event(ev)
		}
	}
}

func (t *textParser) event(ev escpos.Event) {
	name := ev.Kind.String()
	if ev.Detail != "" {
		name += " " + ev.Detail
	}
	if matchEvent(t.p.c.start, ev.Kind) {
		t.start()
	}
	if t.open {
		t.raw = append(t.raw, "["+name+"]")
		t.traceRaw("["+name+"]", "device event")
	}
	if matchEvent(t.p.c.end, ev.Kind) && !t.open && !matchEvent(t.p.c.start, ev.Kind) {
		t.stats.OutOfOrder++
	}
	if t.open && matchEvent(t.p.c.end, ev.Kind) {
		t.closeTx()
	}
}

func matchEvent(ms []marker, k escpos.EventKind) bool {
	for _, m := range ms {
		if m.re == nil && m.event == k {
			return true
		}
	}
	return false
}

func matchText(ms []marker, s string) bool {
	for _, m := range ms {
		if m.re != nil && m.re.MatchString(s) {
			return true
		}
	}
	return false
}

// start opens a new transaction, dealing with one that is still open.
func (t *textParser) start() {
	if t.open {
		if len(t.p.c.end) > 0 {
			t.stats.OutOfOrder++ // a start inside a transaction whose end was never seen
		}
		switch t.p.c.onRestart {
		case "ignore":
			return
		case "quarantine":
			t.emit(Result{Raw: t.rawText(), Err: fmt.Errorf("%w: a new transaction started before this one ended", ErrIncomplete)})
			t.reset()
		default:
			t.closeTx()
		}
	}
	t.flushOrphans()
	t.open = true
	t.closingIn = -1
	t.lastLine = t.now
}

func (t *textParser) line(text string) {
	t.stats.Lines++
	masked, res := t.masker.Mask([]byte(text))
	rawLine := string(masked)
	if res.Dropped() {
		rawLine = "[line removed: card data]"
	}
	cleaned, keep := t.clean(string(masked))
	if res.Dropped() {
		keep = false
	}
	// Continuations join onto the previous line of the open transaction.
	if keep && t.open && len(t.lines) > 0 {
		for _, k := range t.p.c.conts {
			if k.re.MatchString(cleaned) {
				t.raw = append(t.raw, rawLine)
				t.traceRaw(rawLine, "continuation of the line above")
				last := &t.lines[len(t.lines)-1]
				// Joining may bring digit groups together: mask the joined line again.
				joined, jres := t.masker.Mask([]byte(last.text + k.sep + strings.TrimLeft(cleaned, " \t")))
				last.text = string(joined)
				last.cards = append(last.cards, jres.Cards...)
				return
			}
		}
	}
	isStart := keep && matchText(t.p.c.start, cleaned)
	if isStart {
		t.start()
	}
	if !t.open {
		t.orphanRaw = append(t.orphanRaw, rawLine)
		if keep {
			t.orphanText = true
		}
		return
	}
	t.raw = append(t.raw, rawLine)
	if !keep {
		t.traceRaw(rawLine, "cleaning (left out)")
		return
	}
	isEnd := t.closingIn < 0 && matchText(t.p.c.end, cleaned)
	t.lines = append(t.lines, txLine{text: cleaned, cards: res.Cards, marker: isStart || isEnd, trace: t.traceRaw(rawLine, "")})
	if t.closingIn > 0 {
		t.closingIn--
		if t.closingIn == 0 {
			t.closeTx()
		}
		return
	}
	if isEnd {
		if t.p.Framing.ExtraLines > 0 {
			t.closingIn = t.p.Framing.ExtraLines
		} else {
			t.closeTx()
		}
	}
}

// clean applies the cleaning rules; keep is false for a line to leave out of the transaction.
func (t *textParser) clean(s string) (string, bool) {
	c := &t.p.c
	for _, sub := range c.subs {
		s = sub.re.ReplaceAllString(s, sub.repl)
	}
	switch c.trim {
	case "right":
		s = strings.TrimRight(s, " \t")
	case "both":
		s = strings.TrimSpace(s)
	}
	if s == "" && c.dropEmpty {
		return s, false
	}
	for _, re := range c.ignore {
		if re.MatchString(s) {
			return s, false
		}
	}
	if t.p.Cleaning.Dedupe && s == t.prev && s != "" {
		return s, false
	}
	t.prev = s
	return s, true
}

func (t *textParser) rawText() string { return strings.Join(t.raw, "\n") }

func (t *textParser) reset() {
	t.open = false
	t.lines = nil
	t.raw = nil
	t.trace = nil
	t.closingIn = -1
	t.prev = ""
}

func (t *textParser) closeTx() {
	if !t.open {
		return
	}
	raw := t.rawText()
	if len(t.lines) == 0 {
		// Framing saw a start and an end with no text between them (e.g. init then cut):
		// nothing to capture, and nothing is lost.
		t.reset()
		return
	}
	rec, flags, err := t.p.build(t.lines, t.terminal)
	trace := t.takeTrace() // after build, which writes the rules into it
	t.reset()
	t.emit(Result{Record: rec, Raw: raw, Err: err, Flags: flags, Trace: trace})
}

func (t *textParser) flushOrphans() {
	if t.orphanText {
		t.emit(Result{Raw: strings.Join(t.orphanRaw, "\n"), Err: ErrOutsideTransaction})
	}
	t.orphanRaw = nil
	t.orphanText = false
}

func (t *textParser) emit(r Result) {
	switch {
	case r.Err != nil:
		r.Record = nil
		t.stats.Quarantined++
	default:
		t.stats.Records++
		if len(r.Flags) > 0 {
			t.stats.Flagged++
		}
	}
	t.out = append(t.out, r)
}

// IsQuarantine reports whether r must go to quarantine.
func (r Result) IsQuarantine() bool { return r.Err != nil }
