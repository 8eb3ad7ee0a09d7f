package app

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/alerts"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/hub/internal/tradinghours"
)

// AlertsConfig is hub.yaml's alerts: thresholds (each "off" or 0 turns its alert off), the
// default trading hours and zone of stores, the webhook and how often alerts are evaluated.
type AlertsConfig struct {
	StoreOfflineAfter   string `yaml:"store_offline_after"`   // default 15m
	TerminalSilentAfter string `yaml:"terminal_silent_after"` // default 60m, trading time only
	BacklogAgeOver      string `yaml:"backlog_age_over"`      // default 30m
	SpoolUsedOver       string `yaml:"spool_used_over"`       // default 80%
	ClockSkewOver       string `yaml:"clock_skew_over"`       // default 5m
	InventoryLagOver    string `yaml:"inventory_lag_over"`    // default 1h
	// TradingHours ("Mon-Sun 08:00-22:00") and TimeZone (IANA; default the hub's local zone)
	// apply to stores without their own (`stores set`).
	TradingHours string `yaml:"trading_hours"`
	TimeZone     string `yaml:"time_zone"`
	// Webhook receives each raise and clear as a JSON POST ("" : none).
	Webhook string `yaml:"webhook"`
	// EvaluateEvery is the interval between evaluations (default 15s).
	EvaluateEvery time.Duration `yaml:"evaluate_every"`
}

func defaultAlerts() AlertsConfig {
	return AlertsConfig{StoreOfflineAfter: "15m", TerminalSilentAfter: "60m", BacklogAgeOver: "30m", SpoolUsedOver: "80%",
		ClockSkewOver: "5m", InventoryLagOver: "1h", TradingHours: tradinghours.Default, EvaluateEvery: 15 * time.Second}
}

// options turns the section into evaluator options; errors name the key and the fix.
func (a *AlertsConfig) options() (alerts.Options, error) {
	o := alerts.Options{Every: a.EvaluateEvery, TradingHours: a.TradingHours, TimeZone: a.TimeZone}
	for _, d := range []struct {
		key, v string
		dst    *time.Duration
	}{
		{"store_offline_after", a.StoreOfflineAfter, &o.StoreOffline},
		{"terminal_silent_after", a.TerminalSilentAfter, &o.TerminalSilent},
		{"backlog_age_over", a.BacklogAgeOver, &o.BacklogAge},
		{"clock_skew_over", a.ClockSkewOver, &o.ClockSkew},
		{"inventory_lag_over", a.InventoryLagOver, &o.InventoryLag},
	} {
		if off(d.v) {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v < 0 {
			return o, fmt.Errorf("config key alerts.%s: %q is not a duration (e.g. 15m, 1h) or off", d.key, d.v)
		}
		*d.dst = v
	}
	if !off(a.SpoolUsedOver) {
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(a.SpoolUsedOver, "%")), 64)
		if err != nil || v <= 0 || v > 100 {
			return o, fmt.Errorf("config key alerts.spool_used_over: %q is not a percentage 1..100 (e.g. 80%%) or off", a.SpoolUsedOver)
		}
		o.SpoolUsed = v
	}
	if _, err := tradinghours.New(a.TradingHours, ""); err != nil {
		return o, fmt.Errorf("config key alerts.trading_hours: %w", err)
	}
	if _, err := tradinghours.New("", a.TimeZone); err != nil {
		return o, fmt.Errorf("config key alerts.time_zone: %w", err)
	}
	if a.Webhook != "" && !strings.HasPrefix(a.Webhook, "https://") && !strings.HasPrefix(a.Webhook, "http://") {
		return o, fmt.Errorf("config key alerts.webhook: %q is not an http:// or https:// URL", redactURL(a.Webhook))
	}
	if a.EvaluateEvery < 100*time.Millisecond {
		return o, fmt.Errorf("config key alerts.evaluate_every: must be at least 100ms (default 15s)")
	}
	return o, nil
}

// off: a threshold turned off.
func off(v string) bool { v = strings.TrimSpace(v); return v == "off" || v == "0" || v == "0%" }

