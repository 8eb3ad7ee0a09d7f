package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Forbidden lists the keys a configuration push (signed overrides from the hub) may never set,
// with the reason; a push touching one is refused whole. The store's identity, where its data
// lives, how it updates and what it trusts belong to whoever installed the PC. The broker and
// its credentials too: a push that pointed the agent at another broker, or changed its
// password, would hand the store's records to whoever runs that broker or cut the agent off
// with no channel left to roll back or report on — a signed push is powerful, but redirecting
// an agent must take someone at the store PC (or a new enrolment). The local endpoint's address
// and debug profiling are kept local as well: a push must not expose the PC to the network.
var Forbidden = []struct{ Key, Why string }{
	{"store", "the store's identity"},
	{"data_dir", "where the spool lives"},
	{"update", "how the agent updates itself"},
	{"trust", "what the agent trusts (keys are built into the binary)"},
	{"hub.broker", "redirecting the agent to another broker"},
	{"hub.username", "the agent's broker credentials"},
	{"hub.password", "the agent's broker credentials"},
	{"hub.password_file", "the agent's broker credentials"},
	{"hub.tls", "the broker's TLS trust and the agent's certificate"},
	{"listen", "the local endpoint's exposure"},
	{"debug", "profiling on the local endpoint"},
}

// CheckOverrides checks that overrides is a YAML mapping that sets no Forbidden key.
func CheckOverrides(overrides []byte) error {
	m, err := yamlMap(overrides, "overrides")
	if err != nil {
		return err
	}
	if len(m) == 0 {
		return errors.New("overrides: empty")
	}
	for _, f := range Forbidden {
		if has(m, strings.Split(f.Key, ".")) {
			return &Error{f.Key, "a configuration push may not change it (" + f.Why + "); change it in the local agent.yaml"}
		}
	}
	return nil
}

func has(m map[string]any, path []string) bool {
	v, ok := m[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		return true
	}
	sub, ok := v.(map[string]any)
	return ok && has(sub, path[1:])
}

func yamlMap(b []byte, what string) (map[string]any, error) {
	var m map[string]any
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("%s: not a YAML mapping: %w", what, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// Merge returns base with overrides merged over it: mappings merge key by key, anything else
// (scalars, lists such as terminals) is replaced.
func Merge(base, overrides []byte) ([]byte, error) {
	b, err := yamlMap(base, "config")
	if err != nil {
		return nil, err
	}
	o, err := yamlMap(overrides, "overrides")
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(mergeMaps(b, o))
}

func mergeMaps(b, o map[string]any) map[string]any {
	for k, v := range o {
		if om, ok := v.(map[string]any); ok {
			if bm, ok := b[k].(map[string]any); ok {
				b[k] = mergeMaps(bm, om)
				continue
			}
		}
		b[k] = v
	}
	return b
}

// LoadWithOverrides reads path, merges overrides over it (CheckOverrides first) and validates
// the result as Load does; empty overrides is Load.
func LoadWithOverrides(path string, overrides []byte) (*Config, error) {
	if len(bytes.TrimSpace(overrides)) == 0 {
		return Load(path)
	}
	if err := CheckOverrides(overrides); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	merged, err := Merge(b, overrides)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c, err := Parse(merged)
	if err != nil {
		return nil, fmt.Errorf("config %s with the pushed overrides: %w", path, err)
	}
	c.resolve(path)
	return c, nil
}

// resolve makes the relative paths of c relative to the config file's directory.
func (c *Config) resolve(path string) {
	for _, p := range []*string{&c.ProfilesDir, &c.Inventory.PLUFile, &c.Hub.PasswordFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(filepath.Dir(path), *p)
		}
	}
}
