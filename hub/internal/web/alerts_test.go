package web

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAlerts stands in for the alerts engine's store until it is merged: it keeps alerts in
// memory and filters them as store.DB.Alerts does, and records the filters it was asked.
type fakeAlerts struct {
	mu      sync.Mutex
	alerts  []Alert // oldest first
	filters []AlertFilter
}

func (f *fakeAlerts) Alerts(_ context.Context, af AlertFilter) ([]Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, af)
	var out []Alert
	for _, a := range slices.Backward(f.alerts) {
		if (af.State == "" || a.State == af.State) && (af.Store == "" || a.Store == af.Store) &&
			(af.Stores == nil || slices.Contains(af.Stores, a.Store)) && (af.BeforeID == 0 || a.ID < af.BeforeID) && len(out) < max(af.Limit, 1) {
			out = append(out, a)
		}
	}
	return out, nil
}

func TestAlertsPage(t *testing.T) {
	since := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	fa := &fakeAlerts{alerts: []Alert{
		{ID: 1, Kind: "store_offline", State: alertCleared, Store: "S002", Since: since, ClearedAt: since.Add(20 * time.Minute),
			Detail: "no status for 16m", Threshold: "15m inside trading hours"},
		{ID: 2, Kind: "terminal_silent", State: alertOpen, Store: "S001", Terminal: "T1", Since: since.Add(time.Hour),
			Detail: "no sale for 65m", Threshold: "60m inside trading hours"},
		{ID: 3, Kind: "backlog", State: alertOpen, Store: "S002", Since: since.Add(2 * time.Hour), Detail: "4000 records unsent", Threshold: "1000 records"},
	}}
	f := newFixture(t, Options{Alerts: fa})
	page := f.do(t, "GET", "/alerts", "", bearer(f.admin))
	open, cleared, ok := strings.Cut(page.body, "Recently cleared")
	if page.code != 200 || !ok {
		t.Fatalf("alerts page: %d %s", page.code, page.body)
	}
	for _, want := range []string{"terminal_silent", "<td>T1</td>", "2026-12-01 09:00:00Z", "no sale for 65m", "60m inside trading hours", "backlog", "1000 records"} {
		if !strings.Contains(open, want) {
			t.Errorf("open alerts lack %q", want)
		}
	}
	if strings.Contains(open, "store_offline") || !strings.Contains(cleared, "store_offline") || !strings.Contains(cleared, "2026-12-01 08:20:00Z") ||
		!strings.Contains(cleared, "15m inside trading hours") {
		t.Errorf("the cleared alert is not listed as cleared, with when and its threshold:\n%s", page.body)
	}
	if strings.Index(open, "backlog") > strings.Index(open, "terminal_silent") {
		t.Errorf("open alerts are not newest first")
	}
	// A principal limited to S001 is asked for, and shown, S001's alerts only.
	fa.filters = nil
	page = f.do(t, "GET", "/alerts", "", bearer(f.token(t, "v1", "viewer", "S001")))
	if page.code != 200 || strings.Contains(page.body, "S002") || !strings.Contains(page.body, "terminal_silent") {
		t.Fatalf("S001 viewer's alerts page: %d %s", page.code, page.body)
	}
	for _, af := range fa.filters {
		if !slices.Equal(af.Stores, []string{"S001"}) {
			t.Errorf("asked for alerts with %+v, want them limited to S001", af)
		}
	}
	// Without an alerts engine the page says so.
	g := newFixture(t, Options{})
	if r := g.do(t, "GET", "/alerts", "", bearer(g.admin)); r.code != 200 || !strings.Contains(r.body, "does not evaluate alerts") {
		t.Fatalf("alerts page without alerts: %d %s", r.code, r.body)
	}
}
