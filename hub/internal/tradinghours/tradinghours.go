// Package tradinghours reads a store's trading hours ("Mon-Sun 08:00-22:00") in its IANA time
// zone and answers when it trades, which business date an instant belongs to and how much
// trading time lies between two instants.
//
// A spec is a comma-separated list of clauses "DAYS HH:MM-HH:MM" or "DAYS closed". DAYS is a
// day (Mon … Sun) or a range of days (Mon-Fri; Fri-Mon wraps over the weekend). Later clauses
// override earlier ones for the days they name; days named by no clause are closed. The end
// may be 24:00. An end at or before the start is an overnight range (Fri 22:00-02:00): it ends
// on the next calendar day and belongs to the business day it started on. Times are wall-clock
// times of the zone, so a day with a DST change trades an hour more or less when the change
// falls inside its range.
package tradinghours

import (
	"errors"
	"fmt"
	"strings"
	"time"

	_ "time/tzdata" // zones on hosts without zoneinfo (Windows, minimal containers)
)

// Default is the spec of a store without its own (alerts.trading_hours's default).
const Default = "Mon-Sun 08:00-22:00"

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// span is one day's trading: minutes after that day's midnight; open == close: closed.
type span struct{ open, close int }

func (s span) closed() bool { return s.open == s.close }

// Schedule is a parsed spec in a zone.
type Schedule struct {
	days [7]span // by time.Weekday
	loc  *time.Location
	spec string
}

// New parses spec ("" is Default) in zone, an IANA name ("" is the hub's local zone).
// Errors say what is wrong and how a valid value looks.
func New(spec, zone string) (*Schedule, error) {
	loc := time.Local
	if zone != "" {
		l, err := time.LoadLocation(zone)
		if err != nil || zone == "Local" {
			return nil, fmt.Errorf("time zone %q is not an IANA zone name (e.g. Europe/Berlin, America/New_York, UTC)", zone)
		}
		loc = l
	}
	if strings.TrimSpace(spec) == "" {
		spec = Default
	}
	s := &Schedule{loc: loc, spec: spec}
	for _, clause := range strings.Split(spec, ",") {
		if err := s.clause(strings.Fields(clause)); err != nil {
			return nil, fmt.Errorf("trading hours %q: %w (e.g. %q or %q)", spec, err,
				Default, "Mon-Fri 08:00-20:00, Sat 09:00-18:00, Sun closed")
		}
	}
	return s, nil
}

// MustNew is New for specs known to be valid; it panics on an error.
func MustNew(spec, zone string) *Schedule {
	s, err := New(spec, zone)
	if err != nil {
		panic(err)
	}
	return s
}

func (s *Schedule) clause(f []string) error {
	if len(f) != 2 {
		return fmt.Errorf("clause %q is not DAYS HH:MM-HH:MM or DAYS closed", strings.Join(f, " "))
	}
	from, to, err := dayRange(f[0])
	if err != nil {
		return err
	}
	var sp span
	if !strings.EqualFold(f[1], "closed") {
		o, c, ok := strings.Cut(f[1], "-")
		if sp.open, err = clock(o, false); ok && err == nil {
			sp.close, err = clock(c, true)
		}
		if !ok || err != nil {
			return fmt.Errorf("%q is not HH:MM-HH:MM", f[1])
		}
		if sp.close <= sp.open {
			sp.close += 24 * 60 // overnight
		}
		if sp.close-sp.open > 24*60 || sp.close == sp.open {
			return fmt.Errorf("%q is longer than a day", f[1])
		}
	}
	for d := from; ; d = (d + 1) % 7 {
		s.days[d] = sp
		if d == to {
			return nil
		}
	}
}

func dayRange(v string) (from, to int, err error) {
	a, b, isRange := strings.Cut(v, "-")
	if from, err = day(a); err == nil {
		to = from
		if isRange {
			to, err = day(b)
		}
	}
	return from, to, err
}

func day(v string) (int, error) {
	for i, n := range dayNames {
		if strings.EqualFold(v, n) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q is not a day (Mon Tue Wed Thu Fri Sat Sun)", v)
}

func clock(v string, end bool) (int, error) {
	if end && v == "24:00" {
		return 24 * 60, nil
	}
	t, err := time.Parse("15:04", v)
	if err != nil || len(v) != 5 {
		return 0, errors.New("bad time")
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Location is the schedule's zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// String is the spec and zone, as given.
func (s *Schedule) String() string { return s.spec + " (" + s.loc.String() + ")" }

// window is the trading of the calendar day d (midnight in the zone) as instants; ok false when
// the day is closed.
func (s *Schedule) window(d time.Time) (open, close time.Time, ok bool) {
	sp := s.days[d.Weekday()]
	if sp.closed() {
		return time.Time{}, time.Time{}, false
	}
	at := func(m int) time.Time { return time.Date(d.Year(), d.Month(), d.Day(), 0, m, 0, 0, s.loc) }
	return at(sp.open), at(sp.close), true
}

// midnight is the start of t's calendar day in the zone, moved by days.
func (s *Schedule) midnight(t time.Time, days int) time.Time {
	t = t.In(s.loc)
	return time.Date(t.Year(), t.Month(), t.Day()+days, 0, 0, 0, 0, s.loc)
}

// Trading reports whether the store trades at t.
func (s *Schedule) Trading(t time.Time) bool {
	_, ok := s.tradingDay(t)
	return ok
}

// tradingDay is the calendar day whose trading holds t (yesterday's for an overnight range).
func (s *Schedule) tradingDay(t time.Time) (time.Time, bool) {
	for _, back := range []int{0, -1} {
		d := s.midnight(t, back)
		if o, c, ok := s.window(d); ok && !t.Before(o) && t.Before(c) {
			return d, true
		}
	}
	return time.Time{}, false
}

// BusinessDate is the business date (YYYY-MM-DD) t belongs to: the calendar date in the zone,
// except that the hours after midnight of an overnight range belong to the day before.
func (s *Schedule) BusinessDate(t time.Time) string {
	d, ok := s.tradingDay(t)
	if !ok {
		d = s.midnight(t, 0)
	}
	return d.Format(time.DateOnly)
}

// TradingBetween is how much of [from, to) the store trades.
func (s *Schedule) TradingBetween(from, to time.Time) time.Duration {
	var sum time.Duration
	for d := s.midnight(from, -1); d.Before(to); d = s.midnight(d, 1) {
		o, c, ok := s.window(d)
		if !ok {
			continue
		}
		if o.Before(from) {
			o = from
		}
		if c.After(to) {
			c = to
		}
		if c.After(o) {
			sum += c.Sub(o)
		}
	}
	return sum
}

// StillTrading reports whether the business date (YYYY-MM-DD) is still trading at now: it is
// after now's business date, or it is now's and its trading has not ended. An unparseable date
// is not trading.
func (s *Schedule) StillTrading(date string, now time.Time) bool {
	d, err := time.ParseInLocation(time.DateOnly, date, s.loc)
	today := s.BusinessDate(now)
	switch {
	case err != nil || date < today:
		return false
	case date > today:
		return true
	}
	_, c, ok := s.window(d)
	return ok && now.Before(c)
}
