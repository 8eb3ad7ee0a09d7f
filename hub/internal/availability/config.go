package availability

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// Config is the availability: section of hub.yaml.
type Config struct {
	// Channels are the sales channels (web shop, marketplaces), each drawing on a pool of stores.
	Channels []ChannelConfig `yaml:"channels"`
	// SafetyStock is held back in every store (each store's figure, so every pool).
	SafetyStock Safety `yaml:"safety_stock"`
	// Categories name SKU groups for safety stock: category -> SKU patterns (path.Match globs).
	Categories map[string][]string `yaml:"categories"`
	// Reservations: ExpireAfter releases open reservations that old (0: never, the default).
	Reservations struct {
		ExpireAfter time.Duration `yaml:"expire_after"`
	} `yaml:"reservations"`
	// Webhooks receive the signed feed of changes.
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// Drift raises inventory_drift when a channel shows a figure off the truth by more than
	// Threshold for longer than For (Threshold "" turns it off).
	Drift struct {
		Threshold string        `yaml:"threshold"`
		For       time.Duration `yaml:"for"`
	} `yaml:"drift"`
}

// ChannelConfig is one channel.
type ChannelConfig struct {
	Name string `yaml:"name"`
	// Stores are the pool the channel sells from; ["*"] is every store.
	Stores []string `yaml:"stores"`
	// SafetyStock is held back from the pool's figure, on top of the stores' own.
	SafetyStock Safety `yaml:"safety_stock"`
}

// Safety is safety stock: per SKU, else per category, else Default (exact decimals).
type Safety struct {
	Default  string            `yaml:"default"`
	SKU      map[string]string `yaml:"sku"`
	Category map[string]string `yaml:"category"`
}

// WebhookConfig is one subscriber of the feed.
type WebhookConfig struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// SecretFile holds the shared HMAC secret (at least 16 bytes).
	SecretFile string `yaml:"secret_file"`
	// Channels limits the feed to these channels' figures (empty: all).
	Channels []string `yaml:"channels"`
}

var channelName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// Validate checks the section; an error names the key and the fix.
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i, ch := range c.Channels {
		key := fmt.Sprintf("availability.channels[%d]", i)
		if !channelName.MatchString(ch.Name) {
			return fmt.Errorf("config key %s.name: %q: use 1-40 lowercase letters, digits, - or _ (e.g. webshop)", key, ch.Name)
		}
		if seen[ch.Name] {
			return fmt.Errorf("config key %s.name: channel %q is listed twice; give each channel one entry", key, ch.Name)
		}
		seen[ch.Name] = true
		if len(ch.Stores) == 0 {
			return fmt.Errorf("config key %s.stores: channel %s has no stores; list the stores of its pool, or [\"*\"] for every store", key, ch.Name)
		}
		for _, st := range ch.Stores {
			if st == "*" {
				if len(ch.Stores) > 1 {
					return fmt.Errorf("config key %s.stores: \"*\" (every store) stands alone; remove the other entries", key)
				}
				continue
			}
			if err := protocol.ValidateStoreID(st); err != nil {
				return fmt.Errorf("config key %s.stores: %w", key, err)
			}
		}
		if err := ch.SafetyStock.validate(key+".safety_stock", c.Categories); err != nil {
			return err
		}
	}
	if err := c.SafetyStock.validate("availability.safety_stock", c.Categories); err != nil {
		return err
	}
	for cat, pats := range c.Categories {
		for _, p := range pats {
			if _, err := path.Match(p, ""); err != nil || p == "" {
				return fmt.Errorf("config key availability.categories.%s: pattern %q is not a glob (e.g. SHOE-*)", cat, p)
			}
		}
	}
	if c.Reservations.ExpireAfter < 0 {
		return fmt.Errorf("config key availability.reservations.expire_after: %s is negative; leave it out (never) or give a duration such as 72h", c.Reservations.ExpireAfter)
	}
	if err := c.validateFeed(seen); err != nil {
		return err
	}
	if c.Drift.Threshold != "" {
		if q, err := protocol.ParseQty(c.Drift.Threshold); err != nil || q < 0 {
			return fmt.Errorf("config key availability.drift.threshold: %q is not a quantity of 0 or more (e.g. \"2\")", c.Drift.Threshold)
		}
		if c.Drift.For <= 0 {
			return fmt.Errorf("config key availability.drift.for: need a duration above 0 with drift.threshold (e.g. 10m)")
		}
	}
	return nil
}

func (c *Config) validateFeed(channels map[string]bool) error {
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		key := fmt.Sprintf("availability.webhooks[%d]", i)
		if !channelName.MatchString(w.Name) || names[w.Name] {
			return fmt.Errorf("config key %s.name: %q: give each subscriber a unique name of lowercase letters, digits, - or _", key, w.Name)
		}
		names[w.Name] = true
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config key %s.url: %q is not http(s)://host/path", key, w.URL)
		}
		if w.SecretFile == "" {
			return fmt.Errorf("config key %s.secret_file: missing; write a random secret of at least 16 bytes to a file and name it here", key)
		}
		for _, ch := range w.Channels {
			if !channels[ch] {
				return fmt.Errorf("config key %s.channels: %q is not a channel of availability.channels", key, ch)
			}
		}
	}
	return nil
}

func (s Safety) validate(key string, cats map[string][]string) error {
	check := func(k, v string) error {
		if q, err := protocol.ParseQty(v); err != nil || q < 0 {
			return fmt.Errorf("config key %s: %q is not a quantity of 0 or more (e.g. \"2\" or \"0.5\")", k, v)
		}
		return nil
	}
	if s.Default != "" {
		if err := check(key+".default", s.Default); err != nil {
			return err
		}
	}
	for sku, v := range s.SKU {
		if err := check(key+".sku."+sku, v); err != nil {
			return err
		}
	}
	for cat, v := range s.Category {
		if _, ok := cats[cat]; !ok {
			return fmt.Errorf("config key %s.category.%s: no such category; define it under availability.categories", key, cat)
		}
		if err := check(key+".category."+cat, v); err != nil {
			return err
		}
	}
	return nil
}

// readSecret reads a webhook's shared secret.
func readSecret(w WebhookConfig) ([]byte, error) {
	b, err := os.ReadFile(w.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("availability.webhooks %s: secret_file: %w", w.Name, err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) < 16 {
		return nil, errors.New("availability.webhooks " + w.Name + ": secret_file holds fewer than 16 bytes; write a longer random secret")
	}
	return b, nil
}

// inPool reports whether store is in the channel's pool.
func (c ChannelConfig) inPool(store string) bool {
	return slices.Equal(c.Stores, []string{"*"}) || slices.Contains(c.Stores, store)
}
