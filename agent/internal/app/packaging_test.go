package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServiceUnitCommand: `service unit` prints the unit install writes, from the config's
// data_dir or, for packages, from --data-dir without reading any config.
func TestServiceUnitCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte("store: S001\ndata_dir: /srv/lb data\nhub:\n  broker: tcp://h:1883\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"service", "unit", "--config", cfg, "--exe", "/usr/bin/lanebridge-agent"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "data_dir") {
		t.Fatalf("a data_dir with a space: exit %d, %s", code, errb.String())
	}
	if err := os.WriteFile(cfg, []byte("store: S001\ndata_dir: /srv/lb\nhub:\n  broker: tcp://h:1883\ninventory:\n  plu_file: /srv/pos/plu.csv\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := Main([]string{"service", "unit", "--config", cfg, "--exe", "/opt/lane bridge/agent"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "self-update will not be able to replace /opt/lane bridge/agent") {
		t.Errorf("no self-update warning for a folder the unit cannot make writable: %s", errb.String())
	}
	for _, want := range append([]string{`ExecStart=/opt/lane\x20bridge/agent "run" "--config" "` + cfg + `"`, "\nReadWritePaths=/srv/lb /srv/pos\n"}, hardening...) {
		if !strings.Contains(out.String(), want) {
			t.Errorf("unit lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	errb.Reset()
	if code := Main([]string{"service", "unit", "--config", "/etc/lanebridge/agent.yaml", "--data-dir", "/var/lib/lanebridge-agent", "--exe", "/usr/lib/lanebridge-agent/bin/lanebridge-agent"}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := "\nExecStart=/usr/lib/lanebridge-agent/bin/lanebridge-agent \"run\" \"--config\" \"/etc/lanebridge/agent.yaml\"\n"; !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "\nReadWritePaths=/var/lib/lanebridge-agent /usr/lib/lanebridge-agent/bin\n") {
		t.Errorf("packaged unit:\n%s", out.String())
	}
	// /usr/bin is never made writable: the unit is as before, with a warning saying how to fix it.
	out.Reset()
	errb.Reset()
	if code := Main([]string{"service", "unit", "--data-dir", "/var/lib/lanebridge-agent", "--exe", "/usr/bin/lanebridge-agent"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "\nReadWritePaths=/var/lib/lanebridge-agent\n") || !strings.Contains(errb.String(), "/usr/bin is a shared system folder") {
		t.Errorf("/usr/bin: exit %d %s\n%s", code, errb.String(), out.String())
	}
	if code := Main([]string{"service", "unit", "--data-dir", "/var/lib/x", "--exe", "bin/agent"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "--exe") {
		t.Errorf("relative --exe: exit %d %s", code, errb.String())
	}
}

// TestMSIConfigure: the installer's step writes a config `validate` accepts (0600, a Windows
// path in data_dir survives YAML), refuses bad or conflicting properties without writing, and
// keeps an existing config when given none.
func TestMSIConfigure(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Lanebridge", "agent.yaml")
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Main(append([]string{"msi-configure", "--config", cfg}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, msg := run("--store", "S001", "--hub", "tcp://hub.example:1883", "--data-dir", `C:\ProgramData\Lanebridge\data`); code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `C:\ProgramData\Lanebridge\data`) {
		t.Errorf("Windows data_dir mangled:\n%s", b)
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	// Without enrolment the config has no credentials and no terminals yet: validate names
	// the terminals, then hub.password; with both added, validate passes.
	if code, msg := run("--store", "S001", "--hub", "tcp://hub.example:1883", "--data-dir", filepath.Join(dir, "data")); code != 0 || !strings.Contains(msg, "set hub.password (or hub.password_file) and terminals") {
		t.Fatalf("exit %d: %s", code, msg)
	}
	var out, errb bytes.Buffer
	for _, step := range []struct{ add, want string }{
		{"", "config key terminals: none configured"},
		{oneTerminal(dir), "hub.password: missing"},
	} {
		f, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg, append(f, step.add...), 0o600); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		errb.Reset()
		if code := Main([]string{"validate", "--config", cfg}, &out, &errb); code != 1 || !strings.Contains(errb.String(), step.want) {
			t.Fatalf("validate: exit %d %s %s; want %q", code, out.String(), errb.String(), step.want)
		}
	}
	f, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// yaml.v3 indents by 4
	f = bytes.Replace(f, []byte("hub:\n"), []byte("hub:\n    password: s3cret-from-stores-add\n"), 1)
	if err := os.WriteFile(cfg, f, 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := Main([]string{"validate", "--config", cfg}, &out, &errb); code != 0 || !strings.Contains(out.String(), "OK (store S001") {
		t.Fatalf("validate: exit %d %s %s", code, out.String(), errb.String())
	}
	good, _ := os.ReadFile(cfg)
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("store: S001\ndata_dir: /x\nhub:\n  brokr: tcp://h:1883\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A CONFIG_FILE is the store's whole configuration: one cut off before its terminals is refused.
	noTerms := filepath.Join(dir, "noterms.yaml")
	if err := os.WriteFile(noTerms, []byte("store: S001\ndata_dir: /x\nhub:\n  broker: tcp://h:1883\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--store", "S001", "--hub", "http://hub.example", "--data-dir", "/x"}, "hub.broker"},
		{[]string{"--store", "S/1", "--hub", "tcp://h:1883", "--data-dir", "/x"}, "store"},
		{[]string{"--store", "S001", "--data-dir", "/x"}, "go together"},
		{[]string{"--store", "S001", "--hub", "tcp://h:1883"}, "--data-dir"},
		{[]string{"--config-file", bad}, "brokr"},
		{[]string{"--config-file", noTerms}, "config key terminals: none configured"},
		{[]string{"--config-file", filepath.Join(dir, "missing.yaml")}, "CONFIG_FILE"},
		{[]string{"--config-file", bad, "--store", "S001"}, "not several"},
		{[]string{"--enroll-token", "tok"}, "needs HUB_URL"},
	} {
		if code, msg := run(tc.args...); code != 1 || !strings.Contains(msg, tc.want) {
			t.Errorf("%q: exit %d %q, want an error naming %q", tc.args, code, msg, tc.want)
		}
		if now, _ := os.ReadFile(cfg); !bytes.Equal(now, good) {
			t.Fatalf("%q: a refused configuration changed %s", tc.args, cfg)
		}
	}
	if code, msg := run(); code != 0 || !strings.Contains(msg, "keeping") {
		t.Errorf("no properties: exit %d %s", code, msg)
	}
	if now, _ := os.ReadFile(cfg); !bytes.Equal(now, good) {
		t.Errorf("no properties changed the config")
	}
	full := filepath.Join(dir, "full.yaml")
	if err := os.WriteFile(full, []byte("store: S002\ndata_dir: /x\nhub:\n  broker: ssl://h:8883\n"+oneTerminal(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, msg := run("--config-file", full); code != 0 {
		t.Fatalf("CONFIG_FILE: exit %d %s", code, msg)
	}
	if now, _ := os.ReadFile(cfg); !strings.Contains(string(now), "S002") {
		t.Errorf("CONFIG_FILE not installed: %s", now)
	}
}

// TestMSIConfigureEnroll: with ENROLL_TOKEN, msi-configure hands over to `enroll` (built in
// parallel; a shell script stands in for this binary here and records its arguments) and
// reports its failure.
func TestMSIConfigureEnroll(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "args")
	script := filepath.Join(dir, "agent")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" > "+rec+"\n[ \"$5\" = good ]\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := selfExe
	selfExe = func() string { return script }
	t.Cleanup(func() { selfExe = old })
	cfg := filepath.Join(dir, "agent.yaml")
	var out, errb bytes.Buffer
	if code := Main([]string{"msi-configure", "--config", cfg, "--hub", "https://hub.example", "--enroll-token", "good"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d %s %s", code, out.String(), errb.String())
	}
	if b, _ := os.ReadFile(rec); string(b) != "enroll --hub https://hub.example --token good --config "+cfg+"\n" {
		t.Errorf("enroll ran with %q", b)
	}
	if code := Main([]string{"msi-configure", "--config", cfg, "--hub", "https://hub.example", "--enroll-token", "bad"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "enroll at https://hub.example") {
		t.Errorf("failed enroll: exit %d %s", code, errb.String())
	}
}
