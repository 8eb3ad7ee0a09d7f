package web

import (
	"strconv"
	"strings"

	"github.com/lanebridge/lanebridge/protocol"
)

// decimals is the number of decimals of currency's minor unit (protocol.MinorDigits: 2 unless
// ISO 4217 says otherwise; also 2 for a missing or unknown code).
func decimals(currency string) int {
	d, _ := protocol.MinorDigits(currency)
	return d
}

// formatMoney formats an amount in minor units of currency, locale-neutrally: "EUR 1,234.50",
// "JPY 1,235", "EUR -3.20" for a return. Without a currency only the number shows.
func formatMoney(minor int64, currency string) string {
	d := decimals(currency)
	neg := minor < 0
	digits := strconv.FormatUint(absU(minor), 10)
	if len(digits) <= d {
		digits = strings.Repeat("0", d-len(digits)+1) + digits
	}
	whole, frac := digits[:len(digits)-d], digits[len(digits)-d:]
	var b strings.Builder
	if currency != "" {
		b.WriteString(strings.ToUpper(currency))
		b.WriteByte(' ')
	}
	if neg {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if d > 0 {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// absU is |v|, also for the most negative int64.
func absU(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1
	}
	return uint64(v)
}
