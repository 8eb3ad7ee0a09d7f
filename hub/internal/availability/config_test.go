package availability

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		name string
		edit func(c *Config)
		key  string // "" valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"bad channel name", func(c *Config) { c.Channels[0].Name = "Web Shop" }, "availability.channels[0].name"},
		{"duplicate channel", func(c *Config) { c.Channels[1].Name = "web" }, "availability.channels[1].name"},
		{"no stores", func(c *Config) { c.Channels[0].Stores = nil }, "availability.channels[0].stores"},
		{"star with others", func(c *Config) { c.Channels[1].Stores = []string{"*", "S1"} }, "availability.channels[1].stores"},
		{"bad safety", func(c *Config) { c.SafetyStock.Default = "lots" }, "availability.safety_stock.default"},
		{"negative channel safety", func(c *Config) { c.Channels[0].SafetyStock.SKU["X"] = "-1" }, "availability.channels[0].safety_stock.sku.X"},
		{"unknown category", func(c *Config) { c.SafetyStock.Category = map[string]string{"shoes": "1"} }, "availability.safety_stock.category.shoes"},
		{"bad pattern", func(c *Config) { c.Categories = map[string][]string{"shoes": {"["}} }, "availability.categories.shoes"},
		{"negative expiry", func(c *Config) { c.Reservations.ExpireAfter = -time.Hour }, "availability.reservations.expire_after"},
		{"webhook url", func(c *Config) { c.Webhooks = []WebhookConfig{{Name: "a", URL: "ftp://x", SecretFile: "f"}} }, "availability.webhooks[0].url"},
		{"webhook secret", func(c *Config) { c.Webhooks = []WebhookConfig{{Name: "a", URL: "http://x/"}} }, "availability.webhooks[0].secret_file"},
		{"webhook channel", func(c *Config) {
			c.Webhooks = []WebhookConfig{{Name: "a", URL: "http://x/", SecretFile: "f", Channels: []string{"nope"}}}
		}, "availability.webhooks[0].channels"},
		{"drift without for", func(c *Config) { c.Drift.Threshold = "2" }, "availability.drift.for"},
		{"drift threshold", func(c *Config) { c.Drift.Threshold, c.Drift.For = "x", time.Minute }, "availability.drift.threshold"},
	}
	for _, c := range cases {
		cfg := testConfig()
		c.edit(&cfg)
		err := cfg.Validate()
		switch {
		case c.key == "" && err != nil:
			t.Errorf("%s: Validate = %v", c.name, err)
		case c.key != "" && (err == nil || !strings.Contains(err.Error(), "config key "+c.key+":")):
			t.Errorf("%s: Validate = %v, want an error naming %s", c.name, err, c.key)
		}
	}
}
