package profile

import "fmt"

// LineTrace says what happened to one line of a transaction: which rule took it, or that
// cleaning left it out, or that no rule did (Rule empty). It is filled only for a parser with
// tracing on, for tools (profile test --explain); the capture path never turns it on.
type LineTrace struct {
	Text string // the masked line as decoded (device events in [brackets])
	Rule string // e.g. "fields.rules[3] (item)"; empty when no rule took the line
}

// Tracer is implemented by the parsers that can trace (the text formats).
type Tracer interface {
	// SetTrace turns tracing on or off for the transactions opened from now on.
	SetTrace(on bool)
}

// SetTrace implements Tracer.
func (t *textParser) SetTrace(on bool) { t.tracing = on }

// traceRaw records a line of the open transaction (while tracing) and returns its entry.
func (t *textParser) traceRaw(text, rule string) *LineTrace {
	if !t.tracing {
		return nil
	}
	lt := &LineTrace{Text: text, Rule: rule}
	t.trace = append(t.trace, lt)
	return lt
}

func (t *textParser) takeTrace() []LineTrace {
	if t.trace == nil {
		return nil
	}
	out := make([]LineTrace, len(t.trace))
	for i, lt := range t.trace {
		out[i] = *lt
	}
	return out
}

// took notes, while tracing, the rule that handled l.
func (l txLine) took(section string, i int, typ string) {
	if l.trace != nil {
		l.trace.Rule = fmt.Sprintf("%s[%d] (%s)", section, i, typ)
	}
}

// MinorDigits returns the number of decimals the parser reads amounts with (numbers.minor_digits):
// records' money is in these minor units.
func (p *Profile) MinorDigits() int { return p.c.num.minor }
