package draft

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A printed date form: its regex and Go layouts (two when day and month may be either way).
type dateForm struct {
	re      *regexp.Regexp
	src     string
	layouts []string // [day-or-month-first candidates]; one when unambiguous
	dm      [2]int   // submatch indexes of the two small fields (for ambiguous forms)
}

var dateForms = []dateForm{
	{src: `\d{4}-\d\d-\d\d`, layouts: []string{"2006-01-02"}},
	{src: `\d{4}/\d\d/\d\d`, layouts: []string{"2006/01/02"}},
	{src: `\d{4}\.\d\d\.\d\d`, layouts: []string{"2006.01.02"}},
	{src: `\d{4}年\d{1,2}月\d{1,2}日`, layouts: []string{"2006年1月2日"}},
	{src: `(\d\d)\.(\d\d)\.\d{4}`, layouts: []string{"02.01.2006", "01.02.2006"}, dm: [2]int{1, 2}},
	{src: `(\d\d)/(\d\d)/\d{4}`, layouts: []string{"01/02/2006", "02/01/2006"}, dm: [2]int{1, 2}},
	{src: `(\d\d)-(\d\d)-\d{4}`, layouts: []string{"01-02-2006", "02-01-2006"}, dm: [2]int{1, 2}},
	{src: `(\d\d)\.(\d\d)\.\d\d`, layouts: []string{"02.01.06", "01.02.06"}, dm: [2]int{1, 2}},
	{src: `(\d\d)/(\d\d)/\d\d`, layouts: []string{"01/02/06", "02/01/06"}, dm: [2]int{1, 2}},
}

func init() {
	for i := range dateForms {
		dateForms[i].re = regexp.MustCompile(`(?:^|[^\d])(` + dateForms[i].src + `)(?:$|[^\d])`)
	}
}

var ampmRE = regexp.MustCompile(`\b\d{1,2}:\d\d(?::\d\d)? ?[AaPp][Mm]\b`)

var timeRE = regexp.MustCompile(`\b\d{1,2}:\d\d(?::\d\d)?\b`)

type dateInfo struct {
	form       *dateForm
	layouts    []string // candidates, most likely first
	why        string
	timeLayout string
	sampleDate string // a line holding the date, for its regex
}

type dateLoc struct {
	start, end int
	re         string
}

// find locates a date of the sample's form in s.
func (di *dateInfo) find(s string) *dateLoc {
	if di.form == nil {
		return nil
	}
	m := di.form.re.FindStringSubmatchIndex(s)
	if m == nil {
		return nil
	}
	src := strings.NewReplacer(`(`, ``, `)`, ``).Replace(di.form.src)
	return &dateLoc{start: m[2], end: m[3], re: src}
}

// inferDates finds the date form the sample prints and which layout it is.
func inferDates(lines []string) dateInfo {
	var di dateInfo
	best, bestN := -1, 0
	for i := range dateForms {
		n := 0
		for _, l := range lines {
			if dateForms[i].re.MatchString(l) {
				n++
			}
		}
		if n > bestN {
			best, bestN = i, n
		}
	}
	secs, mins := 0, 0
	for _, l := range lines {
		for _, t := range timeRE.FindAllString(l, -1) {
			if strings.Count(t, ":") == 2 {
				secs++
			} else {
				mins++
			}
		}
	}
	switch {
	case secs > 0 && secs >= mins:
		di.timeLayout = "15:04:05"
	case mins > 0:
		di.timeLayout = "15:04"
	}
	ampm := 0
	for _, l := range lines {
		if ampmRE.MatchString(l) {
			ampm++
		}
	}
	if ampm > 0 && ampm*2 >= secs+mins {
		di.timeLayout = strings.Replace(di.timeLayout, "15", "3", 1) + " PM" // 12-hour clock
	}
	if best < 0 {
		di.why = "no date seen: set date_format and add the date to a header rule"
		di.layouts = []string{"2006-01-02"}
		return di
	}
	f := &dateForms[best]
	di.form = f
	for _, l := range lines {
		if f.re.MatchString(l) {
			di.sampleDate = l
			break
		}
	}
	if len(f.layouts) == 1 {
		di.layouts = f.layouts
		di.why = fmt.Sprintf("%d lines hold a date like %s", bestN, f.layouts[0])
		return di
	}
	firstBig, secondBig := false, false
	for _, l := range lines {
		m := f.re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		a, _ := strconv.Atoi(m[1+f.dm[0]])
		b, _ := strconv.Atoi(m[1+f.dm[1]])
		firstBig = firstBig || a > 12
		secondBig = secondBig || b > 12
	}
	// layouts[0] is month first for "/" and "-", day first for "."
	monthFirst, dayFirst := f.layouts[0], f.layouts[1]
	if strings.Contains(f.src, `\.`) {
		dayFirst, monthFirst = f.layouts[0], f.layouts[1]
	}
	switch {
	case firstBig && !secondBig:
		di.layouts = []string{dayFirst}
		di.why = "a first field above 12: day first"
	case secondBig && !firstBig:
		di.layouts = []string{monthFirst}
		di.why = "a second field above 12: month first"
	default:
		di.layouts = []string{f.layouts[0], f.layouts[1]}
		di.why = "day and month cannot be told apart in the sample (no field above 12): " + f.layouts[0] + " guessed — check with a date after the 12th"
	}
	return di
}
