// Package alerts watches the fleet: from each store's latest agent status it raises and clears
// alerts (store_offline, terminal_silent, backlog_age, spool_used, clock_skew, inventory_lag),
// keeps them in the store, exports how many are open per kind and sends each raise and clear
// to a webhook.
//
// An alert is raised when its measure reaches the threshold and cleared only when it falls
// below ClearRatio (80 %) of it, so a measure hovering at the threshold does not flap. A
// store that is offline (its Will, or no status for store_offline_after) keeps its other
// alerts as they are: they are neither raised nor cleared from a status that is not current.
// Stores never seen, disabled or removed raise nothing; an open alert whose subject is gone
// (a removed store, a terminal no longer reported, a threshold turned off) is cleared.
package alerts

import (
	"cmp"
	"context"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/hub/internal/tradinghours"
	"github.com/lanebridge/lanebridge/protocol"
)

// Alert kinds.
const (
	StoreOffline   = "store_offline"
	TerminalSilent = "terminal_silent"
	BacklogAge     = "backlog_age"
	SpoolUsed      = "spool_used"
	ClockSkew      = "clock_skew"
	InventoryLag   = "inventory_lag"
)

// InventoryDrift is raised and cleared by package availability (a channel shows another
// figure than the truth for too long), not by the Evaluator, which leaves it alone.
const InventoryDrift = "inventory_drift"

// Kinds are every alert kind the Evaluator measures.
var Kinds = []string{StoreOffline, TerminalSilent, BacklogAge, SpoolUsed, ClockSkew, InventoryLag}

// MaxTerminalAlerts bounds the open terminal_silent alerts of one store: an agent reporting
// ever new terminal names cannot open more (they are logged instead).
const MaxTerminalAlerts = 50

// ClearRatio is the share of its threshold a measure must fall below to clear an alert.
const ClearRatio = 0.8

// Thresholds raise the alerts; zero turns a kind off.
type Thresholds struct {
	StoreOffline   time.Duration // no status, or an offline one, for this long
	TerminalSilent time.Duration // no capture for this much trading time
	BacklogAge     time.Duration // the oldest unsent record is this old
	SpoolUsed      float64       // percent of spool.max_size used
	ClockSkew      time.Duration // agent clock off the hub's by this much
	InventoryLag   time.Duration // the agent holds an older inventory than one saved this long ago
}

// Store is what the evaluator reads and changes.
type Store interface {
	ListStores(ctx context.Context) ([]store.StoreInfo, error)
	InventoryVersions(ctx context.Context) (map[string]store.InventoryState, error)
	Alerts(ctx context.Context, f store.AlertFilter) ([]store.Alert, error)
	// RaiseAlert reports whether it opened the alert (false: it was open).
	RaiseAlert(ctx context.Context, a store.Alert) (bool, error)
	// ClearAlert reports whether an open alert was cleared.
	ClearAlert(ctx context.Context, kind, store, terminal string, at time.Time) (store.Alert, bool, error)
	// PruneAlerts deletes alerts cleared before before.
	PruneAlerts(ctx context.Context, before time.Time) (int64, error)
}

// Keep is how long cleared alerts are kept; older ones are deleted (hourly).
const Keep = 90 * 24 * time.Hour

// Options configure an Evaluator.
type Options struct {
	Thresholds
	// Every is the interval between evaluations (default 15s); a status also triggers one, at
	// most one a second.
	Every time.Duration
	// TradingHours and TimeZone are the defaults of stores without their own.
	TradingHours, TimeZone string
	// Notify is called with each raise and clear (e.g. Webhook.Send); it must not block.
	Notify   func(Event)
	Now      func() time.Time // nil: time.Now
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Event is a raise or clear, as the webhook sends it.
type Event struct {
	Kind     string    `json:"kind"`
	State    string    `json:"state"` // "raised" or "cleared"
	Store    string    `json:"store"`
	Terminal string    `json:"terminal"`
	Since    time.Time `json:"since"`
	Detail   string    `json:"detail"`
	// Text is a one-line sentence for people (chat webhooks show it as it is).
	Text string `json:"text"`
}

// Evaluator raises and clears alerts.
type Evaluator struct {
	st   Store
	o    Options
	wake chan struct{}
	open *prometheus.GaugeVec
	mu   sync.Mutex // one evaluation at a time
	// started: statuses stored before it (the hub was down) count as received then, so a
	// restart raises no store_offline before the agents had a chance to report again.
	started time.Time
	pruned  time.Time // the last prune of cleared alerts
}

// New returns an evaluator; Run runs it. The default schedule must be valid (config checks it).
func New(st Store, o Options) (*Evaluator, error) {
	if _, err := tradinghours.New(o.TradingHours, o.TimeZone); err != nil {
		return nil, err
	}
	if o.Every <= 0 {
		o.Every = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Notify == nil {
		o.Notify = func(Event) {}
	}
	e := &Evaluator{st: st, o: o, wake: make(chan struct{}, 1), started: o.Now(),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lanebridge_hub_alerts_open",
			Help: "Open alerts by kind."}, []string{"kind"})}
	for _, k := range Kinds {
		e.open.WithLabelValues(k)
	}
	if o.Registry != nil {
		o.Registry.MustRegister(e.open)
	}
	return e, nil
}

