package draft

import (
	"fmt"
	"regexp"
	"strings"
)

// amountFormat is what the sample says about printed amounts.
type amountFormat struct {
	dec, thou string
	minor     int
	symbols   []string
	trailing  bool // a trailing minus was seen
	codes     bool // amounts are followed by a tax-code letter ("0,90 A")
	paren     bool // some amount lines are in parentheses ("(incl. tax ¥30)")
	why       string

	bare  string // regex of an amount's digits
	full  string // regex of an amount with sign and currency symbol
	lineR *regexp.Regexp
}

var (
	numTokRE  = regexp.MustCompile(`\d[\d.,']*\d|\d`)
	dateLikeR = regexp.MustCompile(`^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$`)
	dec2RE    = regexp.MustCompile(`^(?:\d{1,3}(?:([.,' ])\d{3})+|\d+)([.,])\d\d$`)
	groupRE   = regexp.MustCompile(`^\d{1,3}(?:([.,])\d{3})+$`)
)

// knownSymbols are currency symbols and codes printed next to amounts, with their ISO 4217 code.
var knownSymbols = []struct{ sym, code string }{
	{"R$", "BRL"}, {"RM", "MYR"}, {"Rp", "IDR"}, {"EUR", "EUR"}, {"USD", "USD"}, {"JPY", "JPY"}, {"KRW", "KRW"},
	{"CHF", "CHF"}, {"GBP", "GBP"}, {"IDR", "IDR"}, {"MYR", "MYR"}, {"BRL", "BRL"}, {"CLP", "CLP"}, {"MMK", "MMK"},
	{"€", "EUR"}, {"£", "GBP"}, {"¥", "JPY"}, {"￥", "JPY"}, {"円", "JPY"}, {"₩", "KRW"}, {"원", "KRW"},
	{"฿", "THB"}, {"₫", "VND"}, {"Ks", "MMK"}, {"$", "USD"},
}

var symbolREs = func() []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, ks := range knownSymbols {
		q := regexp.QuoteMeta(ks.sym)
		out = append(out, regexp.MustCompile(`(?:`+q+` ?-?\d|\d ?`+q+`)`))
	}
	return out
}()

// inferAmounts reads the number format from the last number of every line.
func inferAmounts(lines []string) amountFormat {
	var dec2 = map[string]int{}
	var grp2 = map[string]int{}
	var grp0 = map[string]int{}
	for _, l := range lines {
		toks := numTokRE.FindAllString(l, -1)
		if len(toks) == 0 {
			continue
		}
		t := toks[len(toks)-1]
		if dateLikeR.MatchString(t) && strings.Count(t, ".")+strings.Count(t, "/")+strings.Count(t, "-") >= 2 {
			continue
		}
		if m := dec2RE.FindStringSubmatch(t); m != nil {
			dec2[m[2]]++
			if m[1] != "" {
				grp2[m[1]]++
			}
			continue
		}
		if m := groupRE.FindStringSubmatch(t); m != nil {
			grp0[m[1]]++
		}
	}
	f := amountFormat{dec: ".", thou: ",", minor: 2}
	n2 := dec2["."] + dec2[","]
	n0 := grp0["."] + grp0[","]
	switch {
	case n2 > 0 && n2 >= n0:
		if dec2[","] > dec2["."] {
			f.dec, f.thou = ",", "."
		}
		for _, s := range []string{".", ",", "'", " "} {
			if s != f.dec && grp2[s] > 0 {
				f.thou = s
			}
		}
		f.why = fmt.Sprintf("%d amounts end in %s and two digits", dec2[f.dec], f.dec)
		if grp2[f.thou] > 0 {
			f.why += fmt.Sprintf(", %d are grouped with %q", grp2[f.thou], f.thou)
		} else {
			f.why += fmt.Sprintf("; no grouping seen, %q assumed", f.thou)
		}
	case n0 > 0:
		f.minor = 0
		if grp0["."] > grp0[","] {
			f.dec, f.thou = ",", "."
		}
		f.why = fmt.Sprintf("no amount has decimals; %d are grouped with %q in threes: a currency without minor units", grp0[f.thou], f.thou)
	default:
		f.why = "no amount seen: defaults"
	}
	return f
}

