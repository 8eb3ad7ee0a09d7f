package web

import (
	"strconv"
	"strings"
)

// minorUnits are the ISO 4217 currencies whose minor unit is not the usual hundredth: the
// number of decimals of an amount in minor units.
var minorUnits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// decimals is the number of decimals of currency's minor unit (2 unless ISO 4217 says
// otherwise; also 2 for a missing or unknown code).
func decimals(currency string) int {
	if d, ok := minorUnits[strings.ToUpper(currency)]; ok {
		return d
	}
	return 2
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
