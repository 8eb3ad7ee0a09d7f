package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigMaxClients: mqtt.max_clients is read from hub.yaml and a negative value is refused
// with an error naming the key.
func TestConfigMaxClients(t *testing.T) {
	for _, tc := range []struct {
		yaml    string
		want    int
		wantErr string
	}{
		{"mqtt:\n  max_clients: 60000\n", 60000, ""},
		{"mqtt:\n  listen: 127.0.0.1:1883\n", 0, ""}, // 0: the broker's default
		{"mqtt:\n  max_clients: -1\n", 0, "mqtt.max_clients"},
	} {
		p := filepath.Join(t.TempDir(), "hub.yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(p)
		if err == nil {
			err = c.validate()
		}
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("%q: err %v, want one naming %s", tc.yaml, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.MQTT.MaxClients != tc.want {
			t.Fatalf("%q: max_clients %d, err %v; want %d", tc.yaml, c.MQTT.MaxClients, err, tc.want)
		}
	}
}
