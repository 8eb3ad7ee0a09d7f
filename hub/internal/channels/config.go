package channels

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ConnectorConfig is one entry of hub.yaml's connectors: list.
type ConnectorConfig struct {
	Channel  string        `yaml:"channel"`    // availability.channels[].name
	Kind     string        `yaml:"kind"`       // vendure, shopify or amazon
	URL      string        `yaml:"url"`        // the platform's base URL
	Rate     float64       `yaml:"rate_limit"` // calls a second (default: the platform's, see README)
	Burst    int           `yaml:"burst"`
	Coalesce time.Duration `yaml:"coalesce"` // default 500ms
	Timeout  time.Duration `yaml:"timeout"`  // of one push, default 30s
	// Location: Vendure StockLocation id ("" = the whole variant), Shopify location id.
	Location string `yaml:"location"`
	// Vendure: an administrator and a file holding the password.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// Shopify and Amazon: a file holding the access token.
	TokenFile  string `yaml:"token_file"`
	APIVersion string `yaml:"api_version"` // Shopify, default 2024-01
	// API: Shopify graphql (default) or rest; Amazon listings (default) or feed.
	API string `yaml:"api"`
	// Batch: SKUs one call carries (Shopify graphql default 100, at most 250; Amazon feed
	// default 1000, at most 10000).
	Batch int `yaml:"batch"`
	// Amazon.
	SellerID      string `yaml:"seller_id"`
	MarketplaceID string `yaml:"marketplace_id"`
	ProductType   string `yaml:"product_type"` // default PRODUCT
}

// ValidateConnectors checks the connectors: list; channels, when not nil, are the configured
// availability channels every connector must name. The error names the key and the fix.
func ValidateConnectors(list []ConnectorConfig, channels []string) error {
	seen := map[string]bool{}
	for i, c := range list {
		if _, _, err := c.build(i, channels, seen); err != nil {
			return err
		}
	}
	return nil
}

// Connectors builds every configured connector and its push options.
func Connectors(list []ConnectorConfig, channels []string) ([]Connector, []ChannelOptions, error) {
	seen := map[string]bool{}
	var cs []Connector
	var opts []ChannelOptions
	for i, c := range list {
		conn, opt, err := c.build(i, channels, seen)
		if err != nil {
			return nil, nil, err
		}
		cs, opts = append(cs, conn), append(opts, opt)
	}
	return cs, opts, nil
}

// secret reads a credentials file (one line, trimmed).
func secret(key, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("config key %s: missing; give a file holding the credential (mode 0600)", key)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config key %s: %w", key, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("config key %s: %s is empty; put the credential in it", key, path)
	}
	return s, nil
}

