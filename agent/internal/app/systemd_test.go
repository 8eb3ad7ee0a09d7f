package app

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/config"
)

// renderForTest renders the unit the way kardianos/service does (its template functions).
func renderForTest(t *testing.T, cfg *config.Config, exe string) string {
	t.Helper()
	unit, err := renderUnit(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := renderKardianos(&b, unit, exe, []string{"run", "--config", "/etc/lanebridge/agent.yaml"}, "lanebridge-agent", "Lanebridge store agent"); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// hardening is what both units (systemd.tmpl and the packaged one) must carry.
var hardening = []string{"\nRestart=always\n", "\nRestartSec=5s\n", "\nStartLimitIntervalSec=0\n", "\nTimeoutStopSec=30s\n",
	"\nNoNewPrivileges=yes\n", "\nProtectSystem=strict\n", "\nUser=lanebridge\n", "\nGroup=lanebridge\n", "\nSupplementaryGroups=dialout\n", "\nPrivateTmp=yes\n"}

// TestSystemdUnitRenders: the unit gets the configured data_dir as its only writable path, keeps
// the restart policy and hardening, and passes systemd-analyze verify where it is installed.
func TestSystemdUnitRenders(t *testing.T) {
	data := "/var/lib/lanebridge-store7"
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := renderForTest(t, &config.Config{DataDir: data + "/"}, exe)
	for _, want := range append([]string{`ExecStart=` + exe + ` "run" "--config" "/etc/lanebridge/agent.yaml"`, "\nReadWritePaths=" + data + "\n"}, hardening...) {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if strings.Contains(unit, "@DATA_DIR@") || strings.Contains(unit, "ProtectSystem=full") {
		t.Errorf("unit not filled in / not strict:\n%s", unit)
	}
	if got := renderForTest(t, &config.Config{DataDir: "/srv/a%b"}, exe); !strings.Contains(got, "\nReadWritePaths=/srv/a%%b\n") {
		t.Errorf("%% not escaped for systemd:\n%s", got)
	}
	plu := renderForTest(t, &config.Config{DataDir: data, Inventory: config.Inventory{PLUFile: "/srv/pos/plu.csv"}}, exe)
	if !strings.Contains(plu, "\nReadWritePaths="+data+" /srv/pos\n") {
		t.Errorf("plu_file's folder not writable:\n%s", plu)
	}
	if _, err := renderUnit(&config.Config{DataDir: data, Inventory: config.Inventory{PLUFile: "/srv/my pos/plu.csv"}}, ""); err == nil || !strings.Contains(err.Error(), "inventory.plu_file") {
		t.Errorf("spaced plu_file folder: %v", err)
	}
	for name, u := range map[string]string{"systemd.tmpl": unit} {
		if i := strings.Index(u, "StartLimitIntervalSec"); i < 0 || i > strings.Index(u, "[Service]") {
			t.Errorf("%s: StartLimitIntervalSec must be in [Unit] (systemd ignores it in [Service])", name)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; unit not verified by systemd")
	}
	path := filepath.Join(t.TempDir(), "lanebridge-agent.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// systemd only warns about a key in the wrong section (StartLimitIntervalSec in [Service]
	// was ignored before): any output is a failure.
	if err != nil || strings.Contains(string(out), path) {
		t.Fatalf("systemd-analyze verify: %v\n%s\n%s", err, out, unit)
	}
	t.Logf("systemd-analyze verify: ok %s", out)
}

// TestSystemdUnitRejectsBadDataDir: a data_dir that would break out of the ReadWritePaths line
// (a newline adding a directive, a space adding a second path) or is relative is refused.
func TestSystemdUnitRejectsBadDataDir(t *testing.T) {
	for _, d := range []string{"/var/lib/x\nExecStartPre=/bin/sh -c id", "/var/lib/x /etc", "var/lib/x", "/var/lib/{{.}}"} {
		if _, err := renderUnit(&config.Config{DataDir: d}, ""); err == nil || !strings.Contains(err.Error(), "data_dir") {
			t.Errorf("data_dir %q: err %v, want a data_dir error", d, err)
		}
	}
}

// TestPrepareServiceUser: install creates the lanebridge user only when it is missing, and gives
// it data_dir (created, with what is inside), the config and the password file.
func TestPrepareServiceUser(t *testing.T) {
	for _, exists := range []bool{false, true} {
		t.Run(fmt.Sprintf("user exists %v", exists), func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			if exists { // an earlier run left a spool
				if err := os.MkdirAll(data, 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(data, "spool.db"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg := &config.Config{DataDir: data, Hub: config.Hub{PasswordFile: filepath.Join(dir, "pw")}}
			var ran []string
			owned := map[string]string{}
			modes := map[string]os.FileMode{}
			bin := filepath.Join(dir, "bin") // the binary's own folder: group lanebridge, 0775, owner kept
			created := exists
			h := hostOps{
				lookup: func(name string) (*user.User, error) {
					if !created {
						return nil, user.UnknownUserError(name)
					}
					return &user.User{Username: name, Uid: "990", Gid: "991"}, nil
				},
				run: func(name string, args ...string) error {
					ran = append(ran, name+" "+strings.Join(args, " "))
					created = true
					return nil
				},
				chown: func(p string, uid, gid int) error {
					owned[p] = fmt.Sprintf("%d:%d", uid, gid)
					return nil
				},
				chmod: func(p string, mode os.FileMode) error {
					modes[p] = mode
					return nil
				},
			}
			if err := prepareServiceUser(h, filepath.Join(dir, "agent.yaml"), cfg, bin, io.Discard); err != nil {
				t.Fatal(err)
			}
			wantRan := []string{"useradd --system --user-group --no-create-home --shell /usr/sbin/nologin lanebridge"}
			if exists {
				wantRan = nil
			}
			if !slices.Equal(ran, wantRan) {
				t.Errorf("ran %q, want %q", ran, wantRan)
			}
			want := []string{data, filepath.Join(dir, "agent.yaml"), filepath.Join(dir, "pw")}
			if exists {
				want = append(want, filepath.Join(data, "spool.db"))
			}
			for _, p := range want {
				if owned[p] != "990:991" {
					t.Errorf("%s owned by %q, want 990:991 (chowned: %v)", p, owned[p], owned)
				}
			}
			if owned[bin] != "-1:991" || modes[bin] != 0o775 || len(modes) != 1 {
				t.Errorf("binary folder %s: owner %q mode %o, want -1:991 0775 (chmods %v)", bin, owned[bin], modes[bin], modes)
			}
			if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
				t.Errorf("data_dir not created: %v", err)
			}
		})
	}
}

// TestUpdateBinDir: the unit makes the binary's folder writable (for self-update) only when the
// folder is the agent's own; never a shared system folder, nor one holding other files.
func TestUpdateBinDir(t *testing.T) {
	for exe, want := range map[string]string{
		"/usr/lib/lanebridge-agent/bin/lanebridge-agent": "/usr/lib/lanebridge-agent/bin",
		"/opt/lanebridge/bin/lanebridge-agent":           "/opt/lanebridge/bin",
		"/usr/bin/lanebridge-agent":                      "",
		"/usr/local/bin/lanebridge-agent":                "",
		"/opt/lanebridge-agent":                          "",
		"/lanebridge-agent":                              "",
		"/srv/lane bridge/lanebridge-agent":              "",
	} {
		if got, why := updateBinDir(exe, false); got != want || (want == "") != (why != "") {
			t.Errorf("%s: %q (%s), want %q", exe, got, why, want)
		}
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "lanebridge-agent")
	for _, f := range []string{"lanebridge-agent", "lanebridge-agent.old", ".lanebridge-agent.new"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, why := updateBinDir(exe, true); got != dir {
		t.Errorf("own folder refused: %s", why)
	}
	if err := os.WriteFile(filepath.Join(dir, "lanebridge-hub"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, why := updateBinDir(exe, true); got != "" || !strings.Contains(why, "lanebridge-hub") {
		t.Errorf("a folder with another program: %q %q", got, why)
	}
	unit := func(binDir string) string {
		u, err := renderUnit(&config.Config{DataDir: "/var/lib/lanebridge-agent"}, binDir)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if u := unit(packagedBinDir); !strings.Contains(u, "\nReadWritePaths=/var/lib/lanebridge-agent "+packagedBinDir+"\n") {
		t.Errorf("binary folder not writable:\n%s", u)
	}
	if u := unit(""); !strings.Contains(u, "\nReadWritePaths=/var/lib/lanebridge-agent\n") {
		t.Errorf("no binary folder:\n%s", u)
	}
}
