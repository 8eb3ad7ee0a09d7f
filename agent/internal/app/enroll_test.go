package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/config"
)

// Enrolling into an existing agent.yaml keeps its other keys and comments, replaces an inline
// password by the password file, writes both 0600, and refuses another store's file.
func TestWriteEnrolledMerges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	old := "# store PC 12, back office\nstore: S001\ndata_dir: " + filepath.Join(dir, "data") + "\nhub:\n  broker: tcp://old:1883\n  password: oldsecret\n  batch_size: 64\n" +
		"terminals:\n  - {id: T1, source: \"file:///var/pos/T1.jsonl\", profile: canonical-jsonl} # till 1\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &enrollResponse{Store: "S001", Broker: "ssl://hub.example:8883", Username: "S001", Password: "newsecret-0123456789", HubURL: "https://hub.example:8443"}
	pw, err := writeEnrolled(path, "", r, "/etc/lanebridge/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	for _, want := range []string{"# store PC 12", "# till 1", "batch_size: 64", "broker: ssl://hub.example:8883", "password_file: agent.password", "ca_file: /etc/lanebridge/ca.pem", "hub_url: https://hub.example:8443"} {
		if !strings.Contains(got, want) {
			t.Errorf("merged config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "oldsecret") || strings.Contains(got, "newsecret") {
		t.Errorf("a password is in the config:\n%s", got)
	}
	for _, p := range []string{path, pw} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", p, fi.Mode().Perm())
		}
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Password(); p != "newsecret-0123456789" || c.Hub.Username != "S001" || len(c.Terminals) != 1 {
		t.Fatalf("loaded: password %q, %+v", p, c.Hub)
	}
	if _, err := writeEnrolled(path, "", &enrollResponse{Store: "S002", Broker: "tcp://h:1883", Username: "S002", Password: "x"}, ""); err == nil || !strings.Contains(err.Error(), "store S001") {
		t.Fatalf("another store's token: %v", err)
	}
	// A new file gets a complete configuration (terminals to add).
	fresh := filepath.Join(dir, "new.yaml")
	if _, err := writeEnrolled(fresh, filepath.Join(dir, "d2"), r, ""); err != nil {
		t.Fatal(err)
	}
	if c, err := config.LoadWithoutTerminals(fresh); err != nil || c.Store != "S001" || c.DataDir != filepath.Join(dir, "d2") {
		t.Fatalf("new config: %+v %v", c, err)
	}
	// ... which validate and run refuse until its terminals are added.
	if _, err := config.Load(fresh); !config.IsNoTerminals(err) || !strings.Contains(err.Error(), "config key terminals: none configured") {
		t.Fatalf("new config without terminals loaded: %v", err)
	}
}
