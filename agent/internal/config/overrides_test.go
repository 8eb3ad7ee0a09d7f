package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const overrideBase = `store: S001
data_dir: /tmp/x
hub:
  broker: tcp://hub:1883
  password_file: agent.password
  batch_size: 100
spool:
  retention: 35d
terminals:
  - {id: T1, source: "file:///var/pos/T1.jsonl", profile: canonical-jsonl}
`

func TestLoadWithOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(overrideBase), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadWithOverrides(path, []byte("log: {level: debug}\nhub: {heartbeat: 5s}\nspool: {max_size: 1GiB}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "debug" || time.Duration(c.Hub.Heartbeat) != 5*time.Second || c.Hub.BatchSize != 100 || c.Hub.Broker != "tcp://hub:1883" ||
		c.Spool.MaxSize != 1<<30 || time.Duration(c.Spool.Retention) != 35*24*time.Hour || len(c.Terminals) != 1 {
		t.Fatalf("merged = %+v", c)
	}
	if c.Hub.PasswordFile != filepath.Join(filepath.Dir(path), "agent.password") {
		t.Fatalf("password_file not resolved beside the config: %q", c.Hub.PasswordFile)
	}
	// Lists are replaced, not appended.
	c, err = LoadWithOverrides(path, []byte("terminals:\n  - {id: T9, source: \"file:///x\", profile: canonical-jsonl}\n"))
	if err != nil || len(c.Terminals) != 1 || c.Terminals[0].ID != "T9" {
		t.Fatalf("terminals = %+v, %v", c, err)
	}
	for _, tc := range []struct{ overrides, want string }{
		{"data_dir: /elsewhere\n", "config key data_dir"},
		{"store: S002\n", "config key store"},
		{"hub: {broker: tcp://evil:1883}\n", "config key hub.broker"},
		{"hub: {password: x}\n", "config key hub.password"},
		{"hub: {tls: {ca_file: /x}}\n", "config key hub.tls"},
		{"update: {channel: beta}\n", "config key update"},
		{"listen: 0.0.0.0:7780\n", "config key listen"},
		{"log: {level: loud}\n", "config key log.level"},
		{"hub: {window: 1000}\n", "hub.window"},
		{"nonsense: 1\n", "unknown key nonsense"},
		{"- a\n- b\n", "not a YAML mapping"},
	} {
		_, err := LoadWithOverrides(path, []byte(tc.overrides))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("overrides %q: %v, want %q", tc.overrides, err, tc.want)
		}
	}
	var ce *Error
	if err := CheckOverrides([]byte("hub: {username: x}\n")); !errors.As(err, &ce) || ce.Key != "hub.username" {
		t.Errorf("CheckOverrides = %v", err)
	}
}
