package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/protocol"
)

// jsonlParser reads one canonical JSON record per line (format canonical-jsonl). It is the only
// reader of canonical JSON lines: drop folders (dir://), followed files (file://), `profile
// test` and `reparse` all use it.
//
// Each line has its JSON \u escapes of printable ASCII written out (see unescapeASCII) and is
// then masked (PANs per the profile's card options, lines with track data or a card security
// code removed) before it is decoded, so neither the record, the raw text kept for quarantine,
// nor an error message ever holds card data. Blank lines and lines whose first non-blank
// character is '#' (comments: never the start of a JSON value) are skipped. A line must hold
// exactly one JSON value; fields the record does not have are ignored (and not kept).
// Agent-assigned fields (epoch, seq, hash, captured_at, source) are dropped; the record is
// checked with ValidateBusiness and the profile's invariants.
type jsonlParser struct {
	lineSplitter
	p        *Profile
	terminal string
}

func newJSONLParser(p *Profile, terminal string) *jsonlParser {
	j := &jsonlParser{lineSplitter: newLineSplitter(p), p: p, terminal: terminal}
	j.prepare = unescapeASCII
	return j
}

func (j *jsonlParser) Feed(b []byte, now time.Time) []Result {
	j.split(b, now, j.record)
	return j.take()
}

// Flush does nothing until the idle gap has passed; then a last unterminated line is parsed.
func (j *jsonlParser) Flush(now time.Time) []Result {
	if idle := j.p.c.idle; idle > 0 && !j.lastData.IsZero() && now.Sub(j.lastData) >= idle {
		j.rest(j.record)
	}
	return j.take()
}

func (j *jsonlParser) Close() []Result {
	j.rest(j.record)
	return j.take()
}

// cardDataRemoved is the raw text of a line removed for card data, here or by a source before
// the parser (RemovedLine).
const cardDataRemoved = "[line removed: card data]"

func (j *jsonlParser) record(line string, dropped bool) {
	if dropped || line == cardDataRemoved {
		j.emit(Result{Raw: cardDataRemoved, Err: fmt.Errorf("%w: line held track data or a card security code", ErrIncomplete)})
		return
	}
	text := bytes.TrimSpace([]byte(line))
	if len(text) == 0 || text[0] == '#' {
		return
	}
	var r protocol.Record
	dec := json.NewDecoder(bytes.NewReader(text))
	if err := dec.Decode(&r); err != nil {
		j.emit(Result{Raw: line, Err: fmt.Errorf("%w: decode: %w", ErrIncomplete, err)})
		return
	}
	if len(bytes.TrimSpace(text[dec.InputOffset():])) > 0 {
		j.emit(Result{Raw: line, Err: fmt.Errorf("%w: text after the JSON record", ErrIncomplete)})
		return
	}
	r.Epoch, r.Seq, r.Hash, r.CapturedAt, r.Source = "", 0, "", time.Time{}, nil
	r, line, err := guardRecord(j.masker, r, line)
	if err != nil {
		j.emit(Result{Raw: line, Err: err})
		return
	}
	if j.terminal != "" {
		if r.Terminal != "" && r.Terminal != j.terminal {
			j.emit(Result{Raw: line, Err: fmt.Errorf("%w: terminal %q, but this source is terminal %q", ErrIncomplete, r.Terminal, j.terminal)})
			return
		}
		r.Terminal = j.terminal
	}
	if r.Currency == "" {
		r.Currency = j.p.Fields.Currency
	}
	if err := r.ValidateBusiness(); err != nil {
		j.emit(Result{Raw: line, Err: fmt.Errorf("%w: %w", ErrIncomplete, err)})
		return
	}
	b := &builder{p: j.p, rec: r}
	if !r.Kind.IsReport() && r.Kind != protocol.KindNoSale {
		b.invariants()
	}
	j.emit(Result{Record: &b.rec, Raw: line, Flags: b.flags})
}

// guardRecord is the second guard: it masks the decoded record's encoding too, in case decoding
// brought digits together that the line masker saw apart, and returns the masked record and
// that encoding as the raw text when masking changed anything. A record whose encoding holds
// track data or a code, or whose masked encoding no longer decodes (a card number in a number
// field), is never kept: err is then set and raw is the text to quarantine (the masked
// encoding, or the removed-line marker).
func guardRecord(m *pan.Masker, r protocol.Record, line string) (_ protocol.Record, raw string, err error) {
	enc, err := json.Marshal(r)
	if err != nil {
		return r, line, fmt.Errorf("%w: encode: %w", ErrIncomplete, err)
	}
	masked, res := m.Mask(enc)
	if res.Dropped() {
		return r, cardDataRemoved, fmt.Errorf("%w: record held track data or a card security code", ErrIncomplete)
	}
	if res.Masked == 0 {
		return r, line, nil
	}
	var mr protocol.Record
	if err := json.Unmarshal(masked, &mr); err != nil {
		return r, string(masked), fmt.Errorf("%w: record held a card number where no text can stand: %w", ErrIncomplete, err)
	}
	return mr, string(masked), nil
}

// unescapeASCII writes out the \uXXXX escapes of printable ASCII other than '"' and '\' in a
// JSON text ("\u0034" becomes "4"), and those of other Unicode decimal digits ("\uff14"
// becomes "４", which the masker reads as a digit too), spaces and dashes ("\u00a0", "\u2013",
// which separate digit groups). Inside a JSON string the result means the same; outside one
// an escape is invalid either way. A card number written with escapes is then masked like any
// other: the masker reads bytes, not decoded JSON. Without an escape the line is returned as is.
func unescapeASCII(line []byte) []byte {
	if !bytes.Contains(line, []byte(`\u`)) {
		return line
	}
	out := make([]byte, 0, len(line))
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c != '\\' || i+1 == len(line) {
			out = append(out, c)
			continue
		}
		if line[i+1] == 'u' && i+6 <= len(line) {
			if v, ok := hex4(line[i+2 : i+6]); ok && v >= 0x20 && v < 0x7f && v != '"' && v != '\\' {
				out = append(out, byte(v))
				i += 5
				continue
			} else if ok && v >= utf8.RuneSelf && (unicode.IsDigit(v) || unicode.IsSpace(v) || unicode.Is(unicode.Pd, v)) && v != '\u2028' && v != '\u2029' {
				out = utf8.AppendRune(out, v) // fullwidth and other decimal digits, Unicode spaces and dashes
				i += 5
				continue
			}
		}
		// Any other escape (\\ included) is kept whole, so the byte after it is not read as
		// the start of another escape.
		out = append(out, c, line[i+1])
		i++
	}
	return out
}

// UnescapeJSON returns line with the JSON \u escapes of printable ASCII and of decimal digits
// written out, as PrepareLine does for canonical-jsonl: for masking a stream whose format is not
// known (the capture tool), where it is one of the views scanned.
func UnescapeJSON(line []byte) []byte { return unescapeASCII(line) }

func hex4(b []byte) (rune, bool) {
	var v rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
