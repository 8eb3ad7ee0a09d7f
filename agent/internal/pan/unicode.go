package pan

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// asciiView returns line as the masker scans it when line holds a decimal digit other than
// ASCII '0'..'9' (fullwidth "４１１１", Arabic-Indic, …), ASCII digits and a Unicode space or
// dash (no-break space, en dash), or NUL bytes (UTF-16 text read as
// bytes: "4\x001\x00…"): one byte per character, each Unicode decimal digit written as its ASCII
// digit, each Unicode space as ' ', each dash as '-', any other non-ASCII character as '~'
// (neither digit, separator nor letter), NUL bytes left out. spans[k] is the byte offset in
// line of view[k]'s character. Otherwise it returns nil.
func asciiView(line []byte) (view []byte, spans []int) {
	i := 0
	for ; i < len(line); i++ {
		if line[i] >= utf8.RuneSelf || line[i] == 0 {
			break
		}
	}
	if i == len(line) || (bytes.IndexByte(line[i:], 0) < 0 && !hasUnicodeDigit(line[i:], hasDigit(line))) {
		return nil, nil
	}
	view = make([]byte, 0, len(line))
	spans = make([]int, 0, len(line))
	for i := 0; i < len(line); {
		c := line[i]
		if c == 0 {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			view, spans = append(view, c), append(spans, i)
			i++
			continue
		}
		r, n := utf8.DecodeRune(line[i:])
		switch {
		case unicode.IsDigit(r):
			c = '0' + digitValue(r)
		case unicode.IsSpace(r):
			c = ' '
		case unicode.Is(unicode.Pd, r) || r == '\u2212':
			c = '-'
		default:
			c = '~'
		}
		view, spans = append(view, c), append(spans, i)
		i += n
	}
	return view, spans
}

// hasUnicodeDigit reports whether b holds a non-ASCII decimal digit or, when ascii is set (the
// line has ASCII digits), a non-ASCII space or dash that may separate them ("4111\u00a01111").
func hasUnicodeDigit(b []byte, ascii bool) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r >= utf8.RuneSelf && (unicode.IsDigit(r) || ascii && (unicode.IsSpace(r) || unicode.Is(unicode.Pd, r) || r == '\u2212')) {
			return true
		}
		b = b[n:]
	}
	return false
}

func hasDigit(b []byte) bool {
	for _, c := range b {
		if isDigit(c) {
			return true
		}
	}
	return false
}

// digitValue returns the value 0..9 of the Unicode decimal digit r. Decimal digits come in
// contiguous runs of whole 0..9 blocks, so the value is r's distance from the start of its run,
// modulo 10.
func digitValue(r rune) byte {
	start := r
	for unicode.IsDigit(start - 1) {
		start--
	}
	return byte((r - start) % 10)
}

// unview returns line with the masking of its view vm applied: every character whose view byte
// became '*' is replaced by as many '*' as it has bytes (NUL bytes around it are kept), so the
// line keeps its length.
func unview(line, vm []byte, spans []int) []byte {
	out := bytes.Clone(line)
	for k, start := range spans {
		if vm[k] != '*' || line[start] == '*' {
			continue
		}
		n := 1
		if line[start] >= utf8.RuneSelf {
			_, n = utf8.DecodeRune(line[start:])
		}
		for j := range n {
			out[start+j] = '*'
		}
	}
	return out
}