// OnStatus asks for an evaluation soon; it never blocks (ingest calls it).
func (e *Evaluator) OnStatus(protocol.Status) {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run evaluates every Options.Every and after statuses until ctx ends.
func (e *Evaluator) Run(ctx context.Context) error {
	t := time.NewTicker(e.o.Every)
	defer t.Stop()
	for {
		if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.o.Logger.Warn("alert evaluation failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-e.wake:
			select { // statuses arrive in bursts: at most one evaluation a second for them
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}

type subject struct{ kind, store, terminal string }

// finding is one measured condition: over raises, under clears, between keeps.
type finding struct {
	subject
	over, under bool
	since       time.Time
	detail      string
	threshold   string
}

// Evaluate runs one evaluation now.
func (e *Evaluator) Evaluate(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.o.Now()
	if now.Sub(e.pruned) >= time.Hour {
		n, err := e.st.PruneAlerts(ctx, now.Add(-Keep))
		if err != nil {
			return err
		}
		e.pruned = now
		if n > 0 {
			e.o.Logger.Info("pruned cleared alerts", "alerts", n, "cleared_before", now.Add(-Keep))
		}
	}
	stores, err := e.st.ListStores(ctx)
	if err != nil {
		return err
	}
	var inv map[string]store.InventoryState
	if e.o.InventoryLag > 0 {
		if inv, err = e.st.InventoryVersions(ctx); err != nil {
			return err
		}
	}
	openList, err := e.st.Alerts(ctx, store.AlertFilter{State: store.AlertOpen, Limit: 1 << 30})
	if err != nil {
		return err
	}
	open := map[subject]store.Alert{}
	for _, a := range openList {
		if slices.Contains(Kinds, a.Kind) { // others have their own evaluators
			open[subject{a.Kind, a.Store, a.Terminal}] = a
		}
	}
	kept := map[subject]bool{} // measured, or held while the store is offline
	silent := map[string]int{} // open terminal_silent alerts per store
	for s := range open {
		if s.kind == TerminalSilent {
			silent[s.store]++
		}
	}
	for _, si := range stores {
		fs, held := e.measure(si, inv[si.ID], now)
		if held {
			for s := range open {
				if s.store == si.ID {
					kept[s] = true
				}
			}
		}
		for _, f := range fs {
			kept[f.subject] = true
			_, isOpen := open[f.subject]
			switch {
			case f.over && !isOpen && f.kind == TerminalSilent && silent[f.store] >= MaxTerminalAlerts:
				e.o.Logger.Warn("terminal_silent alert not raised: the store has too many open", "store", f.store,
					"terminal", f.terminal, "open", silent[f.store], "detail", f.detail)
			case f.over:
				opened, err := e.st.RaiseAlert(ctx, store.Alert{Kind: f.kind, Store: f.store, Terminal: f.terminal,
					Since: f.since, Detail: f.detail, Threshold: f.threshold, LastEvaluated: now})
				if err != nil {
					return err
				}
				if opened && f.kind == TerminalSilent {
					silent[f.store]++
				}
				if opened {
					e.notify(store.Alert{Kind: f.kind, Store: f.store, Terminal: f.terminal, Since: f.since, Detail: f.detail, Threshold: f.threshold}, "raised")
				}
				open[f.subject] = store.Alert{}
			case f.under && isOpen:
				if err := e.clear(ctx, f.subject, now, f.detail); err != nil {
					return err
				}
				delete(open, f.subject)
			}
		}
	}
	for s := range open {
		if !kept[s] {
			if err := e.clear(ctx, s, now, "no longer measured (store removed or disabled, terminal gone, or threshold turned off)"); err != nil {
				return err
			}
			delete(open, s)
		}
	}
	counts := map[string]int{}
	for s := range open {
		counts[s.kind]++
	}
	for _, k := range Kinds {
		e.open.WithLabelValues(k).Set(float64(counts[k]))
	}
	return nil
}

func (e *Evaluator) clear(ctx context.Context, s subject, now time.Time, why string) error {
	a, ok, err := e.st.ClearAlert(ctx, s.kind, s.store, s.terminal, now)
	if ok {
		a.Detail = why
		e.notify(a, "cleared")
	}
	return err
}

func (e *Evaluator) notify(a store.Alert, state string) {
	who := "store " + a.Store
	if a.Terminal != "" {
		who = "terminal " + a.Terminal + " of store " + a.Store
	}
	text := fmt.Sprintf("Lanebridge alert %s: %s %s (%s): %s", state, strings.ReplaceAll(a.Kind, "_", " "), who, a.Threshold, a.Detail)
	if state == "cleared" {
		text = fmt.Sprintf("Lanebridge alert cleared: %s %s, raised %s: %s", strings.ReplaceAll(a.Kind, "_", " "), who,
			a.Since.UTC().Format(time.RFC3339), a.Detail)
	}
	e.o.Logger.Info("alert "+state, "kind", a.Kind, "store", a.Store, "terminal", a.Terminal, "detail", a.Detail)
	e.o.Notify(Event{Kind: a.Kind, State: state, Store: a.Store, Terminal: a.Terminal, Since: a.Since.UTC(),
		Detail: a.Detail, Text: strings.Join(strings.Fields(text), " ")})
}

// schedule is the store's trading hours in its zone, each falling back to the default.
func (e *Evaluator) schedule(si store.StoreInfo) *tradinghours.Schedule {
	s, err := Schedule(si, e.o.TradingHours, e.o.TimeZone)
	if err != nil { // stores set validates; a bad stored value falls back to the defaults
		e.o.Logger.Warn("store trading hours invalid, using the defaults", "store", si.ID, "err", err)
		s = tradinghours.MustNew(e.o.TradingHours, e.o.TimeZone)
	}
	return s
}

// Schedule is a store's trading hours in its zone: its own settings, else the defaults given.
func Schedule(si store.StoreInfo, defaultHours, defaultZone string) (*tradinghours.Schedule, error) {
	return tradinghours.New(cmp.Or(si.TradingHours, defaultHours), cmp.Or(si.TimeZone, defaultZone))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// level says whether a measure v raises (>= th) or clears (< th × ClearRatio).
func level(v, th float64) (over, under bool) { return v >= th, v < th*ClearRatio }

func short(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// measure finds the conditions of one store; held reports that the store is offline, so its
// other alerts are kept as they are.
func (e *Evaluator) measure(si store.StoreInfo, inv store.InventoryState, now time.Time) (fs []finding, held bool) {
	if si.State != store.StoreActive || si.Status == nil {
		return nil, false
	}
	st, th := si.Status, e.o.Thresholds
	add := func(kind, terminal string, v, limit float64, since time.Time, threshold, detail string, a ...any) {
		f := finding{subject: subject{kind, si.ID, terminal}, since: since, threshold: threshold, detail: fmt.Sprintf(detail, a...)}
		f.over, f.under = level(v, limit)
		fs = append(fs, f)
	}
	age := now.Sub(maxTime(si.StatusAt, e.started))
	offline := st.State != "online" || (th.StoreOffline > 0 && age >= th.StoreOffline)
	if th.StoreOffline > 0 {
		down := time.Duration(0)
		if offline {
			down = max(age, 0)
		}
		add(StoreOffline, "", float64(down), float64(th.StoreOffline), si.StatusAt, "offline for "+short(th.StoreOffline),
			"last status %s (%s ago), agent %s", si.StatusAt.UTC().Format(time.RFC3339), short(now.Sub(si.StatusAt)), st.State)
	}
	if offline {
		return fs, true
	}
	if th.TerminalSilent > 0 {
		sched := e.schedule(si)
		for _, term := range slices.Sorted(maps.Keys(st.LastCapture)) {
			last := st.LastCapture[term]
			// Counted over the last 60 days at most: a terminal silent for a year costs no more.
			silent := sched.TradingBetween(maxTime(last, now.Add(-60*24*time.Hour)), now)
			add(TerminalSilent, term, float64(silent), float64(th.TerminalSilent), last, short(th.TerminalSilent)+" inside trading hours",
				"nothing captured for %s of trading time (%s) since %s", short(silent), sched, last.UTC().Format(time.RFC3339))
		}
	}
	if th.BacklogAge > 0 {
		oldest := time.Duration(st.OldestUnsentAge * float64(time.Second))
		add(BacklogAge, "", float64(oldest), float64(th.BacklogAge), si.StatusAt.Add(-oldest), "oldest unsent record over "+short(th.BacklogAge),
			"%d records not yet at the hub, the oldest %s old", st.Backlog, short(oldest))
	}
	if th.SpoolUsed > 0 && st.SpoolMaxBytes > 0 {
		pct := float64(st.SpoolUsedBytes) * 100 / float64(st.SpoolMaxBytes)
		add(SpoolUsed, "", pct, th.SpoolUsed, now, fmt.Sprintf("spool over %g%% of max_size", th.SpoolUsed),
			"spool %.0f%% used (%d of %d bytes)", pct, st.SpoolUsedBytes, st.SpoolMaxBytes)
	}
	if th.ClockSkew > 0 && !st.Clock.IsZero() {
		skew := st.Clock.Sub(si.StatusAt)
		add(ClockSkew, "", float64(skew.Abs()), float64(th.ClockSkew), now, "clock off by "+short(th.ClockSkew)+" or more",
			"agent clock %s the hub's by %s", map[bool]string{true: "ahead of", false: "behind"}[skew > 0], short(skew.Abs()))
	}
	if th.InventoryLag > 0 && inv.Version > 0 {
		lag := time.Duration(0)
		if st.InventoryVersion < inv.Version {
			lag = max(now.Sub(inv.UpdatedAt), 0)
		}
		add(InventoryLag, "", float64(lag), float64(th.InventoryLag), inv.UpdatedAt, "inventory behind for "+short(th.InventoryLag),
			"agent holds inventory version %d, the hub saved version %d at %s", st.InventoryVersion, inv.Version, inv.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return fs, false
}
