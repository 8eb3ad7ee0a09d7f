package protocol

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on what one agent can make the hub keep or show. A status that exceeds a list limit
// is not rejected: its lists are cut (Status.Bound) and the rest arrives with later statuses.
const (
	// MaxText is the most bytes of agent-supplied text copied into an exception or a log line.
	MaxText = 2048
	// MaxStatusList is the most entries of each list of a Status the hub reads.
	MaxStatusList = 100
	// MaxMoney bounds every amount in minor units: |amount| <= MaxMoney (10^13, a hundred
	// billion in a currency with cents). Sums of a day of such amounts fit an int64 easily.
	MaxMoney = 10_000_000_000_000
	// MaxSeq is the largest seq (2^53): the largest integer every JSON reader keeps exactly.
	MaxSeq = 1 << 53
)

// Clip returns s cut to at most max bytes (at a rune boundary) followed by "…N more bytes"
// when it is longer.
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…" + strconv.Itoa(len(s)-cut) + " more bytes"
}

// SafeText returns s as text every store accepts: invalid UTF-8 becomes U+FFFD and NUL
// becomes U+2400 (␀), which PostgreSQL text and jsonb cannot hold.
func SafeText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\u2400")
}

// Excerpt is SafeText(Clip(s, MaxText)): agent text as copied into an exception or a log.
func Excerpt(s string) string { return SafeText(Clip(s, MaxText)) }

// quote is %q of an agent-supplied value for an error message, clipped to 64 bytes.
func quote(s string) string { return strconv.Quote(Clip(s, 64)) }

// jsonEscapes calls fn with the offset of each \u escape in JSON text b (a backslash that is
// itself escaped starts none) and its four hex digits, until fn returns false.
func jsonEscapes(b []byte, fn func(i int, hex string) bool) {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && !fn(i, string(b[i+2:i+6])) {
			return
		}
		i++ // skip the escaped character, so "\\u0000" is a backslash and text
	}
}

// checkStorable reports why JSON text b cannot be stored as PostgreSQL jsonb: a NUL (\u0000)
// or a UTF-16 surrogate escape without its pair.
func checkStorable(b []byte) error {
	var err error
	low := -1 // where the low half of a high surrogate escape must follow
	lone := errors.New("contains a lone UTF-16 surrogate escape")
	jsonEscapes(b, func(i int, hex string) bool {
		v, perr := strconv.ParseUint(hex, 16, 16)
		isLow := v >= 0xDC00 && v <= 0xDFFF
		switch {
		case perr != nil: // the decoder rejects it
		case low >= 0:
			if i != low || !isLow {
				err = lone
			}
			low = -1
		case v == 0:
			err = errors.New("contains NUL (\\u0000)")
		case isLow:
			err = lone
		case v >= 0xD800 && v <= 0xDBFF:
			low = i + 6
		}
		return err == nil
	})
	if err == nil && low >= 0 {
		err = lone
	}
	return err
}

// StorableJSON returns JSON text b with every \u0000 escape replaced by \u2400 (␀), so that
// PostgreSQL jsonb can hold it; b itself when it has none.
func StorableJSON(b []byte) []byte {
	out, copied := b, false
	jsonEscapes(b, func(i int, hex string) bool {
		if hex == "0000" {
			if !copied {
				out, copied = bytes.Clone(b), true
			}
			copy(out[i+2:], "2400")
		}
		return true
	})
	return out
}
