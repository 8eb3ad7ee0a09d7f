package alerts

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/promread"
)

// fixture is a real SQLite store with store S1, an evaluator on a settable clock and the
// events it sent.
type fixture struct {
	t      *testing.T
	st     *store.DB
	ev     *Evaluator
	now    time.Time
	events []Event
	reg    *prometheus.Registry
}

func newFixture(t *testing.T, th Thresholds, hours, zone string) *fixture {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.AddStore(context.Background(), "S1", "x"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, reg: prometheus.NewRegistry()}
	f.ev, err = New(st, Options{Thresholds: th, TradingHours: hours, TimeZone: zone, Now: func() time.Time { return f.now }, Registry: f.reg,
		Notify: func(e Event) { f.events = append(f.events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// status stores st as received at the current clock and evaluates.
func (f *fixture) status(st protocol.Status) {
	f.t.Helper()
	st.V, st.Store = protocol.Version, "S1"
	if st.State == "" {
		st.State = "online"
	}
	if err := f.st.PutStatus(context.Background(), st, f.now); err != nil {
		f.t.Fatal(err)
	}
	f.eval()
}

func (f *fixture) eval() {
	f.t.Helper()
	if err := f.ev.Evaluate(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

// want checks the events since the last call ("raised terminal_silent T1", …).
func (f *fixture) want(events ...string) {
	f.t.Helper()
	var got []string
	for _, e := range f.events {
		got = append(got, strings.TrimSpace(e.State+" "+e.Kind+" "+e.Terminal))
	}
	if strings.Join(got, ", ") != strings.Join(events, ", ") {
		f.t.Fatalf("at %s events %q, want %q", f.now.Format(time.RFC3339), got, events)
	}
	f.events = nil
}

// open reads lanebridge_hub_alerts_open{kind} from the registry.
func (f *fixture) open(kind string) float64 {
	return gauge(f.t, f.reg, "lanebridge_hub_alerts_open", kind)
}

// gauge reads a gauge or counter with one label value from a registry (-1: absent).
func gauge(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	v, err := promread.Value(reg, name, label)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTerminalSilentCountsTradingTimeOnly(t *testing.T) {
	// Berlin, 08:00-20:00; a 60m threshold.
	f := newFixture(t, Thresholds{TerminalSilent: time.Hour}, "Mon-Sun 08:00-20:00", "Europe/Berlin")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	last := time.Date(2026, 12, 1, 19, 30, 0, 0, berlin)
	f.now = last.Add(10 * time.Hour) // 05:30 next day: 30m of trading since the last sale
	f.status(protocol.Status{LastCapture: map[string]time.Time{"T1": last}})
	f.want()
	f.now = time.Date(2026, 12, 2, 8, 29, 0, 0, berlin) // 59m of trading
	f.eval()
	f.want()
	f.now = f.now.Add(time.Minute) // 60m
	f.eval()
	f.want("raised terminal_silent T1")
	if f.open(TerminalSilent) != 1 {
		t.Fatalf("lanebridge_hub_alerts_open{kind=terminal_silent} = %v, want 1", f.open(TerminalSilent))
	}
	list, _ := f.st.Alerts(context.Background(), store.AlertFilter{State: store.AlertOpen})
	if len(list) != 1 || !list[0].Since.Equal(last) || list[0].Threshold != "1h inside trading hours" || !strings.Contains(list[0].Detail, "1h of trading time") {
		t.Fatalf("open alerts %+v", list)
	}
	f.eval() // still silent: no second raise
	f.want()
	// A sale: the status reports it and the alert clears.
	f.now = f.now.Add(time.Minute)
	f.status(protocol.Status{LastCapture: map[string]time.Time{"T1": f.now}})
	f.want("cleared terminal_silent T1")
	if f.open(TerminalSilent) != 0 {
		t.Fatal("gauge still counts the cleared alert")
	}
	// A terminal no longer reported clears too.
	f.now = f.now.Add(2 * time.Hour)
	f.eval()
	f.want("raised terminal_silent T1")
	f.status(protocol.Status{LastCapture: map[string]time.Time{"T2": f.now}})
	f.want("cleared terminal_silent T1")
}

func TestHysteresisAndOfflineHold(t *testing.T) {
	f := newFixture(t, Thresholds{StoreOffline: 15 * time.Minute, BacklogAge: 30 * time.Minute, SpoolUsed: 80,
		ClockSkew: 5 * time.Minute}, "", "UTC")
	f.now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	backlog := func(d time.Duration) protocol.Status {
		return protocol.Status{Clock: f.now, Backlog: 7, OldestUnsentAge: d.Seconds()}
	}
	f.status(backlog(29 * time.Minute))
	f.want()
	f.status(backlog(30 * time.Minute))
	f.want("raised backlog_age")
	f.status(backlog(25 * time.Minute)) // below the threshold, above 80 % of it: stays
	f.want()
	f.status(backlog(23 * time.Minute))
	f.want("cleared backlog_age")

	f.status(protocol.Status{Clock: f.now, SpoolUsedBytes: 81, SpoolMaxBytes: 100})
	f.want("raised spool_used")
	f.status(protocol.Status{Clock: f.now, SpoolUsedBytes: 70, SpoolMaxBytes: 100})
	f.want()
	f.status(protocol.Status{Clock: f.now, SpoolUsedBytes: 10}) // an older agent: no limit reported
	f.want("cleared spool_used")

	f.status(protocol.Status{Clock: f.now.Add(-6 * time.Minute)})
	f.want("raised clock_skew")
	// The Will: offline from now. Other alerts are held, not cleared from a stale status.
	f.status(protocol.Status{State: "offline"})
	f.want()
	f.now = f.now.Add(15 * time.Minute)
	f.eval()
	f.want("raised store_offline")
	if f.open(ClockSkew) != 1 || f.open(StoreOffline) != 1 {
		t.Fatal("gauges do not count the open alerts")
	}
	f.status(protocol.Status{Clock: f.now})
	f.want("cleared store_offline", "cleared clock_skew")
	// No status for the threshold: offline although the last one said online.
	f.now = f.now.Add(15 * time.Minute)
	f.eval()
	f.want("raised store_offline")
	// Disabling the store clears what it had open.
	if err := f.st.SetStoreState(context.Background(), "S1", store.StoreDisabled); err != nil {
		t.Fatal(err)
	}
	f.eval()
	f.want("cleared store_offline")
}

func TestInventoryLag(t *testing.T) {
	f := newFixture(t, Thresholds{InventoryLag: time.Hour}, "", "UTC")
	ctx := context.Background()
	if err := f.st.SaveInventory(ctx, "S1", 0, store.InventoryState{Version: 3}, nil, nil); err != nil {
		t.Fatal(err)
	}
	f.now = time.Now().Add(59 * time.Minute)
	f.status(protocol.Status{InventoryVersion: 2})
	f.want()
	f.now = f.now.Add(2 * time.Minute)
	f.eval()
	f.want("raised inventory_lag")
	f.status(protocol.Status{InventoryVersion: 3})
	f.want("cleared inventory_lag")
}

func TestEventText(t *testing.T) {
	f := newFixture(t, Thresholds{BacklogAge: time.Minute}, "", "UTC")
	f.now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.status(protocol.Status{Backlog: 3, OldestUnsentAge: 120})
	e := f.events[0]
	if e.State != "raised" || e.Store != "S1" || !e.Since.Equal(f.now.Add(-2*time.Minute)) ||
		e.Text != "Lanebridge alert raised: backlog age store S1 (oldest unsent record over 1m): 3 records not yet at the hub, the oldest 2m old" {
		t.Fatalf("event %+v", e)
	}
}

func TestBadDefaultSchedule(t *testing.T) {
	if _, err := New(nil, Options{TradingHours: "Mon 9-5"}); err == nil {
		t.Fatal("a bad default schedule was accepted")
	}
}

// Attack: an agent reports ever new terminal names, all long silent. The store's open
// terminal_silent alerts never exceed MaxTerminalAlerts.
func TestTerminalFloodIsBounded(t *testing.T) {
	f := newFixture(t, Thresholds{TerminalSilent: time.Minute}, "Mon-Sun 00:00-24:00", "UTC")
	f.now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for round := range 3 {
		lc := map[string]time.Time{}
		for i := range protocol.MaxStatusList {
			lc[fmt.Sprintf("R%dT%03d", round, i)] = f.now.Add(-time.Hour)
		}
		f.status(protocol.Status{LastCapture: lc})
		list, err := f.st.Alerts(context.Background(), store.AlertFilter{State: store.AlertOpen})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > MaxTerminalAlerts || f.open(TerminalSilent) > MaxTerminalAlerts {
			t.Fatalf("round %d: %d open alerts (gauge %v), want at most %d", round, len(list), f.open(TerminalSilent), MaxTerminalAlerts)
		}
		f.now = f.now.Add(time.Second)
	}
	if f.open(TerminalSilent) == 0 {
		t.Fatal("no terminal_silent alert at all")
	}
}

// A hub that was down longer than store_offline_after raises nothing at its start: the agents
// get that long to report again.
func TestNoOfflineFloodAfterHubRestart(t *testing.T) {
	f := newFixture(t, Thresholds{StoreOffline: 15 * time.Minute}, "", "UTC")
	f.now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.status(protocol.Status{})
	f.now = f.now.Add(2 * time.Hour) // the hub restarts two hours later
	ev, err := New(f.st, Options{Thresholds: f.ev.o.Thresholds, Now: func() time.Time { return f.now },
		Notify: func(e Event) { f.events = append(f.events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	f.ev = ev
	f.eval()
	f.want()
	f.now = f.now.Add(15 * time.Minute) // still nothing from the agent
	f.eval()
	f.want("raised store_offline")
}

// Cleared alerts are kept for Keep, then deleted.
func TestClearedAlertsPruned(t *testing.T) {
	f := newFixture(t, Thresholds{BacklogAge: time.Minute}, "", "UTC")
	f.now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.status(protocol.Status{OldestUnsentAge: 120})
	f.status(protocol.Status{})
	f.want("raised backlog_age", "cleared backlog_age")
	count := func() int {
		l, err := f.st.Alerts(context.Background(), store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	f.now = f.now.Add(Keep - time.Minute)
	f.eval()
	if count() != 1 {
		t.Fatal("a cleared alert younger than Keep was pruned")
	}
	f.now = f.now.Add(2 * time.Hour)
	f.eval()
	if count() != 0 {
		t.Fatal("a cleared alert older than Keep is still there")
	}
}
