// Package app is the lanebridge-hub command: configuration, serve and the store enrolment
// commands. Serve sets the hub up (newHub: store, transport, ingest, posting, inventory, close
// scheduler, web) and runs those parts in one tracked group (runParts): the first part to fail
// stops the others and the process exits 1 with a message naming it.
package app

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lanebridge/lanebridge/hub/internal/availability"
	"github.com/lanebridge/lanebridge/hub/internal/broker"
	"github.com/lanebridge/lanebridge/hub/internal/channels"
)

// Config is hub.yaml.
type Config struct {
	DataDir string `yaml:"data_dir"`
	MQTT    struct {
		// Listen is the embedded broker's address (default 0.0.0.0:1883). Ignored when broker.url is set.
		Listen   string `yaml:"listen"`
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
		// MaxClients bounds the embedded broker's concurrent connections (default 100000).
		MaxClients int `yaml:"max_clients"`
	} `yaml:"mqtt"`
	HTTP struct {
		Listen string `yaml:"listen"` // default 127.0.0.1:8080
		// Hosts are the host names (or name:port) clients use to reach the hub; a request with
		// any other Host header is refused (DNS rebinding). Default: the listen address's host,
		// localhost, 127.0.0.1 and ::1.
		Hosts []string `yaml:"hosts"`
		// PublicURL is the hub's URL as agents and operators reach it (https://hub.example:8443),
		// told to enrolled agents; default: derived from listen.
		PublicURL string `yaml:"public_url"`
		// CertFile and KeyFile turn on HTTPS (session cookies are then Secure).
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
		// MetricsListen is an optional loopback address (127.0.0.1:9090) serving only /metrics,
		// without authentication, for a Prometheus on the same machine. /metrics on listen
		// always needs a session or a Bearer token of any role.
		MetricsListen string `yaml:"metrics_listen"`
		// SessionIdle and SessionMax end a login session that long after its last use, and
		// after its login however busy (defaults 30m and 12h).
		SessionIdle time.Duration `yaml:"session_idle"`
		SessionMax  time.Duration `yaml:"session_max"`
	} `yaml:"http"`
	Broker struct {
		// URL of an external broker (tcp://host:1883). Empty: the embedded broker is used.
		URL      string `yaml:"url"`
		Username string `yaml:"username"`
		// PasswordFile holds the hub's broker password (preferred over Password, which puts
		// it in hub.yaml itself); one of the two, not both.
		PasswordFile string `yaml:"password_file"`
		Password     string `yaml:"password"`
		ClientID     string `yaml:"client_id"`
		SharedGroup  string `yaml:"shared_group"` // default lanebridge-hub
		// AgentURL is the broker URL written into agent.yaml by `stores add`.
		AgentURL string `yaml:"agent_url"`
	} `yaml:"broker"`
	Store struct {
		PostgresURL string `yaml:"postgres_url"`
		// AllowNondurable lets serve start on a PostgreSQL with fsync or synchronous_commit
		// off (refused by default: such a server loses acknowledged records in a crash).
		AllowNondurable bool `yaml:"allow_nondurable"`
	} `yaml:"store"`
	Ingest struct {
		Workers int `yaml:"workers"`
	} `yaml:"ingest"`
	ERP struct {
		// Kind is none (default: records are stored, nothing is posted), tryton or flatfile.
		Kind string `yaml:"kind"`
		// Rate limits postings per second (0: unlimited).
		Rate float64 `yaml:"rate"`
		// Lease is how long a claimed posting stays with one hub replica (default 2m).
		Lease  time.Duration `yaml:"lease"`
		Tryton struct {
			URL          string `yaml:"url"`
			DB           string `yaml:"db"`
			User         string `yaml:"user"`
			PasswordFile string `yaml:"password_file"`
		} `yaml:"tryton"`
		Flatfile struct {
			Outbound string `yaml:"outbound"`
			Inbound  string `yaml:"inbound"`
			// State holds the ledger of files written (default DATA_DIR/flatfile).
			State string `yaml:"state"`
		} `yaml:"flatfile"`
	} `yaml:"erp"`
	Close struct {
		// At is the local time of day ("02:00") when the previous business day is closed
		// automatically; empty disables the scheduler.
		At string `yaml:"at"`
		// NoZBy is the local time of day by which every terminal's Z report is expected for the
		// previous business day ("01:00"); a close after it raises no_z_report. Default: close.at.
		NoZBy string `yaml:"no_z_by"`
		// ReplayWait is how long a close waits for an agent to answer a replay command (default 30s).
		ReplayWait time.Duration `yaml:"replay_wait"`
	} `yaml:"close"`
	Inventory struct {
		// Interval between inventory cycles: pull stock and prices from the ERP, compute each
		// store's available quantities, publish changes (default 5m). POST
		// /api/v1/inventory/refresh runs one now.
		Interval time.Duration `yaml:"interval"`
		// ResendAfter is how long a published version counts as held by the agent before its
		// status confirms it; after that a lagging agent gets a snapshot (default 15s).
		ResendAfter time.Duration `yaml:"resend_after"`
	} `yaml:"inventory"`
	Alerts AlertsConfig `yaml:"alerts"`
	// Availability is available-to-sell per store and channel, reservations and the webhook feed.
	Availability availability.Config `yaml:"availability"`
	// Series is the chart data kept in the hub's store: throughput, latency and backlog per
	// store in minute and hour buckets.
	Series struct {
		// Flush is how often the in-memory aggregates are written (default 10s): a hub crash
		// loses at most this much chart data, never records.
		Flush time.Duration `yaml:"flush"`
		// KeepMinutes and KeepHours are how long minute and hour buckets are kept (defaults
		// 48h and 2160h, 90 days); older ones are pruned hourly.
		KeepMinutes time.Duration `yaml:"keep_minutes"`
		KeepHours   time.Duration `yaml:"keep_hours"`
	} `yaml:"series"`
	Rollouts RolloutsConfig `yaml:"rollouts"`
	// Connectors push available-to-sell figures to sales channels (hub/internal/channels).
	Connectors []channels.ConnectorConfig `yaml:"connectors"`
	Metrics    struct {
		// PerStore turns the per-store gauges of /metrics on (default true); PerStoreMax
		// stores get them at most (default 1000), the rest are counted by
		// lanebridge_hub_store_series_dropped.
		PerStore    bool `yaml:"per_store"`
		PerStoreMax int  `yaml:"per_store_max"`
	} `yaml:"metrics"`
	Log struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`
}

func defaultConfig() *Config {
	c := &Config{DataDir: "lanebridge-hub-data"}
	c.MQTT.Listen = "0.0.0.0:1883"
	c.HTTP.Listen = "127.0.0.1:8080"
	c.HTTP.SessionIdle, c.HTTP.SessionMax = 30*time.Minute, 12*time.Hour
	c.Broker.SharedGroup = "lanebridge-hub"
	c.Ingest.Workers = 4
	c.Inventory.Interval = 5 * time.Minute
	c.Inventory.ResendAfter = 15 * time.Second
	c.Alerts = defaultAlerts()
	c.Series.Flush, c.Series.KeepMinutes, c.Series.KeepHours = 10*time.Second, 48*time.Hour, 90*24*time.Hour
	c.Metrics.PerStore, c.Metrics.PerStoreMax = true, 1000
	c.Rollouts = defaultRollouts()
	c.Log.Level, c.Log.Format = "info", "text"
	return c
}

// loadConfig reads path (empty: defaults only) strictly.
func loadConfig(path string) (*Config, error) {
	c := defaultConfig()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err.Error() != "EOF" {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("config %s: %s (remove unknown keys or check their spelling; see the README)", path, strings.Join(te.Errors, "; "))
		}
		return nil, fmt.Errorf("config %s: not valid YAML: %w", path, err)
	}
	return c, nil
}

func (c *Config) validate() error {
	if c.Broker.URL == "" && c.DataDir == "" {
		return errors.New("config key data_dir: missing; pass --data DIR")
	}
	if err := c.Availability.Validate(); err != nil {
		return err
	}
	if c.Broker.URL != "" {
		u, err := url.Parse(c.Broker.URL)
		if err != nil || u.Host == "" || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "mqtt") {
			return fmt.Errorf("config key broker.url: %q is not tcp://host:port or ssl://host:port", c.Broker.URL)
		}
	}
	if c.Broker.Password != "" && c.Broker.PasswordFile != "" {
		return errors.New("config key broker.password: set broker.password_file or broker.password, not both (prefer the file)")
	}
	if c.Broker.PasswordFile != "" {
		if _, err := c.brokerPassword(); err != nil {
			return err
		}
	}
	if c.MQTT.MaxClients < 0 {
		return fmt.Errorf("config key mqtt.max_clients: %d is negative; leave it out for the default (%d) or give the most connections the broker accepts", c.MQTT.MaxClients, broker.DefaultMaxClients)
	}
	if (c.MQTT.CertFile == "") != (c.MQTT.KeyFile == "") {
		return errors.New("config key mqtt.key_file: mqtt.cert_file and mqtt.key_file go together")
	}
	if err := c.validateHTTP(); err != nil {
		return err
	}
	if c.Ingest.Workers < 1 || c.Ingest.Workers > 64 {
		return errors.New("config key ingest.workers: must be 1..64")
	}
	switch c.ERP.Kind {
	case "", "none":
	case "tryton":
		if c.ERP.Tryton.URL == "" || c.ERP.Tryton.DB == "" {
			return errors.New("config key erp.tryton.url: erp.kind tryton needs erp.tryton.url and erp.tryton.db")
		}
	case "flatfile":
		if c.ERP.Flatfile.Outbound == "" {
			return errors.New("config key erp.flatfile.outbound: erp.kind flatfile needs an outbound folder")
		}
	default:
		return fmt.Errorf("config key erp.kind: %q: use none, tryton or flatfile", c.ERP.Kind)
	}
	if c.ERP.Rate < 0 {
		return errors.New("config key erp.rate: must be >= 0")
	}
	for _, k := range []struct{ name, v string }{{"close.at", c.Close.At}, {"close.no_z_by", c.Close.NoZBy}} {
		if k.v != "" {
			if _, err := time.Parse("15:04", k.v); err != nil {
				return fmt.Errorf("config key %s: %q is not HH:MM", k.name, k.v)
			}
		}
	}
	if c.Inventory.Interval < time.Second {
		return errors.New("config key inventory.interval: must be at least 1s")
	}
	if c.Inventory.ResendAfter < time.Second {
		return errors.New("config key inventory.resend_after: must be at least 1s")
	}
	if _, err := c.Alerts.options(); err != nil {
		return err
	}
	switch {
	case c.Series.Flush < time.Second || c.Series.Flush > 5*time.Minute:
		return errors.New("config key series.flush: must be 1s..5m (default 10s)")
	case c.Series.KeepMinutes < time.Hour:
		return errors.New("config key series.keep_minutes: must be at least 1h (default 48h)")
	case c.Series.KeepHours < c.Series.KeepMinutes:
		return errors.New("config key series.keep_hours: must be at least series.keep_minutes (default 2160h, 90 days)")
	case c.Metrics.PerStoreMax < 1 || c.Metrics.PerStoreMax > 100000:
		return errors.New("config key metrics.per_store_max: must be 1..100000 (default 1000; turn the gauges off with metrics.per_store: false)")
	}
	if err := c.Rollouts.validate(); err != nil {
		return err
	}
	// Each connector's channel must also be an availability channel: checked where the
	// availability config is known (channels.Connectors with its names).
	if err := channels.ValidateConnectors(c.Connectors, nil); err != nil {
		return err
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config key log.level: %q: use debug, info, warn or error", c.Log.Level)
	}
	return nil
}

func (c *Config) validateHTTP() error {
	h := &c.HTTP
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		return fmt.Errorf("config key http.listen: %q is not host:port (e.g. 127.0.0.1:8080)", h.Listen)
	}
	for _, host := range h.Hosts {
		if host == "" || strings.ContainsAny(host, "/ ") {
			return fmt.Errorf("config key http.hosts: %q is not a host name or name:port (e.g. hub.example.com)", host)
		}
	}
	if h.PublicURL != "" {
		if u, err := url.Parse(h.PublicURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("config key http.public_url: %q is not http(s)://host[:port]", h.PublicURL)
		}
	}
	if (h.CertFile == "") != (h.KeyFile == "") {
		return errors.New("config key http.key_file: http.cert_file and http.key_file go together")
	}
	if h.MetricsListen != "" {
		host, _, err := net.SplitHostPort(h.MetricsListen)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return fmt.Errorf("config key http.metrics_listen: %q is not a loopback host:port (e.g. 127.0.0.1:9090); "+
				"scrape from other machines through http.listen with a Bearer token", h.MetricsListen)
		}
	}
	if h.SessionIdle < time.Minute {
		return errors.New("config key http.session_idle: must be at least 1m (default 30m)")
	}
	if h.SessionMax < h.SessionIdle {
		return errors.New("config key http.session_max: must be at least http.session_idle (default 12h)")
	}
	return nil
}

// hosts are the Host names the web server accepts: http.hosts, or the listen address's host
// and the loopback names.
func (c *Config) hosts() []string {
	if len(c.HTTP.Hosts) > 0 {
		return c.HTTP.Hosts
	}
	out := []string{"localhost", "127.0.0.1", "::1"}
	host, _, _ := net.SplitHostPort(c.HTTP.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host, _ = os.Hostname() // every interface: the machine's name is the likely one
	}
	if host != "" {
		out = append(out, host)
	}
	return out
}

// brokerPassword returns the hub's password on an external broker: broker.password_file's
// content (trimmed), else broker.password.
func (c *Config) brokerPassword() (string, error) {
	if c.Broker.PasswordFile == "" {
		return c.Broker.Password, nil
	}
	b, err := os.ReadFile(c.Broker.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("config key broker.password_file: %w (write the hub's broker password there, or fix the path)", err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("config key broker.password_file: %s is empty; write the hub's broker password there", c.Broker.PasswordFile)
	}
	return pw, nil
}
