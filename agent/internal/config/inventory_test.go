package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInventoryKeys(t *testing.T) {
	tests := []struct {
		name, yaml, want string // want "" means valid
	}{
		{"none", "", ""},
		{"plu csv", "inventory:\n  plu_file: /tmp/plu.csv\n  plu_columns: [sku, price_major, available]\n  plu_delimiter: \";\"\n  plu_header: true\n", ""},
		{"tab", "inventory:\n  plu_file: /tmp/plu.csv\n  plu_delimiter: \"\\t\"\n", ""},
		{"unknown key", "inventory:\n  plu_fiel: /tmp/plu.csv\n", "unknown key plu_fiel"},
		{"bad format", "inventory:\n  plu_file: /tmp/p\n  plu_format: xml\n", "config key inventory.plu_format"},
		{"bad column", "inventory:\n  plu_file: /tmp/p\n  plu_columns: [sku, cost]\n", "config key inventory.plu_columns[1]"},
		{"dup column", "inventory:\n  plu_file: /tmp/p\n  plu_columns: [sku, sku]\n", "listed twice"},
		{"long delimiter", "inventory:\n  plu_file: /tmp/p\n  plu_delimiter: \";;\"\n", "config key inventory.plu_delimiter"},
		{"quote delimiter", "inventory:\n  plu_file: /tmp/p\n  plu_delimiter: '\"'\n", "config key inventory.plu_delimiter"},
		{"columns without file", "inventory:\n  plu_columns: [sku]\n", "config key inventory.plu_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(base + tt.yaml))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if c.Inventory.PLUFile != "" && c.Inventory.PLUFormat != "csv" {
					t.Fatalf("plu_format default not applied: %+v", c.Inventory)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestInventoryRelativePLUFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(p, []byte(base+"inventory:\n  plu_file: out/plu.csv\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "out", "plu.csv"); c.Inventory.PLUFile != want {
		t.Fatalf("plu_file = %s, want %s", c.Inventory.PLUFile, want)
	}
}
