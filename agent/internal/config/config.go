// Package config loads and validates the agent's YAML configuration. Unknown keys are an error
// that names the key; every validation error names the key and says how to fix it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lanebridge/lanebridge/protocol"
)

// Config is agent.yaml.
type Config struct {
	Store     string     `yaml:"store"`
	DataDir   string     `yaml:"data_dir"`
	Hub       Hub        `yaml:"hub"`
	Spool     Spool      `yaml:"spool"`
	Terminals []Terminal `yaml:"terminals"`
	Log       Log        `yaml:"log"`
	// Listen is the local HTTP endpoint (status, metrics); default 127.0.0.1:7780, "off" disables.
	Listen string `yaml:"listen"`
	// ProfilesDir is a folder of firmware profiles (*.yaml) that override or add to the shipped
	// ones by name; empty: the shipped profiles only. Relative to the config file.
	ProfilesDir string `yaml:"profiles_dir"`
	// Inventory configures what the agent does with the item master the hub pushes.
	Inventory Inventory `yaml:"inventory"`
	// Debug serves Go profiling (/debug/pprof/) on the local endpoint; default false.
	Debug bool `yaml:"debug"`
	// Update configures signed self-updates offered by the hub.
	Update Update `yaml:"update"`
}

// Update configures signed self-updates (see agent/internal/update).
type Update struct {
	// HubURL is the hub's HTTP(S) base URL binaries are downloaded from (http(s)://host:port);
	// empty: updates are refused with a reason naming this key.
	HubURL string `yaml:"hub_url"`
	// Channel is the release channel this agent follows (default stable).
	Channel string `yaml:"channel"`
	// HealthTimeout is how long a new binary has to report healthy (default 60s).
	HealthTimeout Duration `yaml:"health_timeout"`
	// Enabled accepts updates from the hub (default true).
	Enabled *bool `yaml:"enabled"`
}

// DefaultUpdateChannel and DefaultHealthTimeout are the update defaults.
const (
	DefaultUpdateChannel = "stable"
	DefaultHealthTimeout = 60 * time.Second
)

// On reports whether updates are enabled.
func (u Update) On() bool { return u.Enabled == nil || *u.Enabled }

var reUpdateChannel = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func (u *Update) validate() error {
	if u.HubURL != "" {
		p, err := url.Parse(u.HubURL)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return &Error{"update.hub_url", fmt.Sprintf("%q is not an http(s) URL; use e.g. https://hub.example.com:8443", u.HubURL)}
		}
		if p.RawQuery != "" || p.Fragment != "" || p.User != nil {
			return &Error{"update.hub_url", fmt.Sprintf("%q: only scheme, host, port and path; the credentials are the store id and hub.password", u.HubURL)}
		}
	}
	if !reUpdateChannel.MatchString(u.Channel) {
		return &Error{"update.channel", fmt.Sprintf("%q: lower-case letters, digits and '-', starting with a letter (e.g. stable, beta)", u.Channel)}
	}
	if d := time.Duration(u.HealthTimeout); d < time.Second || d > time.Hour {
		return &Error{"update.health_timeout", fmt.Sprintf("%s: must be between 1s and 1h (default 60s)", d)}
	}
	return nil
}

// Inventory configures the optional PLU / price file written for terminals that load one.
type Inventory struct {
	// PLUFile is rewritten atomically after each applied inventory message ("" = none). A
	// relative path is relative to the configuration file's directory.
	PLUFile string `yaml:"plu_file"`
	// PLUFormat is the file format: csv (the default).
	PLUFormat string `yaml:"plu_format"`
	// PLUColumns, in order, from: sku, description, price (minor units), price_major (price/100
	// with two decimals), tax_code, status, on_hand, available (default sku, description,
	// price, tax_code).
	PLUColumns []string `yaml:"plu_columns"`
	// PLUDelimiter is the csv field delimiter, one character (default ",").
	PLUDelimiter string `yaml:"plu_delimiter"`
	// PLUHeader writes the column names as the first line.
	PLUHeader bool `yaml:"plu_header"`
}

// PLUColumns are the columns inventory.plu_columns may name.
var PLUColumns = []string{"sku", "description", "price", "price_major", "tax_code", "status", "on_hand", "available"}

