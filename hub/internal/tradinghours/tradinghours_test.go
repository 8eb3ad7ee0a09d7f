package tradinghours

import (
	"strings"
	"testing"
	"time"
)

func at(t *testing.T, zone, v string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := time.ParseInLocation("2006-01-02 15:04", v, loc)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ spec, zone, want string }{
		{"Mon-Sun", "", "is not DAYS HH:MM-HH:MM"},
		{"Mon-Fun 08:00-20:00", "", `"Fun" is not a day`},
		{"Mon 8-20", "", `"8-20" is not HH:MM-HH:MM`},
		{"Mon 08:00-25:00", "", "is not HH:MM-HH:MM"},
		{"Mon 24:00-02:00", "", "is not HH:MM-HH:MM"},
		{"Mon 08:00-20:00,", "", "is not DAYS"},
		{Default, "Mars/Olympus", "not an IANA zone name"},
		{Default, "Local", "not an IANA zone name"},
	} {
		_, err := New(tc.spec, tc.zone)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %q) = %v, want error containing %q", tc.spec, tc.zone, err, tc.want)
		}
	}
}

func TestTradingAndBusinessDate(t *testing.T) {
	const week = "Mon-Fri 08:00-20:00, Sat 09:00-18:00, Sun closed, Fri 10:00-02:00"
	for _, tc := range []struct {
		spec, zone, at string
		trading        bool
		date           string
	}{
		{"", "UTC", "2026-12-01 07:59", false, "2026-12-01"},
		{"", "UTC", "2026-12-01 08:00", true, "2026-12-01"},
		{"", "UTC", "2026-12-01 21:59", true, "2026-12-01"},
		{"", "UTC", "2026-12-01 22:00", false, "2026-12-01"},
		{week, "Europe/Berlin", "2026-12-05 09:30", true, "2026-12-05"}, // Saturday
		{week, "Europe/Berlin", "2026-12-05 18:00", false, "2026-12-05"},
		{week, "Europe/Berlin", "2026-12-06 12:00", false, "2026-12-06"}, // Sunday closed
		{week, "Europe/Berlin", "2026-12-04 09:00", false, "2026-12-04"}, // Friday overridden to 10:00
		{week, "Europe/Berlin", "2026-12-04 23:00", true, "2026-12-04"},
		{week, "Europe/Berlin", "2026-12-05 01:59", true, "2026-12-04"}, // Friday's overnight
		{week, "Europe/Berlin", "2026-12-05 02:00", false, "2026-12-05"},
		{"Sat-Mon 10:00-12:00", "UTC", "2026-12-07 11:00", true, "2026-12-07"}, // wraps: Monday
		{"Sat-Mon 10:00-12:00", "UTC", "2026-12-08 11:00", false, "2026-12-08"},
		{"Mon-Sun 00:00-24:00", "America/New_York", "2026-03-08 02:30", true, "2026-03-08"},
	} {
		s := MustNew(tc.spec, tc.zone)
		ts := at(t, tc.zone, tc.at)
		if got := s.Trading(ts); got != tc.trading {
			t.Errorf("%q Trading(%s) = %v, want %v", tc.spec, tc.at, got, tc.trading)
		}
		if got := s.BusinessDate(ts.UTC()); got != tc.date {
			t.Errorf("%q BusinessDate(%s) = %s, want %s", tc.spec, tc.at, got, tc.date)
		}
	}
}

func TestTradingBetweenAcrossDST(t *testing.T) {
	for _, tc := range []struct {
		name, spec, zone, from, to string
		want                       time.Duration
	}{
		{"plain day", "", "UTC", "2026-12-01 00:00", "2026-12-02 00:00", 14 * time.Hour},
		{"inside", "", "UTC", "2026-12-01 21:00", "2026-12-02 09:00", 2 * time.Hour},
		{"closed night only", "", "UTC", "2026-12-01 22:00", "2026-12-02 08:00", 0},
		{"berlin spring forward, all day", "Mon-Sun 00:00-24:00", "Europe/Berlin", "2026-03-29 00:00", "2026-03-30 00:00", 23 * time.Hour},
		{"berlin fall back, all day", "Mon-Sun 00:00-24:00", "Europe/Berlin", "2026-10-25 00:00", "2026-10-26 00:00", 25 * time.Hour},
		{"berlin fall back, shop hours", "", "Europe/Berlin", "2026-10-25 00:00", "2026-10-26 00:00", 14 * time.Hour},
		{"new york spring forward overnight", "Mon-Sun 22:00-06:00", "America/New_York", "2026-03-07 21:00", "2026-03-08 07:00", 7 * time.Hour},
		{"new york fall back overnight", "Mon-Sun 22:00-06:00", "America/New_York", "2026-10-31 21:00", "2026-11-01 07:00", 9 * time.Hour},
		{"week", "Mon-Fri 08:00-20:00, Sat 09:00-18:00, Sun closed", "UTC", "2026-11-30 00:00", "2026-12-07 00:00", 5*12*time.Hour + 9*time.Hour},
		{"reversed", "", "UTC", "2026-12-02 00:00", "2026-12-01 00:00", 0},
	} {
		s := MustNew(tc.spec, tc.zone)
		if got := s.TradingBetween(at(t, tc.zone, tc.from), at(t, tc.zone, tc.to)); got != tc.want {
			t.Errorf("%s: TradingBetween = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStillTrading(t *testing.T) {
	s := MustNew("Mon-Sun 08:00-22:00", "America/New_York")
	now := at(t, "America/New_York", "2026-12-01 21:00") // 02:00 UTC on the 2nd
	for date, want := range map[string]bool{"2026-11-30": false, "2026-12-01": true, "2026-12-02": true, "bad": false} {
		if got := s.StillTrading(date, now.UTC()); got != want {
			t.Errorf("StillTrading(%s) = %v, want %v", date, got, want)
		}
	}
	if s.StillTrading("2026-12-01", now.Add(time.Hour)) {
		t.Error("the day is still trading after its trading end")
	}
}
