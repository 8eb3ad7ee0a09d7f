package protocol

import "strings"

// minorDigits are the ISO 4217 currencies whose minor unit is not the usual hundredth: the
// number of decimals of an amount in minor units (JPY and KRW have none, KWD has three).
var minorDigits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// MinorDigits is the number of decimals of currency's minor unit per ISO 4217: the scale of
// every money field of a record in that currency (a JPY total of 1200 is ¥1,200, a EUR total
// of 1200 is €12.00). It is 2 for the currencies ISO 4217 gives two decimals, and also for an
// empty or unknown code; known is false then.
func MinorDigits(currency string) (digits int, known bool) {
	c := strings.ToUpper(strings.TrimSpace(currency))
	if d, ok := minorDigits[c]; ok {
		return d, true
	}
	return 2, len(c) == 3 && isUpperASCII(c)
}

func isUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