// Hub says how to reach the hub's MQTT broker.
type Hub struct {
	Broker       string `yaml:"broker"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	TLS          TLS    `yaml:"tls"`
	// BatchSize is the number of records per MQTT message (default 256).
	BatchSize int `yaml:"batch_size"`
	// Window is the number of unacknowledged batches in flight (default 8).
	Window int `yaml:"window"`
	// WindowRecords is the number of unacknowledged records in flight (default window ×
	// batch_size); the last batch of a full window is cut to fit.
	WindowRecords int `yaml:"window_records"`
	// AckTimeout: with records in flight and no ack progress for this long, rewind (default 20s).
	AckTimeout Duration `yaml:"ack_timeout"`
	// Heartbeat is the status interval (default 30s).
	Heartbeat Duration `yaml:"heartbeat"`
}

// TLS holds client TLS files for ssl:// brokers.
type TLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Spool configures the local store-and-forward file.
type Spool struct {
	Retention Duration `yaml:"retention"`
	MaxSize   Size     `yaml:"max_size"`
}

// Terminal is one capture source.
type Terminal struct {
	ID      string `yaml:"id"`
	Source  string `yaml:"source"`
	Profile string `yaml:"profile"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Duration is a time.Duration written as "30s", "35d" or "12h".
type Duration time.Duration

// UnmarshalYAML accepts Go durations plus a "d" suffix for days.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses "90s", "15m", "12h" or "35d".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration (examples: 30s, 15m, 12h, 35d)", s)
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a duration (examples: 30s, 15m, 12h, 35d)", s)
	}
	return v, nil
}

// Size is a byte count written as "512MiB", "2GB" or a plain number.
type Size int64

// UnmarshalYAML parses sizes with KB/MB/GB (powers of 1000) or KiB/MiB/GiB (1024) suffixes.
func (z *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*z = Size(v)
	return nil
}

// ParseSize parses "512MiB", "2GB", "1048576".
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suf) {
			n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, u.suf)), 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("%q is not a size (examples: 512MiB, 2GB)", s)
			}
			return int64(n * float64(u.m)), nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (examples: 512MiB, 2GB)", s)
	}
	return n, nil
}

// Defaults.
const (
	DefaultRetention = 35 * 24 * time.Hour
	DefaultBatch     = 256
	DefaultWindow    = 32
	DefaultAck       = 20 * time.Second
	DefaultHeartbeat = 30 * time.Second
	DefaultListen    = "127.0.0.1:7780"
)

// Error is a configuration error naming the key.
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("config key %s: %s", e.Key, e.Msg) }

// Load reads and validates path.
func Load(path string) (*Config, error) { return load(path, true) }

func load(path string, requireTerminals bool) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := parse(b, requireTerminals)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.resolve(path)
	return c, nil
}

// LoadWithoutTerminals is Load except that a file listing no terminals is accepted: only for
// the installation steps that write or read a file before its terminals are added (`enroll`,
// `msi-configure`, `service install|unit`). What runs or validates the agent uses Load.
func LoadWithoutTerminals(path string) (*Config, error) { return load(path, false) }

// Parse decodes YAML strictly (unknown keys are errors), applies defaults and validates.
func Parse(b []byte) (*Config, error) { return parse(b, true) }

// ParseWithoutTerminals is Parse except that no terminals is accepted (see LoadWithoutTerminals).
func ParseWithoutTerminals(b []byte) (*Config, error) { return parse(b, false) }

func parse(b []byte, requireTerminals bool) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, explainYAML(err)
	}
	c.defaults()
	if err := c.validate(requireTerminals); err != nil {
		return nil, err
	}
	return &c, nil
}

