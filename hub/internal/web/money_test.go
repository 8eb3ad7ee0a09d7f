package web

import (
	"math"
	"testing"
)

func TestFormatMoney(t *testing.T) {
	for _, c := range []struct {
		minor    int64
		currency string
		want     string
	}{
		{123450, "EUR", "EUR 1,234.50"},
		{-320, "EUR", "EUR -3.20"},
		{5, "usd", "USD 0.05"},
		{0, "GBP", "GBP 0.00"},
		{1235, "JPY", "JPY 1,235"},
		{-1000000, "KRW", "KRW -1,000,000"},
		{1234567, "BHD", "BHD 1,234.567"},
		{7, "KWD", "KWD 0.007"},
		{-5, "TND", "TND -0.005"},
		{10000, "OMR", "OMR 10.000"},
		{12345, "JOD", "JOD 12.345"},
		{12345, "CLF", "CLF 1.2345"},
		{99, "XYZ", "XYZ 0.99"}, // unknown code: two decimals
		{123456, "", "1,234.56"},
		{100, "CHF", "CHF 1.00"},
		{999, "EUR", "EUR 9.99"},
		{100000, "EUR", "EUR 1,000.00"},
		{math.MinInt64, "JPY", "JPY -9,223,372,036,854,775,808"},
	} {
		if got := formatMoney(c.minor, c.currency); got != c.want {
			t.Errorf("formatMoney(%d, %q) = %q, want %q", c.minor, c.currency, got, c.want)
		}
	}
}
