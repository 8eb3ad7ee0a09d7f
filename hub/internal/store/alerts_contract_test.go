package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// runAlertContract: store schedules, one open alert per subject, clear, history and paging.
func runAlertContract(t *testing.T, open func(t *testing.T) *DB) {
	ctx := context.Background()
	s := open(t)
	mustAddStore(t, s, "s1")
	mustAddStore(t, s, "s2")

	if err := s.SetStoreSchedule(ctx, "s1", "Mon-Fri 08:00-20:00", "Europe/Berlin"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStoreSchedule(ctx, "nope", "", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("schedule of an unknown store: %v, want ErrNotFound", err)
	}
	if si, err := s.GetStore(ctx, "s1"); err != nil || si.TradingHours != "Mon-Fri 08:00-20:00" || si.TimeZone != "Europe/Berlin" {
		t.Fatalf("store after SetStoreSchedule: %+v, %v", si, err)
	}
	if si, _ := s.GetStore(ctx, "s2"); si.TradingHours != "" || si.TimeZone != "" {
		t.Fatalf("store without a schedule: %+v", si)
	}

	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a := Alert{Kind: "terminal_silent", Store: "s1", Terminal: "T1", Since: since, Detail: "no sale for 61m", Threshold: "60m inside trading hours"}
	// Raisers racing on the same subject open it once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	opened := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.RaiseAlert(ctx, a)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			opened += map[bool]int{true: 1}[ok]
			mu.Unlock()
		}()
	}
	wg.Wait()
	a.Detail = "no sale for 70m"
	if ok, err := s.RaiseAlert(ctx, a); ok || err != nil || opened != 1 {
		t.Fatalf("raises of an open alert: opened %d times, last %v, %v; want once", opened, ok, err)
	}
	list, err := s.Alerts(ctx, AlertFilter{State: AlertOpen})
	if err != nil || len(list) != 1 || list[0].Detail != "no sale for 70m" || !list[0].Since.Equal(since) || list[0].Threshold != a.Threshold {
		t.Fatalf("open alerts: %+v, %v; want one with the newest detail and the first since", list, err)
	}
	clearedAt := since.Add(time.Hour)
	got, ok, err := s.ClearAlert(ctx, a.Kind, "s1", "T1", clearedAt)
	if err != nil || !ok || got.State != AlertCleared || !got.ClearedAt.Equal(clearedAt) || got.ID != list[0].ID {
		t.Fatalf("clear: %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := s.ClearAlert(ctx, a.Kind, "s1", "T1", clearedAt); ok || err != nil {
		t.Fatalf("clear of a cleared alert: %v, %v; want nothing cleared", ok, err)
	}
	// Raised again: a new alert; the cleared one stays as history.
	if ok, err := s.RaiseAlert(ctx, a); !ok || err != nil {
		t.Fatalf("raise after clear: %v, %v; want a new alert", ok, err)
	}
	if _, err := s.RaiseAlert(ctx, Alert{Kind: "store_offline", Store: "s2", Since: since}); err != nil {
		t.Fatal(err)
	}
	all, _ := s.Alerts(ctx, AlertFilter{})
	if len(all) != 3 || all[0].Store != "s2" || all[2].State != AlertCleared {
		t.Fatalf("all alerts: %+v; want 3 newest first", all)
	}
	if l, _ := s.Alerts(ctx, AlertFilter{State: AlertCleared}); len(l) != 1 {
		t.Fatalf("cleared alerts: %+v", l)
	}
	if l, _ := s.Alerts(ctx, AlertFilter{Stores: []string{"s1"}}); len(l) != 2 || l[0].Store != "s1" {
		t.Fatalf("alerts scoped to s1: %+v", l)
	}
	if l, _ := s.Alerts(ctx, AlertFilter{Stores: []string{}}); len(l) != 0 {
		t.Fatalf("alerts scoped to no store: %+v", l)
	}
	page, _ := s.Alerts(ctx, AlertFilter{Limit: 2})
	rest, _ := s.Alerts(ctx, AlertFilter{Limit: 2, BeforeID: page[1].ID})
	if len(page) != 2 || len(rest) != 1 || rest[0].ID != all[2].ID {
		t.Fatalf("pages: %+v then %+v", page, rest)
	}
}

func TestSQLiteAlertContract(t *testing.T) {
	runAlertContract(t, func(t *testing.T) *DB { return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")) })
}

func TestPostgresAlertContract(t *testing.T) {
	runAlertContract(t, func(t *testing.T) *DB { return openPostgresT(t, pgSchema(t)) })
}
