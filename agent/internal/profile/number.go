package profile

import (
	"fmt"
	"slices"
	"strings"
)

type numFormat struct {
	dec, thou       string
	symbols         []string
	minus, trailing bool
	parens          bool
	implied         bool
	minor           int
}

func newNumFormat(n Numbers) (numFormat, error) {
	f := numFormat{dec: n.Decimal, thou: n.Thousands, symbols: n.CurrencySymbols, implied: n.ImpliedDecimals, minor: 2}
	if f.dec == "" {
		f.dec = "."
	}
	if f.thou == "" && f.dec == "." {
		f.thou = ","
	}
	if f.dec == f.thou {
		return f, fmt.Errorf("decimal and thousands separators are both %q", f.dec)
	}
	if n.MinorDigits != nil {
		f.minor = *n.MinorDigits
		if f.minor < 0 || f.minor > 4 {
			return f, fmt.Errorf("minor_digits: %d is not 0..4", f.minor)
		}
	}
	neg := n.Negative
	if len(neg) == 0 {
		neg = []string{"minus"}
	}
	for _, s := range neg {
		switch s {
		case "minus":
			f.minus = true
		case "trailing_minus":
			f.trailing = true
		case "parens":
			f.parens = true
		default:
			return f, fmt.Errorf("negative: %q is not minus, trailing_minus or parens", s)
		}
	}
	f.symbols = slices.Clone(f.symbols)
	return f, nil
}

// amount parses a printed amount into minor units.
func (f numFormat) amount(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(s)
	for _, sym := range f.symbols {
		s = strings.ReplaceAll(s, sym, "")
	}
	s = strings.ReplaceAll(s, " ", "")
	neg := false
	switch {
	case f.parens && strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")"):
		neg, s = true, s[1:len(s)-1]
	case f.trailing && strings.HasSuffix(s, "-"):
		neg, s = true, s[:len(s)-1]
	case strings.HasPrefix(s, "-") && (f.minus || !f.trailing):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	if f.thou != "" {
		s = strings.ReplaceAll(s, f.thou, "")
	}
	intPart, frac, hasDec := strings.Cut(s, f.dec)
	if !hasDec && f.implied && f.minor > 0 {
		if len(intPart) <= f.minor {
			intPart = strings.Repeat("0", f.minor-len(intPart)+1) + intPart
		}
		intPart, frac = intPart[:len(intPart)-f.minor], intPart[len(intPart)-f.minor:]
	}
	if intPart == "" && frac == "" {
		return 0, fmt.Errorf("amount %q: no digits", orig)
	}
	if len(frac) > f.minor {
		if strings.Trim(frac[f.minor:], "0") != "" {
			return 0, fmt.Errorf("amount %q: more than %d decimals", orig, f.minor)
		}
		frac = frac[:f.minor]
	}
	frac += strings.Repeat("0", f.minor-len(frac))
	digits := intPart + frac
	if len(digits) > 17 {
		return 0, fmt.Errorf("amount %q: too large", orig)
	}
	var v int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("amount %q: unexpected %q", orig, c)
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, nil
}

// quantity normalises a printed quantity to an exact decimal string ("2", "0.456", "-1").
func (f numFormat) quantity(s string) (string, error) {
	orig := s
	s = strings.TrimSpace(s)
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	} else if f.trailing && strings.HasSuffix(s, "-") {
		neg, s = true, s[:len(s)-1]
	}
	if f.thou != "" && f.thou != "." {
		s = strings.ReplaceAll(s, f.thou, "")
	}
	intPart, frac, _ := strings.Cut(s, f.dec)
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	frac = strings.TrimRight(frac, "0")
	for _, c := range intPart + frac {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("quantity %q: unexpected %q", orig, c)
		}
	}
	if len(intPart) > 12 || len(frac) > 6 {
		return "", fmt.Errorf("quantity %q: out of range", orig)
	}
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out, nil
}

// quantityMinor multiplies a quantity by a unit price (minor units), rounding half away from
// zero. ok is false on overflow.
func quantityTimes(q string, unit int64) (int64, bool) {
	neg := strings.HasPrefix(q, "-")
	q = strings.TrimPrefix(q, "-")
	intPart, frac, _ := strings.Cut(q, ".")
	scale := int64(1)
	var num int64
	for _, c := range intPart + frac {
		num = num*10 + int64(c-'0')
	}
	for range frac {
		scale *= 10
	}
	if unit != 0 && (num > (1<<62)/abs(unit)) {
		return 0, false
	}
	prod := num * unit
	res := prod / scale
	rem := prod % scale
	if rem < 0 {
		rem = -rem
	}
	if rem*2 >= scale && scale > 1 {
		if prod < 0 {
			res--
		} else {
			res++
		}
	}
	if neg {
		res = -res
	}
	return res, true
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// formatMinor renders minor units for messages ("-1.25").
func formatMinor(v int64, minor int) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	if minor == 0 {
		return fmt.Sprintf("%s%d", sign, v)
	}
	p := int64(1)
	for range minor {
		p *= 10
	}
	return fmt.Sprintf("%s%d.%0*d", sign, v/p, minor, v%p)
}
