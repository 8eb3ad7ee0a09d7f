// Package app is the lanebridge-hub command: configuration, the serve loop and the store
// enrolment commands.
package app

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is hub.yaml.
type Config struct {
	DataDir string `yaml:"data_dir"`
	MQTT    struct {
		// Listen is the embedded broker's address (default 0.0.0.0:1883). Ignored when broker.url is set.
		Listen   string `yaml:"listen"`
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"mqtt"`
	HTTP struct {
		Listen string `yaml:"listen"` // default 127.0.0.1:8080
	} `yaml:"http"`
	Broker struct {
		// URL of an external broker (tcp://host:1883). Empty: the embedded broker is used.
		URL         string `yaml:"url"`
		Username    string `yaml:"username"`
		Password    string `yaml:"password"`
		ClientID    string `yaml:"client_id"`
		SharedGroup string `yaml:"shared_group"` // default lanebridge-hub
		// AgentURL is the broker URL written into agent.yaml by `stores add`.
		AgentURL string `yaml:"agent_url"`
	} `yaml:"broker"`
	Store struct {
		PostgresURL string `yaml:"postgres_url"`
	} `yaml:"store"`
	Ingest struct {
		Workers int `yaml:"workers"`
	} `yaml:"ingest"`
	Log struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`
}

func defaultConfig() *Config {
	c := &Config{DataDir: "lanebridge-hub-data"}
	c.MQTT.Listen = "0.0.0.0:1883"
	c.HTTP.Listen = "127.0.0.1:8080"
	c.Broker.SharedGroup = "lanebridge-hub"
	c.Ingest.Workers = 4
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
	if c.Broker.URL != "" {
		u, err := url.Parse(c.Broker.URL)
		if err != nil || u.Host == "" || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "mqtt") {
			return fmt.Errorf("config key broker.url: %q is not tcp://host:port or ssl://host:port", c.Broker.URL)
		}
	}
	if (c.MQTT.CertFile == "") != (c.MQTT.KeyFile == "") {
		return errors.New("config key mqtt.key_file: mqtt.cert_file and mqtt.key_file go together")
	}
	if c.Ingest.Workers < 1 || c.Ingest.Workers > 64 {
		return errors.New("config key ingest.workers: must be 1..64")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config key log.level: %q: use debug, info, warn or error", c.Log.Level)
	}
	return nil
}
