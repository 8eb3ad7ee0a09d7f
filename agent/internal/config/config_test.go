package config

import (
	"strings"
	"testing"
	"time"
)

const base = `store: S001
data_dir: /tmp/x
hub:
  broker: tcp://127.0.0.1:1883
  password: secret
terminals:
  - {id: T1, source: "file:///tmp/j.jsonl", profile: canonical-jsonl}
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.Spool.Retention) != DefaultRetention || c.Hub.Username != "S001" || c.Hub.BatchSize != DefaultBatch {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top key", base + "colour: blue\n", "unknown key colour"},
		{"unknown nested key", strings.Replace(base, "password: secret", "pasword: secret", 1), "unknown key pasword"},
		{"bad store", strings.Replace(base, "S001", "S/1", 1), "config key store"},
		{"no data dir", strings.Replace(base, "data_dir: /tmp/x\n", "", 1), "config key data_dir"},
		{"bad broker", strings.Replace(base, "tcp://127.0.0.1:1883", "http://x", 1), "config key hub.broker"},
		{"bad retention", base + "spool:\n  retention: forever\n", "not a duration"},
		{"small retention", base + "spool:\n  retention: 1m\n", "spool.retention"},
		{"bad size", base + "spool:\n  max_size: lots\n", "not a size"},
		{"dup terminal", base + "  - {id: T1, source: \"file:///tmp/k\", profile: canonical-jsonl}\n", "listed twice"},
		{"no profile", strings.Replace(base, ", profile: canonical-jsonl", "", 1), "terminals[0].profile"},
		{"empty", "", "empty"},
		{"both passwords", strings.Replace(base, "password: secret", "password: a\n  password_file: b", 1), "hub.password_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestSizesAndDurations(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "2GB": 2e9, "1048576": 1 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]time.Duration{"35d": 35 * 24 * time.Hour, "30s": 30 * time.Second, "1.5h": 90 * time.Minute} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
}
