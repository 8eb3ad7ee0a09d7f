package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// jsonlParser reads one canonical JSON record per line (format canonical-jsonl). Each line is
// masked, decoded, stripped of agent-assigned fields (epoch, seq, hash, captured_at, source),
// checked with ValidateBusiness and the profile's invariants.
type jsonlParser struct {
	lineSplitter
	p        *Profile
	terminal string
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

func (j *jsonlParser) record(line string, dropped bool) {
	if dropped {
		j.emit(Result{Raw: "[line removed: card data]", Err: fmt.Errorf("%w: line held track data or a card security code", ErrIncomplete)})
		return
	}
	if strings.TrimSpace(line) == "" {
		return
	}
	var r protocol.Record
	dec := json.NewDecoder(bytes.NewReader([]byte(line)))
	if err := dec.Decode(&r); err != nil {
		j.emit(Result{Raw: line, Err: fmt.Errorf("%w: decode: %w", ErrIncomplete, err)})
		return
	}
	if dec.More() {
		j.emit(Result{Raw: line, Err: fmt.Errorf("%w: more than one JSON value on the line", ErrIncomplete)})
		return
	}
	r.Epoch, r.Seq, r.Hash, r.CapturedAt, r.Source = "", 0, "", time.Time{}, nil
	// JSON escapes (\u0034…) can hide digits from the line masker: mask the decoded record's
	// canonical encoding too, and keep that as the raw text when it changed anything.
	if enc, err := json.Marshal(r); err == nil {
		m, res := j.masker.Mask(enc)
		if res.Dropped() {
			j.emit(Result{Raw: "[line removed: card data]", Err: fmt.Errorf("%w: record held track data or a card security code", ErrIncomplete)})
			return
		}
		if res.Masked > 0 {
			var masked protocol.Record
			if err := json.Unmarshal(m, &masked); err == nil {
				r, line = masked, string(m)
			}
		}
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
