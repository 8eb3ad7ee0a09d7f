package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseUpdateKeys(t *testing.T) {
	c, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Update.Channel != "stable" || time.Duration(c.Update.HealthTimeout) != 60*time.Second || !c.Update.On() || c.Update.HubURL != "" {
		t.Fatalf("update defaults: %+v", c.Update)
	}
	c, err = Parse([]byte(base + "update:\n  hub_url: https://hub.example:8443\n  channel: beta\n  health_timeout: 90s\n  enabled: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Update.Channel != "beta" || time.Duration(c.Update.HealthTimeout) != 90*time.Second || c.Update.On() || c.Update.HubURL != "https://hub.example:8443" {
		t.Fatalf("update keys: %+v", c.Update)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"update:\n  hub_url: ftp://x\n", "config key update.hub_url"},
		{"update:\n  hub_url: https://u:p@x\n", "config key update.hub_url"},
		{"update:\n  channel: Stable\n", "config key update.channel"},
		{"update:\n  health_timeout: 10ms\n", "config key update.health_timeout"},
		{"update:\n  enabled: maybe\n", "line 9"},
		{"update:\n  chanel: beta\n", "unknown key chanel"},
	} {
		_, err := Parse([]byte(base + tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
