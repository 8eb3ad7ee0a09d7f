package app

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/lanebridge/lanebridge/agent/internal/config"
)

// TestSystemdUnitRenders renders the unit the way kardianos/service does (its template
// functions) and checks the restart policy and the command line.
func TestSystemdUnitRenders(t *testing.T) {
	funcs := template.FuncMap{
		"Description": func() string { return "Lanebridge store agent" },
		"Path":        func() string { return "/opt/lanebridge/lanebridge-agent" },
		"Arguments":   func() []string { return []string{"run", "--config", "/etc/lanebridge/agent.yaml"} },
		"Name":        func() string { return "lanebridge-agent" },
		"cmd":         func(s string) string { return `"` + s + `"` },
		"cmdEscape":   func(s string) string { return s },
	}
	tm, err := template.New("unit").Funcs(funcs).Parse(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tm.Execute(&b, nil); err != nil {
		t.Fatal(err)
	}
	unit := b.String()
	for _, want := range []string{`ExecStart=/opt/lanebridge/lanebridge-agent "run" "--config" "/etc/lanebridge/agent.yaml"`, "Restart=always", "RestartSec=5s", "NoNewPrivileges=yes", "\nUser=lanebridge\n", "\nGroup=lanebridge\n", "SupplementaryGroups=dialout"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
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
			}
			if err := prepareServiceUser(h, filepath.Join(dir, "agent.yaml"), cfg, io.Discard); err != nil {
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
			if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
				t.Errorf("data_dir not created: %v", err)
			}
		})
	}
}
