package profile

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// extra is a compiled top-level extra: regexes that find it at the start and at the end of a
// line, as whole words.
type extra struct {
	name          string
	before, after *regexp.Regexp // nil when the extra may not stand there
}

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
		x := &extra{name: name}
		// Whole words at the ends: start of line (after indentation) then a space or the end;
		// a space or the start then the end of the line.
		before := regexp.MustCompile(`^(\s*)(?:` + e.Match + `)(?:\s+|$)`)
		after := regexp.MustCompile(`(?:^|\s+)(?:` + e.Match + `)\s*$`)
		switch e.Where {
		case "", "either":
			x.before, x.after = before, after
		case "before":
			x.before = before
		case "after":
			x.after = after
		default:
			return fmt.Errorf("%s.where: %q is not before, after or either", where, e.Where)
		}
		c.extras[name] = x
	}
	return nil
}

// lookupExtras resolves a rule's extras list.
func (p *Profile) lookupExtras(where string, names []string) ([]*extra, error) {
	var out []*extra
	for i, n := range names {
		x, ok := p.c.extras[n]
		if !ok {
			known := make([]string, 0, len(p.c.extras))
			for k := range p.c.extras {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("%s.extras[%d]: %q is not defined under the top-level extras (defined: %s)", where, i, n, strings.Join(known, ", "))
		}
		out = append(out, x)
	}
	return out, nil
}

// findWithExtras matches re against text as printed and, failing that, against text with
// extras removed from its ends (up to maxExtraStrips of them, in any order, never leaving the
// line empty). It returns the submatches of the first form that matches and that form.
func findWithExtras(re *regexp.Regexp, xs []*extra, text string) ([]string, string) {
	if m := re.FindStringSubmatch(text); m != nil || len(xs) == 0 {
		return m, text
	}
	seen := map[string]bool{text: true}
	frontier := []string{text}
	for depth := 0; depth < maxExtraStrips && len(frontier) > 0; depth++ {
		var next []string
		for _, t := range frontier {
			for _, v := range stripOne(xs, t) {
				if seen[v] {
					continue
				}
				seen[v] = true
				if m := re.FindStringSubmatch(v); m != nil {
					return m, v
				}
				next = append(next, v)
			}
		}
		frontier = next
	}
	return nil, text
}

// stripOne returns text with one extra taken off its start or end, for each extra found there.
func stripOne(xs []*extra, text string) []string {
	var out []string
	for _, x := range xs {
		if x.before != nil {
			if m := x.before.FindStringSubmatchIndex(text); m != nil && m[1] > m[3] {
				if v := text[:m[3]] + text[m[1]:]; strings.TrimSpace(v) != "" {
					out = append(out, v)
				}
			}
		}
		if x.after != nil {
			if m := x.after.FindStringIndex(text); m != nil {
				if v := text[:m[0]]; strings.TrimSpace(v) != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}
