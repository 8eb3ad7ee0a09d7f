package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeBatchFast is the single-pass decoder behind DecodeBatch for the shape agents send: a
// JSON object whose members are exactly the Batch's own (lower-case names, each once, in any
// order), header strings plain (no escapes, valid UTF-8) and records an array of objects. It
// walks the envelope by hand, cutting each record's bytes out of the payload without decoding
// them, and decodes every record once: by hand (decodeRecordFast) when it has the shape Go's
// encoder writes, else with encoding/json (which also checks that its bytes are one valid JSON
// value). The envelope is therefore never decoded by reflection, and no record is
// scanned a second time into a json.RawMessage.
//
// Anything else (unknown or case-folded member names, escapes, duplicates, null, invalid JSON, a
// record that does not decode) returns ok false, and DecodeBatch runs the general decoder, whose
// result and error messages are the reference: this path only ever accepts payloads that the
// general one decodes to the same Batch.
func decodeBatchFast(payload []byte) (b Batch, raws [][]byte, ok bool) {
	p := envParser{s: payload}
	p.ws()
	if !p.byte('{') {
		return b, nil, false
	}
	var seen [6]bool
	p.ws()
	if p.peek() == '}' {
		return b, nil, false // no members: the general decoder says what is missing
	}
	for {
		p.ws()
		key, ok := p.plainString()
		if !ok {
			return b, nil, false
		}
		p.ws()
		if !p.byte(':') {
			return b, nil, false
		}
		p.ws()
		idx := -1
		switch string(key) {
		case "v":
			idx = 0
			n, ok := p.smallInt()
			if !ok {
				return b, nil, false
			}
			b.V = n
		case "store", "epoch", "command_id":
			s, ok := p.plainString()
			if !ok {
				return b, nil, false
			}
			switch string(key) {
			case "store":
				idx, b.Store = 1, string(s)
			case "epoch":
				idx, b.Epoch = 2, string(s)
			default:
				idx, b.CommandID = 3, string(s)
			}
		case "replay":
			idx = 4
			switch {
			case p.lit("true"):
				b.Replay = true
			case p.lit("false"):
			default:
				return b, nil, false
			}
		case "records":
			idx = 5
			if raws, ok = p.records(raws); !ok {
				return b, nil, false
			}
		default:
			return b, nil, false // unknown members, or names the general decoder matches case-insensitively
		}
		if seen[idx] {
			return b, nil, false // a repeated member: the general decoder keeps the last one
		}
		seen[idx] = true
		p.ws()
		if p.byte(',') {
			continue
		}
		if !p.byte('}') {
			return b, nil, false
		}
		break
	}
	p.ws()
	if p.i != len(p.s) || !seen[5] {
		return b, nil, false
	}
	b.Records = make([]Record, len(raws))
	for i, raw := range raws {
		if decodeRecordFast(raw, &b.Records[i]) {
			continue
		}
		b.Records[i] = Record{} // what the fast decoder left is not merged into
		if json.Unmarshal(raw, &b.Records[i]) != nil {
			return b, nil, false
		}
	}
	return b, raws, true
}

// envParser reads the envelope of a batch; every method advances only on success.
type envParser struct {
	s []byte
	i int
}

func (p *envParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *envParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *envParser) byte(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *envParser) lit(l string) bool {
	if bytes.HasPrefix(p.s[p.i:], []byte(l)) {
		p.i += len(l)
		return true
	}
	return false
}

// plainString reads a string without escapes or control characters, valid UTF-8.
func (p *envParser) plainString() ([]byte, bool) {
	if p.peek() != '"' {
		return nil, false
	}
	j := bytes.IndexByte(p.s[p.i+1:], '"')
	if j < 0 {
		return nil, false
	}
	s := p.s[p.i+1 : p.i+1+j]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return nil, false
		}
	}
	if !utf8.Valid(s) {
		return nil, false // the general decoder replaces invalid bytes with U+FFFD
	}
	p.i += j + 2
	return s, true
}

// smallInt reads a JSON integer of at most 9 digits (the protocol version).
func (p *envParser) smallInt() (int, bool) {
	j := p.i
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	k := j
	for k < len(p.s) && p.s[k] >= '0' && p.s[k] <= '9' {
		k++
	}
	if k == j || k-j > 9 || (k-j > 1 && p.s[j] == '0') {
		return 0, false
	}
	if k < len(p.s) && (p.s[k] == '.' || p.s[k] == 'e' || p.s[k] == 'E') {
		return 0, false
	}
	n, err := strconv.Atoi(string(p.s[p.i:k]))
	if err != nil {
		return 0, false
	}
	p.i = k
	return n, true
}

// records reads an array of objects and appends each one's bytes to raws.
func (p *envParser) records(raws [][]byte) ([][]byte, bool) {
	if !p.byte('[') {
		return nil, false
	}
	p.ws()
	if p.byte(']') {
		return raws[:0], true
	}
	for {
		p.ws()
		if p.peek() != '{' {
			return nil, false
		}
		end, ok := skipComposite(p.s, p.i)
		if !ok {
			return nil, false
		}
		raws = append(raws, p.s[p.i:end])
		p.i = end
		p.ws()
		if p.byte(',') {
			continue
		}
		if p.byte(']') {
			return raws, true
		}
		return nil, false
	}
}

// skipComposite returns the offset just past the object or array starting at s[i], matching
// brackets outside strings. It does not check the JSON in between (the record's decoder does).
func skipComposite(s []byte, i int) (int, bool) {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		case '"':
			for i++; ; i++ {
				if i >= len(s) {
					return 0, false
				}
				j := bytes.IndexAny(s[i:], "\"\\")
				if j < 0 {
					return 0, false
				}
				i += j
				if s[i] == '"' {
					break
				}
				i++ // skip the escaped character
			}
		}
	}
	return 0, false
}