func explainYAML(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, m := range te.Errors {
			if strings.Contains(m, "not found in type") {
				// yaml.v3: "line 3: field foo not found in type config.Hub"
				m = strings.Replace(m, "field ", "unknown key ", 1)
				if i := strings.Index(m, " not found in type"); i > 0 {
					m = m[:i] + " (remove it or check its spelling; keys are listed in the README's configuration section)"
				}
			} else if sm := reNotMapping.FindStringSubmatch(m); sm != nil && sectionKeys[sm[3]] != "" {
				// yaml.v3: "line 5: cannot unmarshal !!str `bro` into config.Hub": a word where
				// a section's keys belong, typically a file cut off in the middle of a key.
				m = fmt.Sprintf("%sconfig key %s: %q where its keys (key: value) belong; the file may be cut off or mis-indented: complete it (see the README's configuration section)", sm[1], sectionKeys[sm[3]], sm[2])
			}
			msgs = append(msgs, m)
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	if errors.Is(err, errEOF) || err.Error() == "EOF" {
		return errors.New("the file is empty: it needs at least store, data_dir and hub.broker")
	}
	return fmt.Errorf("not valid YAML: %w", err)
}

var errEOF = errors.New("EOF")

var reNotMapping = regexp.MustCompile("^(line \\d+: )cannot unmarshal !!\\w+ `([^`]*)` into (\\S+)$")

// sectionKeys names the configuration key of each section's Go type, for decoding errors.
var sectionKeys = map[string]string{
	"config.Config": "(top level)", "config.Hub": "hub", "config.TLS": "hub.tls", "config.Spool": "spool",
	"config.Log": "log", "config.Inventory": "inventory", "config.Update": "update",
	"[]config.Terminal": "terminals", "config.Terminal": "terminals[]",
}

func (c *Config) defaults() {
	if c.Update.Channel == "" {
		c.Update.Channel = DefaultUpdateChannel
	}
	if c.Update.HealthTimeout == 0 {
		c.Update.HealthTimeout = Duration(DefaultHealthTimeout)
	}
	if c.Spool.Retention == 0 {
		c.Spool.Retention = Duration(DefaultRetention)
	}
	if c.Hub.BatchSize == 0 {
		c.Hub.BatchSize = DefaultBatch
	}
	if c.Hub.Window == 0 {
		c.Hub.Window = DefaultWindow
	}
	if c.Hub.AckTimeout == 0 {
		c.Hub.AckTimeout = Duration(DefaultAck)
	}
	if c.Hub.Heartbeat == 0 {
		c.Hub.Heartbeat = Duration(DefaultHeartbeat)
	}
	if c.Hub.Username == "" {
		c.Hub.Username = c.Store
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// noTerminals is the message of the error for a configuration that lists no terminals: an agent
// without one would run, connected and healthy-looking, capturing nothing (a file cut off after
// its hub section parses as exactly that).
const noTerminals = "none configured: add at least one terminal (id, source, profile), e.g. terminals: [{id: T1, source: \"file:///var/pos/T1.jsonl\", profile: canonical-jsonl}]"

// IsNoTerminals reports whether err is the error for a configuration listing no terminals.
func IsNoTerminals(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Key == "terminals" && e.Msg == noTerminals
}

// Validate checks every key and names the first that is wrong; a configuration must list at
// least one terminal.
func (c *Config) Validate() error { return c.validate(true) }

func (c *Config) validate(requireTerminals bool) error {
	if err := protocol.ValidateStoreID(c.Store); err != nil {
		return &Error{"store", err.Error() + "; set it to the id printed by `lanebridge-hub stores add`"}
	}
	if c.DataDir == "" {
		return &Error{"data_dir", "missing; set it to a local directory for the spool (e.g. /var/lib/lanebridge)"}
	}
	if c.Hub.Broker == "" {
		return &Error{"hub.broker", "missing; set it to tcp://host:1883 or ssl://host:8883"}
	}
	u, err := url.Parse(c.Hub.Broker)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Host == "" {
		return &Error{"hub.broker", fmt.Sprintf("%q is not a broker URL; use tcp://host:1883 or ssl://host:8883", c.Hub.Broker)}
	}
	if u.Port() == "" {
		return &Error{"hub.broker", fmt.Sprintf("%q has no port; add it, e.g. %s://%s:1883 (tcp) or :8883 (ssl)", c.Hub.Broker, u.Scheme, u.Hostname())}
	}
	if c.Hub.Password != "" && c.Hub.PasswordFile != "" {
		return &Error{"hub.password_file", "set either hub.password or hub.password_file, not both"}
	}
	if (c.Hub.TLS.CertFile == "") != (c.Hub.TLS.KeyFile == "") {
		return &Error{"hub.tls.key_file", "hub.tls.cert_file and hub.tls.key_file go together"}
	}
	if c.Hub.BatchSize < 1 || c.Hub.BatchSize > 5000 {
		return &Error{"hub.batch_size", "must be between 1 and 5000"}
	}
	if c.Hub.Window < 1 || c.Hub.Window > 256 {
		return &Error{"hub.window", "must be between 1 and 256"}
	}
	if c.Hub.WindowRecords < 0 || c.Hub.WindowRecords > 1_000_000 {
		return &Error{"hub.window_records", "must be between 1 and 1000000 (or unset: window × batch_size)"}
	}
	if time.Duration(c.Hub.AckTimeout) < time.Second {
		return &Error{"hub.ack_timeout", "must be at least 1s"}
	}
	if time.Duration(c.Hub.Heartbeat) < time.Second {
		return &Error{"hub.heartbeat", "must be at least 1s"}
	}
	if time.Duration(c.Spool.Retention) < time.Hour {
		return &Error{"spool.retention", "must be at least 1h (default 35d)"}
	}
	if c.Spool.MaxSize != 0 && c.Spool.MaxSize < 1<<20 {
		return &Error{"spool.max_size", "must be at least 1MiB, or 0 for no limit"}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return &Error{"log.level", fmt.Sprintf("%q: use debug, info, warn or error", c.Log.Level)}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return &Error{"log.format", fmt.Sprintf("%q: use text or json", c.Log.Format)}
	}
	if err := c.Update.validate(); err != nil {
		return err
	}
	if err := c.Inventory.validate(); err != nil {
		return err
	}
	if requireTerminals && len(c.Terminals) == 0 {
		return &Error{"terminals", noTerminals}
	}
	seen := map[string]bool{}
	for i, t := range c.Terminals {
		key := fmt.Sprintf("terminals[%d]", i)
		if t.ID == "" || strings.ContainsAny(t.ID, "/+#\x00 ") {
			return &Error{key + ".id", "missing or contains '/', '+', '#', NUL or a space"}
		}
		if seen[t.ID] {
			return &Error{key + ".id", fmt.Sprintf("terminal %q is listed twice", t.ID)}
		}
		seen[t.ID] = true
		if t.Source == "" {
			return &Error{key + ".source", "missing; e.g. file:///var/pos/journal.jsonl"}
		}
		su, err := url.Parse(t.Source)
		if err != nil || su.Scheme == "" {
			return &Error{key + ".source", fmt.Sprintf("%q is not a source URL (file:///path, dir:///path, serial:///dev/ttyS0, tcp-listen://0.0.0.0:9100)", t.Source)}
		}
		if t.Profile == "" {
			return &Error{key + ".profile", "missing; e.g. canonical-jsonl (see `lanebridge-agent profile list`)"}
		}
	}
	return nil
}

func (inv *Inventory) validate() error {
	if inv.PLUFile == "" {
		if inv.PLUFormat != "" || len(inv.PLUColumns) > 0 || inv.PLUDelimiter != "" || inv.PLUHeader {
			return &Error{"inventory.plu_file", "missing; the other inventory.plu_* keys need it"}
		}
		return nil
	}
	if inv.PLUFormat == "" {
		inv.PLUFormat = "csv"
	}
	if inv.PLUFormat != "csv" {
		return &Error{"inventory.plu_format", fmt.Sprintf("%q: use csv", inv.PLUFormat)}
	}
	seen := map[string]bool{}
	for i, col := range inv.PLUColumns {
		if !slices.Contains(PLUColumns, col) {
			return &Error{fmt.Sprintf("inventory.plu_columns[%d]", i), fmt.Sprintf("%q: use %s", col, strings.Join(PLUColumns, ", "))}
		}
		if seen[col] {
			return &Error{fmt.Sprintf("inventory.plu_columns[%d]", i), fmt.Sprintf("%q is listed twice", col)}
		}
		seen[col] = true
	}
	if inv.PLUDelimiter != "" {
		r := []rune(inv.PLUDelimiter)
		if len(r) != 1 || r[0] == '"' || r[0] == '\r' || r[0] == '\n' || r[0] == 0xFFFD {
			return &Error{"inventory.plu_delimiter", fmt.Sprintf("%q: one character other than a quote or line break (e.g. \",\", \";\", \"\\t\")", inv.PLUDelimiter)}
		}
	}
	return nil
}

// Password returns the broker password from hub.password or hub.password_file.
func (c *Config) Password() (string, error) {
	if c.Hub.PasswordFile == "" {
		return c.Hub.Password, nil
	}
	b, err := os.ReadFile(c.Hub.PasswordFile)
	if err != nil {
		return "", &Error{"hub.password_file", fmt.Sprintf("cannot read it: %v", err)}
	}
	return strings.TrimSpace(string(b)), nil
}