// redactURL keeps a URL's secret path out of messages: scheme and host only.
func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[:i+3+j] + "/…"
		}
	}
	return "…"
}

// storesSet is `stores set STORE [--trading-hours SPEC] [--tz ZONE]`: the store's own trading
// hours and zone ("" returns a setting to the alerts defaults). It works while the hub runs (the
// next evaluation and close read them) and is audited.
func storesSet(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("stores set", flag.ContinueOnError)
	hours := fs.String("trading-hours", "", `trading hours, e.g. "Mon-Fri 08:00-20:00, Sat 09:00-18:00, Sun closed" ("" : alerts.trading_hours)`)
	tz := fs.String("tz", "", "IANA time zone, e.g. Europe/Berlin (\"\" : alerts.time_zone)")
	maint := fs.String("maintenance", "", `window for agent updates in the store's zone, e.g. "Mon-Sun 02:00-05:00" ("" : rollouts.maintenance_window)`)
	id, st, err := storeCmd(fs, args)
	if err != nil {
		return err
	}
	defer st.Close()
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["trading-hours"] && !set["tz"] && !set["maintenance"] {
		return errors.New("stores set: pass --trading-hours SPEC, --tz ZONE and/or --maintenance SPEC")
	}
	ctx := context.Background()
	si, err := st.GetStore(ctx, id)
	if err != nil || si.State == store.StoreRemoved {
		return storeNotFound(id, cmp.Or(err, store.ErrNotFound))
	}
	if set["trading-hours"] {
		si.TradingHours = strings.TrimSpace(*hours)
		if _, err := tradinghours.New(si.TradingHours, "UTC"); err != nil {
			return fmt.Errorf("--trading-hours: %w", err)
		}
	}
	if set["tz"] {
		si.TimeZone = strings.TrimSpace(*tz)
		if _, err := tradinghours.New("", si.TimeZone); err != nil {
			return fmt.Errorf("--tz: %w", err)
		}
	}
	if set["maintenance"] {
		si.Maintenance = strings.TrimSpace(*maint)
		if _, err := tradinghours.New(si.Maintenance, "UTC"); si.Maintenance != "" && err != nil {
			return fmt.Errorf("--maintenance: %w", err)
		}
		if err := st.SetStoreMaintenance(ctx, id, si.Maintenance); err != nil {
			return storeNotFound(id, err)
		}
	}
	if err := st.SetStoreSchedule(ctx, id, si.TradingHours, si.TimeZone); err != nil {
		return storeNotFound(id, err)
	}
	detail := fmt.Sprintf("trading hours %q, time zone %q, maintenance window %q", si.TradingHours, si.TimeZone, si.Maintenance)
	fmt.Fprintf(stderr, "store %s: %s (empty: the alerts defaults)\n", id, detail)
	return cliAudit(ctx, st, "stores set", id, detail)
}

// schedules reads stores' trading hours and zones (alerts defaults for those without), for
// the close (the zone of business days and the Z deadline) and the web (closing a day still
// trading needs a reason).
type schedules struct {
	st          *store.DB
	hours, zone string
}

func (s schedules) schedule(ctx context.Context, id string) (*tradinghours.Schedule, error) {
	si, err := s.st.GetStore(ctx, id)
	if err != nil {
		return nil, err
	}
	return alerts.Schedule(si, s.hours, s.zone)
}

// Location is the store's zone; nil (the hub's) when it cannot be read.
func (s schedules) Location(ctx context.Context, id string) *time.Location {
	sc, err := s.schedule(ctx, id)
	if err != nil {
		return nil
	}
	return sc.Location()
}

// StillTrading says when the store's business day date stops trading, "" when it has.
func (s schedules) StillTrading(ctx context.Context, id, date string, now time.Time) (string, error) {
	sc, err := s.schedule(ctx, id)
	if err != nil || !sc.StillTrading(date, now) {
		return "", err
	}
	return "trading hours " + sc.String() + ", now " + now.In(sc.Location()).Format("Mon 2006-01-02 15:04 MST"), nil
}
