package web

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/reconcile"
	"github.com/lanebridge/lanebridge/hub/internal/store"
)

// calCell is a store-day of the close calendar.
type calCell struct {
	Date  string
	Class string // closed, differences, open, none
	Label string
	Mark  string // ✓ ✗ ○
}

// calRow is a store's line of the close calendar.
type calRow struct {
	Store string
	Cells []calCell
}

// calendarView is the data of the close calendar: a month of business days of the stores the
// principal may see.
type calendarView struct {
	Month, Prev, Next string
	Days              []string
	Rows              []calRow
}

// dayClass names a store-day's close state for the calendar.
func dayClass(d store.DayState) (class, label string) {
	switch d.Close {
	case reconcile.StateClosed:
		return "closed", "closed ok"
	case reconcile.StateExceptions:
		return "differences", "differences"
	case "":
		return "open", "open"
	}
	return "differences", d.Close
}

// calendar serves GET /calendar?month=YYYY-MM (default the current month).
func (s *Server) calendar(w http.ResponseWriter, r *http.Request) {
	now := s.now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if raw := r.URL.Query().Get("month"); raw != "" {
		m, err := time.Parse("2006-01", raw)
		if err != nil {
			s.fail(w, r, badRequest("month: use YYYY-MM"))
			return
		}
		month = m
	}
	end := month.AddDate(0, 1, -1)
	v := calendarView{Month: month.Format("2006-01"), Prev: month.AddDate(0, -1, 0).Format("2006-01"), Next: month.AddDate(0, 1, 0).Format("2006-01")}
	for d := month; !d.After(end); d = d.AddDate(0, 0, 1) {
		v.Days = append(v.Days, d.Format(time.DateOnly))
	}
	stores, err := s.listStores(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ids := make([]string, len(stores))
	for i, si := range stores {
		ids[i] = si.ID
	}
	states, err := s.st.DayStates(r.Context(), ids, v.Days[0], v.Days[len(v.Days)-1])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	known := map[[2]string]store.DayState{}
	for _, d := range states {
		known[[2]string{d.Store, d.BusinessDate}] = d
	}
	for _, id := range ids {
		row := calRow{Store: id, Cells: make([]calCell, len(v.Days))}
		for i, date := range v.Days {
			c := calCell{Date: date, Class: "none", Label: "no data"}
			if d, ok := known[[2]string{id, date}]; ok {
				c.Class, c.Label = dayClass(d)
				c.Mark = map[string]string{"closed": "✓", "differences": "✗", "open": "○"}[c.Class]
			}
			row.Cells[i] = c
		}
		v.Rows = append(v.Rows, row)
	}
	s.render(w, r, "calendar", v)
}

// cmpLine is a line of a day's three-way comparison: one tender or tax of a terminal (or of
// all terminals), its Z, captured and ERP amounts and whether they differ.
type cmpLine struct {
	What, Key     string
	Z, Captured   int64
	HasZ          bool
	ERP           *int64
	Differs       bool
	ZMinusCapture int64
}

// cmpTerminal is a terminal's part of the comparison.
type cmpTerminal struct {
	Terminal string
	Lines    []cmpLine
}

// dayView is the data of a day's page: its close result set out per terminal, tender and tax.
type dayView struct {
	Store, Date, Currency string
	Closed                bool
	Result                reconcile.Result
	Terminals             []cmpTerminal
	ERPDiffers            bool
	Day                   store.Day
}

// PageTitle names a day's page.
func (v dayView) PageTitle() string { return "Close of " + v.Store + " on " + v.Date }

// compareLines sets out a close result per terminal: every tender and tax either side has,
// then the net, each with Z − captured.
func compareLines(res reconcile.Result) []cmpTerminal {
	var out []cmpTerminal
	for _, t := range keysOf(res.Z, res.Captured) {
		z, zok := res.Z[t]
		c := res.Captured[t]
		ct := cmpTerminal{Terminal: t}
		add := func(what string, zm, cm map[string]int64) {
			for _, k := range keysOf(zm, cm) {
				ct.Lines = append(ct.Lines, cmpLine{What: what, Key: k, Z: zm[k], Captured: cm[k], HasZ: zok, Differs: !zok || zm[k] != cm[k], ZMinusCapture: zm[k] - cm[k]})
			}
		}
		add("tender", z.Tenders, c.Tenders)
		add("tax", z.Taxes, c.Taxes)
		ct.Lines = append(ct.Lines, cmpLine{What: "net", Key: "total", Z: z.Net, Captured: c.Net, HasZ: zok, Differs: !zok || z.Net != c.Net, ZMinusCapture: z.Net - c.Net})
		out = append(out, ct)
	}
	return out
}

// calendarDay serves GET /calendar/{store}/{date}: the day's three-way comparison, Z vs
// captured vs ERP per tender and per tax, differences highlighted.
func (s *Server) calendarDay(w http.ResponseWriter, r *http.Request) {
	id, date, err := s.dayParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	v := dayView{Store: id, Date: date}
	if v.Day, err = s.st.Day(ctx, id, date); err != nil {
		s.fail(w, r, err)
		return
	}
	if recs, err := s.st.Records(ctx, id, "", 0, 1); err == nil && len(recs) > 0 {
		v.Currency = recs[0].Currency // the store's currency, as its records carry it
	}
	if s.closer != nil {
		res, err := s.closer.ClosedDay(ctx, id, date)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			s.fail(w, r, err)
			return
		default:
			b, err := json.Marshal(res)
			if err == nil {
				err = json.Unmarshal(b, &v.Result)
			}
			if err != nil {
				s.fail(w, r, err)
				return
			}
			v.Closed, v.Terminals = true, compareLines(v.Result)
			v.ERPDiffers = !v.Result.ERP.Skipped && v.Result.ERP.Posted != v.Result.ERP.Captured
		}
	}
	s.render(w, r, "calendar.day", v)
}

// keysOf is the sorted union of the maps' keys.
func keysOf[V any](ms ...map[string]V) []string {
	set := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
