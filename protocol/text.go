package protocol

import (
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
