package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hub.yaml's connectors: section is read strictly and validated with the key and the fix.
func TestConfigConnectors(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "vendure.pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ yaml, wantErr string }{
		{"connectors:\n  - {channel: web, kind: vendure, url: \"http://127.0.0.1:3000\", username: admin, password_file: " + pw + "}\n", ""},
		{"connectors:\n  - {channel: web, kind: ebay, url: \"http://127.0.0.1:3000\"}\n", `connectors[0].kind: "ebay": use vendure, shopify or amazon`},
		{"connectors:\n  - {channel: web, kind: vendure, url: \"http://h\", pasword_file: x}\n", "field pasword_file not found"},
	} {
		p := filepath.Join(dir, "hub.yaml")
		if err := os.WriteFile(p, []byte("data_dir: "+dir+"\n"+tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(p)
		if err == nil {
			err = c.validate()
		}
		switch {
		case tc.wantErr == "" && (err != nil || len(c.Connectors) != 1 || c.Connectors[0].Username != "admin"):
			t.Fatalf("%q: %+v, %v; want one valid connector", tc.yaml, c, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Fatalf("%q: err %v, want one containing %q", tc.yaml, err, tc.wantErr)
		}
	}
}
