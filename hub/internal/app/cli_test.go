package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The agent.yaml holds the store's password: with --out it is written 0600 (even over a wider
// file), and nothing of it goes to stdout.
func TestStoresAddOut(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"stores", "add", "S001", "--data", filepath.Join(dir, "hub"), "--broker-url", "tcp://h:1883", "--out", out, "--create"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), "store: S001") || !strings.Contains(string(b), "password: ") {
		t.Errorf("agent.yaml:\n%s", b)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout with --out: %q", stdout.String())
	}

	// Without --out: stdout, as before.
	stdout.Reset()
	if code := Main([]string{"stores", "add", "S002", "--data", filepath.Join(dir, "hub"), "--broker-url", "tcp://h:1883"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "store: S002") {
		t.Errorf("stdout: %q", stdout.String())
	}
}

// A data directory without hub.db is refused by every command but serve (a misspelt --data used
// to create an empty hub), unless stores add is told --create.
func TestDataDirWithoutDatabase(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "hbu")
	tests := []struct {
		name string
		args []string
	}{
		{"stores add", []string{"stores", "add", "S001", "--data", missing}},
		{"stores list", []string{"stores", "list", "--data", missing}},
		{"stores list, empty dir", []string{"stores", "list", "--data", dir}},
		{"stores rotate-credentials", []string{"stores", "rotate-credentials", "S001", "--data", missing}},
		{"stores disable", []string{"stores", "disable", "S001", "--data", missing}},
		{"stores enable", []string{"stores", "enable", "S001", "--data", missing}},
		{"stores remove", []string{"stores", "remove", "S001", "--data", missing}},
		{"export mosquitto", []string{"export", "mosquitto", "--out", filepath.Join(dir, "x"), "--data", missing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(tt.args, &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if !strings.Contains(stderr.String(), "no hub database in ") || !strings.Contains(stderr.String(), "start `lanebridge-hub serve --data ") {
				t.Errorf("stderr: %s", stderr.String())
			}
			if _, err := os.Stat(filepath.Join(tt.args[len(tt.args)-1], "hub.db")); err == nil {
				t.Errorf("hub.db created")
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"stores", "add", "S001", "--data", missing, "--create"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--create: exit %d: %s", code, stderr.String())
	}
	if code := Main([]string{"stores", "list", "--data", missing}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "S001") {
		t.Fatalf("list after --create: exit %d: %s%s", code, stdout.String(), stderr.String())
	}
}

// broker.password_file is read at validation: a missing or empty file, or both it and
// broker.password, name the key and the fix; a good file gives the trimmed password.
func TestBrokerPasswordFile(t *testing.T) {
	dir := t.TempDir()
	good, empty := filepath.Join(dir, "pw"), filepath.Join(dir, "empty")
	os.WriteFile(good, []byte("s3cret\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tt := range []struct {
		name, file, password, want string
	}{
		{"missing file", filepath.Join(dir, "nope"), "", "config key broker.password_file: "},
		{"empty file", empty, "", "config key broker.password_file: " + empty + " is empty"},
		{"both", good, "inline", "config key broker.password: set broker.password_file or broker.password, not both"},
		{"file", good, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultConfig()
			c.Broker.URL, c.Broker.PasswordFile, c.Broker.Password = "tcp://127.0.0.1:1883", tt.file, tt.password
			err := c.validate()
			if tt.want == "" {
				if pw, perr := c.brokerPassword(); err != nil || perr != nil || pw != "s3cret" {
					t.Fatalf("validate = %v; password %q, %v", err, pw, perr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate = %v, want %q", err, tt.want)
			}
		})
	}
}
