package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/config"
)

// The local endpoint serves profiling only with debug: true.
func TestPprofOnlyWithDebug(t *testing.T) {
	for _, debug := range []bool{false, true} {
		a := &agent{cfg: &config.Config{Debug: debug}}
		rec := httptest.NewRecorder()
		a.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if got := rec.Code == http.StatusOK; got != debug {
			t.Errorf("debug %v: GET /debug/pprof/ = %d", debug, rec.Code)
		}
	}
}

// A hub that refuses the connection shows in /status and in `status` of the running agent.
func TestStatusShowsConnectError(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	y := fmt.Sprintf("store: S1\ndata_dir: %s\nlisten: %s\nhub:\n  broker: tcp://%s\n  password: x\n%s",
		filepath.Join(dir, "data"), freeAddr(t), freeAddr(t), oneTerminal(dir))
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a := startRun(t, cfg)
	defer a.stop(t)
	ls := a.status(t, "a connect error", func(ls localStatus) bool { return ls.ConnectError != nil })
	if ls.ConnectError.Reason != "connection refused" || ls.ConnectFailures == 0 {
		t.Fatalf("connect error %+v after %d failures, want connection refused", ls.ConnectError, ls.ConnectFailures)
	}
	var out strings.Builder
	if code := Main([]string{"status", "--config", cfgPath}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "hub unreachable: connection refused: ") {
		t.Fatalf("status (exit %d):\n%s", code, out.String())
	}
	resp, err := http.Get("http://" + cfg.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	checkHelp(t, string(body))
	if !strings.Contains(string(body), `lanebridge_build_info{component="agent",version="dev",go_version="go`) {
		t.Errorf("no lanebridge_build_info in\n%s", body)
	}
}

// checkHelp fails unless every family of a text exposition has a type and a non-empty HELP
// that precede its samples.
func checkHelp(t *testing.T, text string) {
	t.Helper()
	help, typed, samples := map[string]bool{}, map[string]bool{}, 0
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "#" && f[1] == "HELP":
			help[f[2]] = len(f) > 3
		case len(f) == 4 && f[0] == "#" && f[1] == "TYPE":
			typed[f[2]] = true
		case len(f) == 2:
			samples++
			name, _, _ := strings.Cut(f[0], "{")
			if !help[name] || !typed[name] {
				t.Errorf("sample %q: family without HELP (%v) or TYPE (%v)", line, help[name], typed[name])
			}
		default:
			t.Errorf("unexpected line %q", line)
		}
	}
	if samples < 9 {
		t.Errorf("%d samples in\n%s", samples, text)
	}
}

// validate warns (exit 0) about a password readable by others and fails on a missing one.
func TestValidateChecks(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, hub string
		mode      os.FileMode
		code      int
		stderr    string
	}{
		{"readable password", "  password: x\n", 0o644, 0, "warning: config key hub.password: "},
		{"no password", "", 0o600, 1, "config key hub.password: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.yaml")
			y := fmt.Sprintf("store: S1\ndata_dir: %s\nhub:\n  broker: tcp://127.0.0.1:1883\n%s%s", filepath.Join(dir, "data"), tt.hub, oneTerminal(dir))
			if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			if code := Main([]string{"validate", "--config", p}, io.Discard, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.stderr)
			}
		})
	}
}

// oneTerminal is the terminals section of a test configuration: one file terminal in dir (a
// configuration must list at least one).
func oneTerminal(dir string) string {
	return fmt.Sprintf("terminals:\n  - {id: T1, source: %q, profile: canonical-jsonl}\n", "file://"+filepath.Join(dir, "T1.jsonl"))
}
