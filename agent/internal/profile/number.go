package profile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lanebridge/lanebridge/protocol"
)

type numFormat struct {
	dec, thou       string
	spaceThou       bool // thousands is a space: " ", NBSP and narrow NBSP all separate groups
	symbols         []string
	minus, trailing bool
	parens          bool
	implied         bool
	minor           int
	exact           bool   // a printed decimal part has exactly minor digits
	grouping        string // thousands (default), indian, any
}

// newNumFormat compiles n for amounts in currency (an ISO 4217 code, or empty): the minor
// digits default to the currency's (protocol.MinorDigits), and a minor_digits that disagrees
// with a known currency is an error, since every record's money is in that currency's minor
// units.
func newNumFormat(n Numbers, currency string) (numFormat, error) {
	f := numFormat{dec: n.Decimal, thou: n.Thousands, symbols: n.CurrencySymbols, implied: n.ImpliedDecimals,
		exact: n.ExactDecimals, grouping: n.Grouping}
	iso, known := protocol.MinorDigits(currency)
	f.minor = iso
	if f.dec == "" {
		f.dec = "."
	}
	if f.thou == "" && f.dec == "." {
		f.thou = ","
	}
	if f.dec == f.thou {
		return f, fmt.Errorf("decimal and thousands separators are both %q", f.dec)
	}
	f.spaceThou = isSpaceSep(f.thou)
	if n.MinorDigits != nil {
		f.minor = *n.MinorDigits
		if f.minor < 0 || f.minor > 4 {
			return f, fmt.Errorf("minor_digits: %d is not 0..4", f.minor)
		}
		if known && currency != "" && f.minor != iso {
			return f, fmt.Errorf("minor_digits: %d, but fields.currency %s has %d minor digits in ISO 4217 and records carry money in its minor units (remove minor_digits; amounts printed with more decimals than the currency has are read when the extra digits are zeros)", f.minor, currency, iso)
		}
	}
	switch f.grouping {
	case "":
		f.grouping = "thousands"
	case "thousands", "indian", "any":
	default:
		return f, fmt.Errorf("grouping: %q is not thousands, indian or any", f.grouping)
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

func isSpaceSep(s string) bool { return s == " " || s == "\u00a0" || s == "\u202f" }

// spaces are the spaces a printed amount may hold (between symbol, sign and digits, or as the
// thousands separator): space, no-break space, narrow no-break space.
var spaces = strings.NewReplacer("\u00a0", " ", "\u202f", " ")

// amount parses a printed amount into minor units.
func (f numFormat) amount(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(spaces.Replace(s))
	for _, sym := range f.symbols {
		s = strings.ReplaceAll(s, sym, "")
	}
	s = strings.TrimSpace(s)
	if f.spaceThou {
		// Spaces inside the digits separate groups; spaces next to a sign do not.
		s = strings.Join(strings.Fields(s), " ")
		s = strings.NewReplacer("- ", "-", "+ ", "+", "( ", "(", " )", ")", " -", "-").Replace(s)
	} else {
		s = strings.ReplaceAll(s, " ", "")
	}
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
	intPart, frac, hasDec := strings.Cut(s, f.dec)
	thou := f.thou
	if f.spaceThou {
		thou = " "
	}
	if thou != "" && strings.Contains(intPart, thou) {
		if err := f.checkGroups(intPart, thou); err != nil {
			return 0, fmt.Errorf("amount %q: %w", orig, err)
		}
		intPart = strings.ReplaceAll(intPart, thou, "")
	}
	if hasDec && f.exact && len(frac) != f.minor {
		return 0, fmt.Errorf("amount %q: %d decimals, the layout prints %d (numbers.exact_decimals)", orig, len(frac), f.minor)
	}
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

// checkGroups checks the digit groups of an integer part printed with thousands separators:
// "1.234.567" (thousands), "12,34,567" (indian: groups of two before the last three), or any
// sizes (any). A separator in the wrong place (a "1.50" read with a decimal comma) is an error
// rather than a hundredfold amount.
func (f numFormat) checkGroups(intPart, thou string) error {
	if f.grouping == "any" {
		return nil
	}
	gs := strings.Split(strings.TrimLeft(intPart, "-+("), thou)
	for i, g := range gs {
		n := len(g)
		switch {
		case n == 0:
			return fmt.Errorf("empty digit group")
		case i == 0 && n > 3, i == len(gs)-1 && n != 3:
			return fmt.Errorf("digit group %q where %s grouping has three digits (check numbers.decimal and numbers.thousands)", g, f.grouping)
		case i > 0 && i < len(gs)-1 && n != 3 && !(f.grouping == "indian" && n == 2):
			return fmt.Errorf("digit group %q does not fit %s grouping (check numbers.decimal, numbers.thousands and numbers.grouping)", g, f.grouping)
		}
	}
	return nil
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
