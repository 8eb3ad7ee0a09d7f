package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAlertsConfig(t *testing.T) {
	for _, c := range []struct {
		set  func(*AlertsConfig)
		want string
	}{
		{func(a *AlertsConfig) { a.StoreOfflineAfter = "15" }, "alerts.store_offline_after"},
		{func(a *AlertsConfig) { a.TerminalSilentAfter = "-1m" }, "alerts.terminal_silent_after"},
		{func(a *AlertsConfig) { a.SpoolUsedOver = "180%" }, "alerts.spool_used_over"},
		{func(a *AlertsConfig) { a.TradingHours = "Mon-Sun 8-22" }, "alerts.trading_hours"},
		{func(a *AlertsConfig) { a.TimeZone = "Berlin" }, "alerts.time_zone"},
		{func(a *AlertsConfig) { a.Webhook = "hooks.slack.com/services/T0/B0/secret" }, "alerts.webhook"},
		{func(a *AlertsConfig) { a.EvaluateEvery = time.Millisecond }, "alerts.evaluate_every"},
	} {
		cfg := defaultConfig()
		c.set(&cfg.Alerts)
		err := cfg.validate()
		if err == nil || !strings.Contains(err.Error(), "config key "+c.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v", c.want, err)
		}
	}
	a := defaultAlerts()
	o, err := a.options()
	if err != nil || o.StoreOffline != 15*time.Minute || o.TerminalSilent != time.Hour || o.BacklogAge != 30*time.Minute ||
		o.SpoolUsed != 80 || o.ClockSkew != 5*time.Minute || o.InventoryLag != time.Hour || o.TradingHours != "Mon-Sun 08:00-22:00" {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	a.StoreOfflineAfter, a.SpoolUsedOver, a.ClockSkewOver = "off", "0", "0"
	if o, err = a.options(); err != nil || o.StoreOffline != 0 || o.SpoolUsed != 0 || o.ClockSkew != 0 {
		t.Fatalf("thresholds turned off: %+v, %v", o, err)
	}
}

func TestStoresSet(t *testing.T) {
	data := filepath.Join(t.TempDir(), "hub")
	if code, _, errOut := cli(t, "", "stores", "add", "S001", "--data", data, "--create", "--out", filepath.Join(t.TempDir(), "agent.yaml")); code != 0 {
		t.Fatal(errOut)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tz", "Europe/Berlni"}, "--tz: time zone \"Europe/Berlni\" is not an IANA zone name"},
		{[]string{"--trading-hours", "Mon-Fri 9-17"}, "--trading-hours: trading hours \"Mon-Fri 9-17\": \"9-17\" is not HH:MM-HH:MM"},
		{nil, "pass --trading-hours SPEC, --tz ZONE and/or --maintenance SPEC"},
		{[]string{"--maintenance", "nightly"}, "--maintenance: trading hours \"nightly\""},
	} {
		code, _, errOut := cli(t, "", append([]string{"stores", "set", "S001", "--data", data}, c.args...)...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("stores set %q: exit %d, %s; want %q", c.args, code, errOut, c.want)
		}
	}
	if code, _, errOut := cli(t, "", "stores", "set", "S009", "--tz", "UTC", "--data", data); code != 1 || !strings.Contains(errOut, "not enrolled") {
		t.Errorf("unknown store: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, "", "stores", "set", "S001", "--trading-hours", "Mon-Sat 09:00-20:00, Sun closed", "--tz", "Europe/Berlin", "--data", data); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, errOut := cli(t, "", "stores", "set", "S001", "--tz", "America/New_York", "--data", data); code != 0 { // hours kept
		t.Fatal(errOut)
	}
	if code, _, errOut := cli(t, "", "stores", "set", "S001", "--maintenance", "Sun 03:00-04:00", "--data", data); code != 0 { // zone kept
		t.Fatal(errOut)
	}
	_, out, _ := cli(t, "", "stores", "list", "--data", data)
	if !strings.Contains(out, "America/New_York") {
		t.Errorf("stores list does not show the zone:\n%s", out)
	}
	cfg := defaultConfig()
	cfg.DataDir = data
	st, err := openStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	si, _ := st.GetStore(context.Background(), "S001")
	if si.TradingHours != "Mon-Sat 09:00-20:00, Sun closed" || si.TimeZone != "America/New_York" || si.Maintenance != "Sun 03:00-04:00" {
		t.Fatalf("stored schedule %q %q", si.TradingHours, si.TimeZone)
	}
	audit, err := st.Audit(context.Background(), 0, 10)
	if err != nil || len(audit) == 0 || audit[0].Action != "stores set" || audit[0].Target != "S001" || !strings.Contains(audit[0].Detail, "America/New_York") ||
		!strings.Contains(audit[0].Detail, `maintenance window "Sun 03:00-04:00"`) {
		t.Fatalf("audit %+v, %v", audit, err)
	}
}
