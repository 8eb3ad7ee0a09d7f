package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBrokerWithoutPort(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(base, "tcp://127.0.0.1:1883", "tcp://127.0.0.1", 1)))
	if err == nil || !strings.Contains(err.Error(), "config key hub.broker") || !strings.Contains(err.Error(), "no port") {
		t.Fatalf("Parse = %v, want a hub.broker error about the port", err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		yaml     string
		mode     os.FileMode
		wantWarn string // "" = no warning
		wantErr  string // "" = no error
	}{
		{"ok", base, 0o600, "", ""},
		{"ok, missing data dir created later", strings.Replace(base, "/tmp/x", filepath.Join(dir, "new", "data"), 1), 0o600, "", ""},
		{"password readable by others", base, 0o644, "chmod 600", ""},
		{"password readable by group", base, 0o640, "config key hub.password", ""},
		{"password file, readable config", strings.Replace(base, "password: secret", "password_file: pw", 1), 0o644, "", ""},
		{"no password", strings.Replace(base, "  password: secret\n", "", 1), 0o600, "", "config key hub.password: missing"},
		{"read-only data dir", strings.Replace(base, "/tmp/x", ro, 1), 0o600, "", "config key data_dir"},
		{"read-only parent", strings.Replace(base, "/tmp/x", filepath.Join(ro, "data"), 1), 0o600, "", "cannot be created"},
		// /proc takes no files, even from root (who writes in a 0500 directory).
		{"unwritable parent", strings.Replace(base, "/tmp/x", "/proc/lanebridge-check/data", 1), 0o600, "", "cannot be created in /proc"},
		{"data dir is a file", strings.Replace(base, "/tmp/x", notDir, 1), 0o600, "", "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.yaml, ro) && os.Geteuid() == 0 {
				t.Skip("root writes in a read-only directory")
			}
			p := filepath.Join(t.TempDir(), "agent.yaml")
			if err := os.WriteFile(p, []byte(strings.Replace(tt.yaml, "/tmp/x", t.TempDir(), 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			warns, err := Check(p, c)
			if w := strings.Join(warns, "\n"); (tt.wantWarn == "") != (w == "") || !strings.Contains(w, tt.wantWarn) {
				t.Errorf("warnings = %q, want %q", w, tt.wantWarn)
			}
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