func (c ConnectorConfig) build(i int, channels []string, seen map[string]bool) (Connector, ChannelOptions, error) {
	k := func(name string) string { return fmt.Sprintf("connectors[%d].%s", i, name) }
	opt := ChannelOptions{Coalesce: c.Coalesce, Rate: c.Rate, Burst: c.Burst, Timeout: c.Timeout}
	switch {
	case c.Channel == "":
		return nil, opt, fmt.Errorf("config key %s: missing; name the availability channel (availability.channels[].name) this connector serves", k("channel"))
	case seen[c.Channel]:
		return nil, opt, fmt.Errorf("config key %s: channel %q has two connectors; give each channel one", k("channel"), c.Channel)
	case channels != nil && !slices.Contains(channels, c.Channel):
		return nil, opt, fmt.Errorf("config key %s: %q is not an availability channel (have %s); add it to availability.channels or fix the name", k("channel"), c.Channel, strings.Join(channels, ", "))
	case c.Rate < 0:
		return nil, opt, fmt.Errorf("config key %s: %v is negative; leave it out for the platform's default", k("rate_limit"), c.Rate)
	case c.Burst < 0:
		return nil, opt, fmt.Errorf("config key %s: %d is negative; leave it out for the platform's default", k("burst"), c.Burst)
	case c.Coalesce < 0 || c.Coalesce > time.Minute:
		return nil, opt, fmt.Errorf("config key %s: %s: use 0s..1m (default 500ms)", k("coalesce"), c.Coalesce)
	case c.Batch < 0:
		return nil, opt, fmt.Errorf("config key %s: %d is negative; leave it out for the default", k("batch"), c.Batch)
	case c.Timeout < 0:
		return nil, opt, fmt.Errorf("config key %s: %s is negative (default 30s)", k("timeout"), c.Timeout)
	}
	seen[c.Channel] = true
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, opt, fmt.Errorf("config key %s: %q is not an http(s)://host URL", k("url"), c.URL)
	}
	switch c.Kind {
	case "vendure":
		if c.Username == "" {
			return nil, opt, fmt.Errorf("config key %s: missing; a Vendure administrator the hub logs in as", k("username"))
		}
		pw, err := secret(k("password_file"), c.PasswordFile)
		if err != nil {
			return nil, opt, err
		}
		conn, err := NewVendure(VendureOptions{Channel: c.Channel, URL: c.URL, Username: c.Username, Password: pw, Location: c.Location, Rate: c.Rate, Burst: c.Burst})
		return conn, opt, err
	case "shopify":
		loc, err := strconv.ParseInt(c.Location, 10, 64)
		if err != nil || loc <= 0 {
			return nil, opt, fmt.Errorf("config key %s: %q: give the numeric Shopify location id whose stock is set", k("location"), c.Location)
		}
		tok, err := secret(k("token_file"), c.TokenFile)
		if err != nil {
			return nil, opt, err
		}
		if c.API != "" && c.API != "graphql" && c.API != "rest" {
			return nil, opt, fmt.Errorf("config key %s: %q: use graphql (inventorySetQuantities, default) or rest (inventory_levels/set)", k("api"), c.API)
		}
		if c.Batch > 250 {
			return nil, opt, fmt.Errorf("config key %s: %d: use 1..250 quantities a call", k("batch"), c.Batch)
		}
		conn, err := NewShopify(ShopifyOptions{Channel: c.Channel, URL: c.URL, Token: tok, APIVersion: c.APIVersion, LocationID: loc,
			API: c.API, Batch: c.Batch, Rate: c.Rate, Burst: c.Burst})
		return conn, opt, err
	case "amazon":
		if c.SellerID == "" || c.MarketplaceID == "" {
			return nil, opt, fmt.Errorf("config key %s: amazon needs seller_id and marketplace_id", k("seller_id"))
		}
		tok, err := secret(k("token_file"), c.TokenFile)
		if err != nil {
			return nil, opt, err
		}
		if c.API != "" && c.API != "listings" && c.API != "feed" {
			return nil, opt, fmt.Errorf("config key %s: %q: use listings (patchListingsItem, default) or feed (JSON_LISTINGS_FEED)", k("api"), c.API)
		}
		if c.Batch > 10000 {
			return nil, opt, fmt.Errorf("config key %s: %d: use 1..10000 messages a feed", k("batch"), c.Batch)
		}
		conn, err := NewAmazon(AmazonOptions{Channel: c.Channel, URL: c.URL, Token: tok, SellerID: c.SellerID, MarketplaceID: c.MarketplaceID,
			ProductType: c.ProductType, API: c.API, Batch: c.Batch, Rate: c.Rate, Burst: c.Burst})
		return conn, opt, err
	case "":
		return nil, opt, errors.New("config key " + k("kind") + ": missing; use vendure, shopify or amazon")
	default:
		return nil, opt, fmt.Errorf("config key %s: %q: use vendure, shopify or amazon", k("kind"), c.Kind)
	}
}

// NewConfigured builds a Pusher pushing through every configured connector; channels, when not
// nil, are the availability channels the connectors must name.
func NewConfigured(list []ConnectorConfig, channels []string, o Options) (*Pusher, error) {
	conns, opts, err := Connectors(list, channels)
	if err != nil {
		return nil, err
	}
	p, err := NewPusher(o)
	if err != nil {
		return nil, err
	}
	for i, c := range conns {
		if err := p.Add(c, opts[i]); err != nil {
			return nil, err
		}
	}
	return p, nil
}
