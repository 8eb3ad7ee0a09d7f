package profile

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// extra is a compiled top-level extra: a regex for the whole of its words, and where it may
// stand.
type extra struct {
	name          string
	re            *regexp.Regexp // ^(?:match)$
	before, after bool
}

// maxExtraWords bounds the words one extra spans.
const maxExtraWords = 4

// maxExtraStrips bounds how many extra words are taken off one line's ends.
const maxExtraStrips = 4

func (p *Profile) compileExtras() error {
	c := &p.c
	c.extras = map[string]*extra{}
	for name, e := range p.Extras {
		where := fmt.Sprintf("extras.%s", name)
		if name == "" {
			return fmt.Errorf("extras: an extra needs a name")
		}
		if _, err := compileRE(where+".match", e.Match); err != nil {
			return err
		}
		x := &extra{name: name, re: regexp.MustCompile(`^(?:` + e.Match + `)$`)}
		switch e.Where {
		case "", "either":
			x.before, x.after = true, true
		case "before":
			x.before = true
		case "after":
			x.after = true
		default:
			return fmt.Errorf("%s.where: %q is not before, after or either", where, e.Where)
		}
		c.extras[name] = x
	}
	return nil
}

// extraSet is the extras one rule tolerates; key names the set for extraCache.
type extraSet struct {
	xs  []*extra
	key string
}

// lookupExtras resolves a rule's extras list.
func (p *Profile) lookupExtras(where string, names []string) (extraSet, error) {
	var out []*extra
	for i, n := range names {
		x, ok := p.c.extras[n]
		if !ok {
			known := make([]string, 0, len(p.c.extras))
			for k := range p.c.extras {
				known = append(known, k)
			}
			sort.Strings(known)
			return extraSet{}, fmt.Errorf("%s.extras[%d]: %q is not defined under the top-level extras (defined: %s)", where, i, n, strings.Join(known, ", "))
		}
		out = append(out, x)
	}
	return extraSet{xs: out, key: strings.Join(names, "\x00")}, nil
}

// extraCache holds, for one transaction, the forms of each line with extras taken off, per
// extras set: many rules share a set, and a line is tried against every rule.
type extraCache map[[2]string][]string

// find matches re against text as printed and, failing that, against text with extras
// removed from its ends (up to maxExtraStrips of them, in any order, never leaving the line
// empty; an extra spans at most maxExtraWords words). It returns the submatches of the first
// form that matches.
func (c extraCache) find(re *regexp.Regexp, set extraSet, text string) []string {
	if m := re.FindStringSubmatch(text); m != nil || len(set.xs) == 0 {
		return m
	}
	for _, v := range c.forms(set, text) {
		if m := re.FindStringSubmatch(v); m != nil {
			return m
		}
	}
	return nil
}

// forms returns text's forms with extras taken off, nearest first (one taken off, then two…).
func (c extraCache) forms(set extraSet, text string) []string {
	k := [2]string{set.key, text}
	if v, ok := c[k]; ok {
		return v
	}
	var out []string
	seen := map[string]bool{text: true}
	frontier := []string{text}
	for depth := 0; depth < maxExtraStrips && len(frontier) > 0; depth++ {
		var next []string
		for _, t := range frontier {
			for _, v := range stripOne(set.xs, t) {
				if !seen[v] {
					seen[v] = true
					out = append(out, v)
					next = append(next, v)
				}
			}
		}
		frontier = next
	}
	c[k] = out
	return out
}

// stripOne returns text with one extra taken off its start or end, for each extra found there:
// the first one to four words after the indentation, or the last one to four words, that the
// extra's regex matches as a whole. The line is never left empty.
func stripOne(xs []*extra, text string) []string {
	var out []string
	body := strings.TrimLeft(text, " \t")
	indent := text[:len(text)-len(body)]
	body = strings.TrimRight(body, " \t")
	// ends[i] is where word i ends in body, starts[i] where it starts.
	var starts, ends []int
	inWord := false
	for i, r := range body {
		sp := r == ' ' || r == '\t'
		switch {
		case !sp && !inWord:
			starts = append(starts, i)
			inWord = true
		case sp && inWord:
			ends = append(ends, i)
			inWord = false
		}
	}
	if inWord {
		ends = append(ends, len(body))
	}
	n := len(starts)
	for _, x := range xs {
		for k := 1; k <= maxExtraWords && k < n; k++ {
			if x.before && x.re.MatchString(body[:ends[k-1]]) {
				out = append(out, indent+body[starts[k]:])
			}
			if x.after && x.re.MatchString(body[starts[n-k]:]) {
				out = append(out, indent+body[:ends[n-k-1]])
			}
		}
	}
	return out
}
