package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A configuration cut off by a power cut or a full disk (issue 13) must fail to load with an
// error naming the key or the syntax, or load exactly as the whole file does: never as an agent
// with no terminals that runs, connected and capturing nothing.
func TestTruncatedConfig(t *testing.T) {
	path := filepath.Join("testdata", "truncate.yaml")
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse(full)
	if err != nil {
		t.Fatalf("the whole file: %v", err)
	}
	at := func(s string) int {
		i := bytes.Index(full, []byte(s))
		if i < 0 {
			t.Fatalf("%q not in %s", s, path)
		}
		return i
	}
	tests := []struct {
		name    string
		cut     int    // bytes kept
		wantErr string // "" = loads equal to the whole file
	}{
		{"nothing left", 0, "the file is empty"},
		{"comment only", at("store:"), "the file is empty"},
		{"mid store id", at("S001") + 2, "config key data_dir"},
		{"after data_dir", at("hub:"), "config key hub.broker"},
		{"mid hub key", at("broker:") + 3, `config key hub: "bro" where its keys (key: value) belong; the file may be cut off`},
		{"mid tls key", at("ca_file:") + 2, `config key hub.tls: "ca"`},
		{"mid hub section", at("  heartbeat:"), "config key terminals: none configured"},
		{"after hub section", at("spool:"), "config key terminals: none configured: add at least one terminal (id, source, profile)"},
		{"after log section", at("terminals:"), "config key terminals: none configured"},
		{"terminals key only", at("  - {"), "config key terminals: none configured"},
		{"mid terminal id", at("T1,") + 1, "not valid YAML"},
		{"mid quoted source", at("T1.jsonl"), "not valid YAML"},
		{"mid profile", at("canonical-jsonl") + 5, "not valid YAML"},
		{"no final newline", len(full) - 1, ""},
		{"whole file", len(full), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(full[:tt.cut])
			if tt.wantErr == "" {
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("cut at %d: %+v, %v; want the whole file's config", tt.cut, got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("cut at %d: err %v, want one containing %q", tt.cut, err, tt.wantErr)
			}
		})
	}
	// Every other offset holds the same invariant.
	for n := range len(full) + 1 {
		got, err := Parse(full[:n])
		switch {
		case err != nil:
			if m := err.Error(); !strings.Contains(m, "config key ") && !strings.Contains(m, "not valid YAML") && !strings.Contains(m, "the file is empty") {
				t.Errorf("cut at %d: error names neither a key nor the syntax: %v", n, err)
			}
		case !reflect.DeepEqual(got, want):
			t.Errorf("cut at %d (%q…): loaded %d terminal(s), a config unlike the whole file's", n, full[max(0, n-20):n], len(got.Terminals))
		}
	}
}