// compile builds the amount regexes once symbols and suffixes are known.
func (f *amountFormat) compile() {
	t, d := regexp.QuoteMeta(f.thou), regexp.QuoteMeta(f.dec)
	if f.thou == " " {
		t = " "
	}
	if f.minor > 0 {
		f.bare = fmt.Sprintf(`(?:\d{1,3}(?:%s\d{3})+|\d+)%s\d{%d}`, t, d, f.minor)
	} else {
		f.bare = fmt.Sprintf(`(?:\d{1,3}(?:%s\d{3})+|\d+)`, t)
	}
	sym := ""
	if len(f.symbols) > 0 {
		var q []string
		for _, s := range f.symbols {
			q = append(q, regexp.QuoteMeta(s))
		}
		sym = "(?:" + strings.Join(q, "|") + ")"
	}
	full := `-?`
	if sym != "" {
		full += `(?:` + sym + ` ?)?-?`
	}
	full += f.bare
	if sym != "" {
		full += `(?: ?` + sym + `)?`
	}
	if f.trailing {
		full += `-?`
	}
	f.full = full
	f.lineR = regexp.MustCompile(`^(.*?)(` + full + `)` + f.suffix() + `$`)
}

// suffix is the optional tax-code letter after an amount.
func (f *amountFormat) suffix() string {
	s := ""
	if f.codes {
		s = `(?:\s{1,3}[A-Z*]{1,2})?`
	}
	if f.paren {
		s += `\)?`
	}
	return s
}

var (
	codeSuffixRE = regexp.MustCompile(`\d\s{1,3}[A-Z*]{1,2}$`)
	trailMinusRE = regexp.MustCompile(`\d-$`)
	parenEndRE   = regexp.MustCompile(`^\s*\(.*\d\)$`)
)

// detectSymbols finds currency symbols next to amounts and tax-code letters after them.
func (f *amountFormat) detectSymbols(lines []string) string {
	seen := map[string]bool{}
	codes := 0
	for _, l := range lines {
		if codeSuffixRE.MatchString(l) {
			codes++
		}
		if parenEndRE.MatchString(l) {
			f.paren = true
		}
		if trailMinusRE.MatchString(l) {
			f.trailing = true
		}
		for i, ks := range knownSymbols {
			if seen[ks.sym] {
				continue
			}
			if ks.sym == "$" && strings.Contains(l, "R$") {
				continue
			}
			if symbolREs[i].MatchString(l) {
				seen[ks.sym] = true
			}
		}
	}
	f.codes = codes >= 2
	currency := ""
	for _, ks := range knownSymbols {
		if seen[ks.sym] {
			f.symbols = append(f.symbols, ks.sym)
			if currency == "" {
				currency = ks.code
			}
		}
	}
	return currency
}

// split cuts a line into its label and trailing amount.
func (f *amountFormat) split(line string) (label, amount string, ok bool) {
	m := f.lineR.FindStringSubmatch(line)
	if m == nil {
		return line, "", false
	}
	label = m[1]
	// An amount glued to a word ("Milk3.98") is not an amount column.
	if label != "" {
		r := lastRune(label)
		if r != ' ' && r != '\t' && r != ':' && r != '=' && !strings.ContainsRune("-*#", r) {
			return line, "", false
		}
	}
	return label, m[2], true
}

// value parses an amount as the profile's number format would (minor units).
func (f *amountFormat) value(s string) (int64, bool) {
	for _, sym := range f.symbols {
		s = strings.ReplaceAll(s, sym, "")
	}
	s = strings.ReplaceAll(s, " ", "")
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	} else if strings.HasSuffix(s, "-") {
		neg, s = true, s[:len(s)-1]
	}
	s = strings.ReplaceAll(s, f.thou, "")
	ip, fp, _ := strings.Cut(s, f.dec)
	digits := ip + fp
	if len(fp) != f.minor || len(digits) == 0 || len(digits) > 15 {
		return 0, false
	}
	var v int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}
