// Package installers_test checks what `make dist` produces, with the real tools: the agent and
// hub are built once (Go's build cache makes reruns quick), packaged by installers/pkg into a
// temporary dist/, then the .deb is unpacked with dpkg, the .rpm read with rpm, the .msi's
// tables exported with msiinfo, and SHA256SUMS checked. Skipped with -short.
package installers_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

const version = "v7.8.9-3-gabc1234"

// pkgVersion is installers/pkg's rendering of version.
const pkgVersion = "7.8.9+3+gabc1234"

var (
	once   sync.Once
	dist   string // the packages
	bins   string // the binaries they were made from
	errDst error
	work   string
	// releaseKey is the minisign public key `make dist` got as RELEASE_KEYS, releaseKeyID its
	// id as `lanebridge-agent version` prints it.
	releaseKey, releaseKeyID string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if work != "" {
		os.RemoveAll(work)
	}
	os.Exit(code)
}

func run(dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// build runs `make dist` for the linux/amd64 agent and hub and the windows/amd64 agent, with a
// release key made by Debian's minisign in RELEASE_KEYS.
func build(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: packages not built")
	}
	if runtime.GOOS != "linux" {
		t.Skip("packages are built on Linux")
	}
	need(t, "make", "minisign")
	once.Do(func() {
		errDst = func() error {
			var err error
			if work, err = os.MkdirTemp("", "lanebridge-dist-test"); err != nil {
				return err
			}
			if runtime.GOARCH != "amd64" {
				return fmt.Errorf("the test packages amd64 binaries and needs an amd64 machine to run them")
			}
			pub := filepath.Join(work, "release.pub")
			if _, err := run("", nil, "minisign", "-G", "-W", "-p", pub, "-s", filepath.Join(work, "release.key")); err != nil {
				return err
			}
			b, err := os.ReadFile(pub)
			if err != nil {
				return err
			}
			// "untrusted comment: minisign public key ID", then the key.
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			f := strings.Fields(lines[0])
			releaseKey, releaseKeyID = lines[1], fmt.Sprintf("%016s", f[len(f)-1])
			dist = filepath.Join(work, "dist")
			bins = filepath.Join(dist, "bin")
			_, err = run("..", nil, "make", "--no-print-directory", "dist", "DIST="+dist, "VERSION="+version, "RELEASE_KEYS="+releaseKey,
				"DIST_AGENT=linux/amd64 windows/amd64", "DIST_HUB=linux/amd64")
			return err
		}()
	})
	if errDst != nil {
		t.Fatal(errDst)
	}
}

// ci: under CI (CI=true) a missing tool fails the test instead of skipping it.
var ci = os.Getenv("CI") != "" && os.Getenv("CI") != "false"

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not installed (apt-get install %s)", tool, map[string]string{"rpm": "rpm", "msiinfo": "msitools", "msiextract": "msitools",
				"dpkg-deb": "dpkg", "dpkg": "dpkg", "wine": "wine", "systemd-analyze": "systemd", "osslsigncode": "osslsigncode", "openssl": "openssl",
				"minisign": "minisign", "make": "make", "unshare": "util-linux"}[tool])
			if ci {
				t.Fatal("CI: " + msg + "; testharness/services.sh --tools installs the packaging tools")
			}
			t.Skip(msg)
		}
	}
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run("", nil, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

// hardening is what the agent's unit must carry (as agent/internal/app/systemd.tmpl).
var hardening = []string{"\nRestart=always\n", "\nRestartSec=5s\n", "\nStartLimitIntervalSec=0\n", "\nNoNewPrivileges=yes\n",
	"\nProtectSystem=strict\n", "\nUser=lanebridge\n", "\nGroup=lanebridge\n", "\nPrivateTmp=yes\n", "\n[Install]\nWantedBy=multi-user.target\n"}

// agentExe is where the packages put the agent: a folder of its own, which self-update may
// write (the unit's ReadWritePaths; group lanebridge after post-install); /usr/bin links to it.
const agentExe = "/usr/lib/lanebridge-agent/bin/lanebridge-agent"

// TestDeb: the .debs have the binary (0755; the agent's in its own folder, 0775, linked from
// /usr/bin), the unit, the config as a conffile, the maintainer scripts; unpacked, the binary
// runs (the agent reporting the RELEASE_KEYS it was built with) and the unit is the one
// `service install` writes, with the agent's folder writable and /usr/bin not.
func TestDeb(t *testing.T) {
	build(t)
	need(t, "dpkg-deb")
	for _, c := range []struct{ name, conf, data, exe, rw string }{
		{"lanebridge-agent", "agent.yaml", "/var/lib/lanebridge-agent", agentExe, "/var/lib/lanebridge-agent /usr/lib/lanebridge-agent/bin"},
		{"lanebridge-hub", "hub.yaml", "/var/lib/lanebridge-hub", "/usr/bin/lanebridge-hub", "/var/lib/lanebridge-hub"},
	} {
		t.Run(c.name, func(t *testing.T) {
			deb := filepath.Join(dist, c.name+"_"+pkgVersion+"-1_amd64.deb")
			info := mustRun(t, "dpkg-deb", "-I", deb)
			contains(t, "dpkg-deb -I", info, "Package: "+c.name+"\n", "Version: "+pkgVersion+"-1\n", "Architecture: amd64\n", " postinst ", " prerm ", " postrm ", " conffiles ")
			if got := mustRun(t, "dpkg-deb", "-f", deb, "Version"); got != pkgVersion+"-1\n" {
				t.Errorf("Version %q", got)
			}
			listing := mustRun(t, "dpkg-deb", "-c", deb)
			mode := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(listing), "\n") {
				l, link, _ := strings.Cut(l, " -> ")
				f := strings.Fields(l)
				mode[strings.TrimSuffix(strings.TrimPrefix(f[len(f)-1], "."), "/")] = strings.TrimSpace(f[0] + " " + f[1] + " " + link)
			}
			want := map[string]string{
				c.exe: "-rwxr-xr-x root/root",
				"/usr/lib/systemd/system/" + c.name + ".service": "-rw-r--r-- root/root",
				"/etc/lanebridge/" + c.conf:                      "-rw-r----- root/root",
			}
			if c.name == "lanebridge-agent" {
				want["/usr/lib/lanebridge-agent/bin"] = "drwxrwxr-x root/root"
				want["/usr/bin/lanebridge-agent"] = "lrwxrwxrwx root/root ../lib/lanebridge-agent/bin/lanebridge-agent"
			}
			for path, want := range want {
				if mode[path] != want {
					t.Errorf("%s: %q, want %q\n%s", path, mode[path], want, listing)
				}
			}
			root := t.TempDir()
			mustRun(t, "dpkg-deb", "-x", deb, root)
			ctl := t.TempDir()
			mustRun(t, "dpkg-deb", "-e", deb, ctl)
			conffiles, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
			if string(conffiles) != "/etc/lanebridge/"+c.conf+"\n" {
				t.Errorf("conffiles %q", conffiles)
			}
			postinst, _ := os.ReadFile(filepath.Join(ctl, "postinst"))
			contains(t, "postinst", string(postinst), "useradd --system", "install -d -m 0750 -o lanebridge -g lanebridge \""+"$DATA\"", "DATA=/var/lib/$NAME\n", "NAME="+c.name+"\n",
				"systemctl enable \"$NAME.service\"", "if [ -d /run/systemd/system ]", "chgrp lanebridge \"$CONF\"",
				"BINDIR="+strings.TrimSuffix(filepath.Dir(c.exe), "/usr/bin")+"\n", `chown root:lanebridge "$BINDIR" && chmod 0775 "$BINDIR"`)
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				mustRun(t, "sh", "-n", filepath.Join(ctl, s))
			}
			prerm, _ := os.ReadFile(filepath.Join(ctl, "prerm"))
			// Upgrade must not stop or disable the service; only remove does.
			contains(t, "prerm", string(prerm), "remove | 0)")
			postrm, _ := os.ReadFile(filepath.Join(ctl, "postrm"))
			// The only deletion: self-update's leftovers in the agent's binary folder, on removal.
			leftovers := `if [ -n "$BINDIR" ]; then rm -f "$BINDIR/$NAME.old" "$BINDIR/.$NAME.new" "$BINDIR/.$NAME.old"; fi`
			contains(t, "prerm", string(prerm), "\nremove | 0)\n", leftovers)
			if strings.Contains(string(postrm), "rm ") || strings.Contains(strings.Replace(string(prerm), leftovers, "", 1), "rm ") || strings.Contains(string(postinst), "rm -") {
				t.Errorf("a maintainer script deletes something; removal and upgrade keep config and data:\n%s\n%s", prerm, postrm)
			}
			out := mustRun(t, filepath.Join(root, "usr/bin", c.name), "version")
			contains(t, "version", out, c.name+" "+version)
			if c.name == "lanebridge-agent" {
				// RELEASE_KEYS made it into the packaged binary.
				contains(t, "version", out, "\ntrusted keys: "+releaseKeyID+"\n")
			}
			unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system", c.name+".service"))
			if err != nil {
				t.Fatal(err)
			}
			contains(t, "unit", string(unit), "\nUser=lanebridge\n", "\nReadWritePaths="+c.rw+"\n", "\nExecStart="+c.exe+" ", "/etc/lanebridge/"+c.conf)
			if c.name == "lanebridge-agent" {
				contains(t, "agent unit", string(unit), hardening...)
				// The very unit `service install` writes for these paths (no second copy).
				want := mustRun(t, filepath.Join(bins, "lanebridge-agent-linux-amd64"), "service", "unit", "--config", "/etc/lanebridge/agent.yaml", "--data-dir", "/var/lib/lanebridge-agent", "--exe", agentExe)
				if string(unit) != want {
					t.Errorf("packaged unit differs from `service unit`:\n%s\nwant\n%s", unit, want)
				}
				// The shipped config template is valid YAML the agent understands, and says what is missing.
				var se bytes.Buffer
				cmd := exec.Command(filepath.Join(root, "usr/bin/lanebridge-agent"), "validate", "--config", filepath.Join(root, "etc/lanebridge/agent.yaml"))
				cmd.Stderr = &se
				if err := cmd.Run(); err == nil || !strings.Contains(se.String(), "config key store") {
					t.Errorf("template config: %v %s, want a store error (postinstall then does not start it)", err, se.String())
				}
			}
			verifyUnit(t, root, filepath.Join(root, "usr/lib/systemd/system", c.name+".service"))
		})
	}
}

// verifyUnit runs systemd-analyze verify on the unit, with the package's root for its paths.
func verifyUnit(t *testing.T, root, unit string) {
	t.Helper()
	need(t, "systemd-analyze")
	// ExecStart= names /usr/…, which exists only in root: verify a copy pointing there.
	b, _ := os.ReadFile(unit)
	s := strings.NewReplacer("=/usr/", "="+root+"/usr/", " /usr/", " "+root+"/usr/").Replace(string(b))
	path := filepath.Join(t.TempDir(), filepath.Base(unit))
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), path) {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}

// TestRPM: the .rpm lists the same files, the config as %config(noreplace), and the scripts.
func TestRPM(t *testing.T) {
	build(t)
	need(t, "rpm")
	rpm := filepath.Join(dist, "lanebridge-agent-"+pkgVersion+"-1.x86_64.rpm")
	if got := mustRun(t, "rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH}\n", rpm); got != "lanebridge-agent "+pkgVersion+" x86_64\n" {
		t.Errorf("rpm header %q", got)
	}
	files := mustRun(t, "rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEFLAGS:fflags} %{FILENAMES}\n]", rpm)
	for _, want := range []string{
		"-rwxr-xr-x  " + agentExe + "\n",
		"drwxrwxr-x  /usr/lib/lanebridge-agent/bin\n",
		"l---------  /usr/bin/lanebridge-agent\n", // nfpm gives rpm links no mode bits; Linux ignores a link's mode
		"-rw-r--r--  /usr/lib/systemd/system/lanebridge-agent.service\n",
		"-rw-r----- cn /etc/lanebridge/agent.yaml\n", // c: config, n: noreplace
	} {
		if !strings.Contains(files, want) {
			t.Errorf("rpm files lack %q:\n%s", want, files)
		}
	}
	if n := strings.Count(strings.TrimSpace(mustRun(t, "rpm", "-qlp", rpm)), "\n") + 1; n != 5 {
		t.Errorf("rpm -qlp lists %d files, want 5", n)
	}
	contains(t, "rpm symlink", mustRun(t, "rpm", "-qp", "--qf", "[%{FILENAMES} %{FILELINKTOS}\n]", rpm), "/usr/bin/lanebridge-agent ../lib/lanebridge-agent/bin/lanebridge-agent\n")
	contains(t, "rpm scripts", mustRun(t, "rpm", "-qp", "--scripts", rpm), "postinstall scriptlet", "useradd --system", "preuninstall scriptlet", "remove | 0)", "postuninstall scriptlet")
	hub := filepath.Join(dist, "lanebridge-hub-"+pkgVersion+"-1.x86_64.rpm")
	contains(t, "hub rpm", mustRun(t, "rpm", "-qlp", hub), "/usr/bin/lanebridge-hub\n", "/usr/lib/systemd/system/lanebridge-hub.service\n", "/etc/lanebridge/hub.yaml\n")
}

// msiTable is one table exported by msiinfo, as rows of tab-separated fields (the three
// header lines dropped).
func msiTable(t *testing.T, msi, table string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(mustRun(t, "msiinfo", "export", msi, table), "\r\n"), "\n")
	var rows [][]string
	for _, l := range lines[3:] {
		rows = append(rows, strings.Split(strings.TrimRight(l, "\r"), "\t"))
	}
	return rows
}

func row(rows [][]string, key string) []string {
	for _, r := range rows {
		if r[0] == key {
			return r
		}
	}
	return nil
}

// TestMSI: the MSI's tables register the service (auto start, stopped and removed on
// uninstall), run the agent's own configure step as LocalSystem between registering and
// starting the service with every property, accept the properties from msiexec, upgrade in
// place, and carry the very binary that was built.
func TestMSI(t *testing.T) {
	build(t)
	need(t, "msiinfo", "msiextract")
	msi := filepath.Join(dist, "lanebridge-agent_"+pkgVersion+"_windows_amd64.msi")
	svc := row(msiTable(t, msi, "ServiceInstall"), "AgentService")
	// Name DisplayName ServiceType(16 own process) StartType(2 auto) ErrorControl(1 normal) … StartName … Arguments Component_
	if svc == nil || svc[1] != "lanebridge-agent" || svc[3] != "16" || svc[4] != "2" || svc[8] != "LocalSystem" ||
		svc[10] != `run --config "[CommonAppDataFolder]Lanebridge\agent.yaml"` || svc[11] != "AgentExe" {
		t.Errorf("ServiceInstall %q", svc)
	}
	ctl := row(msiTable(t, msi, "ServiceControl"), "AgentServiceControl")
	// 163 = start on install (1) + stop on install (2) + stop (32) and delete (128) on uninstall.
	if ctl == nil || ctl[1] != "lanebridge-agent" || ctl[2] != "163" || ctl[5] != "AgentExe" {
		t.Errorf("ServiceControl %q", ctl)
	}
	ca := row(msiTable(t, msi, "CustomAction"), "Configure")
	// 3090 = 18 (exe from an installed file) + 1024 (deferred) + 2048 (not impersonated: LocalSystem).
	if ca == nil || ca[1] != "3090" || ca[2] != "AgentExeFile" {
		t.Fatalf("CustomAction %q", ca)
	}
	contains(t, "custom action", ca[3], "msi-configure --service", `--config "[DATADIR]agent.yaml"`, `--data-dir "[DATADIR]data"`,
		`--store "[STORE_ID]"`, `--hub "[HUB_URL]"`, `--enroll-token "[ENROLL_TOKEN]"`, `--config-file "[CONFIG_FILE]"`)
	seq := map[string]string{}
	for _, r := range msiTable(t, msi, "InstallExecuteSequence") {
		seq[r[0]] = r[2]
		if r[0] == "Configure" && r[1] != `NOT REMOVE~="ALL"` {
			t.Errorf("Configure runs on uninstall too: condition %q", r[1])
		}
	}
	if !(seq["InstallServices"] < seq["Configure"] && seq["Configure"] < seq["StartServices"]) || seq["RemoveExistingProducts"] != "1401" {
		t.Errorf("sequence: InstallServices %s < Configure %s < StartServices %s; RemoveExistingProducts %s (want 1401, after InstallValidate)",
			seq["InstallServices"], seq["Configure"], seq["StartServices"], seq["RemoveExistingProducts"])
	}
	// Self-update's leftovers beside the exe go on uninstall (2), so the folder does too.
	rf := msiTable(t, msi, "RemoveFile")
	for key, name := range map[string]string{"RemoveOldExe": "lanebridge-agent.exe.old", "RemoveNewExe": ".lanebridge-agent.exe.new"} {
		if r := row(rf, key); r == nil || r[1] != "AgentExe" || r[2] != name || r[3] != "INSTALLDIR" || r[4] != "2" {
			t.Errorf("RemoveFile %s: %q (table %q)", key, r, rf)
		}
	}
	props := msiTable(t, msi, "Property")
	secure := row(props, "SecureCustomProperties")
	for _, p := range []string{"STORE_ID", "HUB_URL", "ENROLL_TOKEN", "CONFIG_FILE", "WIX_UPGRADE_DETECTED"} {
		if secure == nil || !slices.Contains(strings.Split(secure[1], ";"), p) {
			t.Errorf("SecureCustomProperties %q lacks %s", secure, p)
		}
	}
	if h := row(props, "MsiHiddenProperties"); h == nil || !strings.Contains(h[1], "ENROLL_TOKEN") {
		t.Errorf("MsiHiddenProperties %q: the token would be logged", h)
	}
	if v := row(props, "ProductVersion"); v == nil || v[1] != "7.8.9" {
		t.Errorf("ProductVersion %q", v)
	}
	if u := row(props, "UpgradeCode"); u == nil || !strings.EqualFold(u[1], "{cd865d56-0a4d-48fb-a378-0e7acb056360}") {
		t.Errorf("UpgradeCode %q (must never change: upgrades find the old version by it)", u)
	}
	if up := msiTable(t, msi, "Upgrade"); len(up) != 2 {
		t.Errorf("Upgrade table %q", up)
	}
	contains(t, "msiinfo suminfo", mustRun(t, "msiinfo", "suminfo", msi), "Template: x64;1033")
	if d := row(msiTable(t, msi, "Directory"), "INSTALLDIR"); d == nil || d[1] != "ProgramFiles64Folder" {
		t.Errorf("INSTALLDIR %q", d)
	}
	out := t.TempDir()
	mustRun(t, "msiextract", "-C", out, msi)
	var got []byte
	_ = filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == "lanebridge-agent.exe" {
			got, _ = os.ReadFile(p)
		}
		return nil
	})
	want, _ := os.ReadFile(filepath.Join(bins, "lanebridge-agent-windows-amd64.exe"))
	if len(want) == 0 || !bytes.Equal(got, want) {
		t.Errorf("the MSI's lanebridge-agent.exe (%d bytes) is not the built binary (%d bytes)", len(got), len(want))
	}
}

// TestSHA256SUMS: every artefact is listed once with its hash, and nothing else.
func TestSHA256SUMS(t *testing.T) {
	build(t)
	b, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		sum, name, ok := strings.Cut(l, "  ")
		if !ok {
			t.Fatalf("bad line %q", l)
		}
		f, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(f)
		if hex.EncodeToString(h[:]) != sum {
			t.Errorf("%s: hash mismatch", name)
		}
		listed = append(listed, name)
	}
	entries, _ := os.ReadDir(dist)
	var have []string
	for _, e := range entries {
		if e.Name() != "SHA256SUMS" && !e.IsDir() { // bin/: the binaries, not an artefact
			have = append(have, e.Name())
		}
	}
	slices.Sort(have)
	want := []string{
		"lanebridge-agent-" + pkgVersion + "-1.x86_64.rpm", "lanebridge-agent_" + pkgVersion + "-1_amd64.deb",
		"lanebridge-agent_" + pkgVersion + "_linux_amd64.tar.gz", "lanebridge-agent_" + pkgVersion + "_windows_amd64.msi",
		"lanebridge-agent_" + pkgVersion + "_windows_amd64.zip",
		"lanebridge-hub-" + pkgVersion + "-1.x86_64.rpm", "lanebridge-hub_" + pkgVersion + "-1_amd64.deb",
		"lanebridge-hub_" + pkgVersion + "_linux_amd64.tar.gz",
	}
	if !slices.Equal(listed, want) || !slices.Equal(have, want) {
		t.Errorf("SHA256SUMS lists %q\ndist has %q\nwant %q", listed, have, want)
	}
	if _, err := run(dist, nil, "sha256sum", "-c", "--quiet", "SHA256SUMS"); err != nil {
		t.Error(err)
	}
}

// TestArchives: the tar.gz holds the binary (0755), unit and config template; the zip the exe.
func TestArchives(t *testing.T) {
	build(t)
	f, err := os.Open(filepath.Join(dist, "lanebridge-agent_"+pkgVersion+"_linux_amd64.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Mode
	}
	dir := "lanebridge-agent_" + pkgVersion + "_linux_amd64/"
	if want := map[string]int64{dir + "lanebridge-agent": 0o755, dir + "lanebridge-agent.service": 0o644, dir + "agent.yaml": 0o644}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tar.gz %v, want %v", got, want)
	}
	z, err := zip.OpenReader(filepath.Join(dist, "lanebridge-agent_"+pkgVersion+"_windows_amd64.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if len(z.File) != 1 || z.File[0].Name != "lanebridge-agent_"+pkgVersion+"_windows_amd64/lanebridge-agent.exe" {
		t.Errorf("zip %v", z.File)
	}
}

// TestSigned: with a key (a throwaway self-signed certificate here) the MSI and the exe in the
// zip carry an Authenticode signature osslsigncode verifies against that certificate; the
// unsigned build's MSI has none.
func TestSigned(t *testing.T) {
	build(t)
	need(t, "osslsigncode", "openssl", "msiextract")
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "sign.key"), filepath.Join(dir, "sign.pem")
	mustRun(t, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=Lanebridge test signing")
	out := filepath.Join(dir, "dist")
	if _, err := run("..", nil, "go", "run", "./installers/pkg", "--version", version, "--bin", bins, "--out", out,
		"--targets", "agent/windows/amd64", "--release-keys", releaseKey, "--sign-cert", cert, "--sign-key", key); err != nil {
		t.Fatal(err)
	}
	name := "lanebridge-agent_" + pkgVersion + "_windows_amd64"
	contains(t, "osslsigncode verify msi", mustRun(t, "osslsigncode", "verify", "-CAfile", cert, "-in", filepath.Join(out, name+".msi")), "Signature verification: ok")
	z, err := zip.OpenReader(filepath.Join(out, name+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	r, err := z.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := io.ReadAll(r)
	p := filepath.Join(dir, "lanebridge-agent.exe")
	if err := os.WriteFile(p, exe, 0o644); err != nil {
		t.Fatal(err)
	}
	contains(t, "osslsigncode verify exe", mustRun(t, "osslsigncode", "verify", "-CAfile", cert, "-in", p), "Signature verification: ok")
	if _, err := run("", nil, "osslsigncode", "verify", "-CAfile", cert, "-in", filepath.Join(dist, name+".msi")); err == nil {
		t.Error("the unsigned build's MSI verifies")
	}
}

// TestWine (LANEBRIDGE_TEST_WINE=1; Debian's wine, slow to start): the Windows agent runs
// version, and msi-configure writes a config its validate accepts once the password is in.
func TestWine(t *testing.T) {
	if os.Getenv("LANEBRIDGE_TEST_WINE") == "" {
		t.Skip("LANEBRIDGE_TEST_WINE not set")
	}
	build(t)
	need(t, "wine")
	prefix := t.TempDir()
	env := []string{"WINEPREFIX=" + prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml="}
	exe := filepath.Join(bins, "lanebridge-agent-windows-amd64.exe")
	wine := func(args ...string) string {
		t.Helper()
		out, err := run("", env, "wine", append([]string{exe}, args...)...)
		if strings.Contains(string(out), "bcryptprimitives.dll not found") {
			// Debian 12's wine 8.0 has no bcryptprimitives.dll (ProcessPrng), which the Go
			// runtime needs on Windows since Go 1.22: no Go program starts under it.
			t.Skip("this wine cannot run Go >= 1.22 Windows binaries: fatal error: bcryptprimitives.dll not found")
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	contains(t, "wine version", wine("version"), "lanebridge-agent "+version)
	cfg := `C:\lanebridge\agent.yaml`
	contains(t, "wine msi-configure", wine("msi-configure", "--config", cfg, "--data-dir", `C:\lanebridge\data`, "--store", "S001", "--hub", "tcp://hub.example:1883"), "wrote")
	host := filepath.Join(prefix, "drive_c", "lanebridge", "agent.yaml")
	f, err := os.OpenFile(host, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "    password: s3cret")
	f.Close()
	contains(t, "wine validate", wine("validate", "--config", cfg), "OK (store S001")
}

// TestReleaseKeysChecked: the packager refuses agents that do not trust exactly RELEASE_KEYS
// (here: another key, and none), so a build whose -ldflags lost the keys is never packaged.
func TestReleaseKeysChecked(t *testing.T) {
	build(t)
	dir := t.TempDir()
	pub := filepath.Join(dir, "other.pub")
	mustRun(t, "minisign", "-G", "-W", "-p", pub, "-s", filepath.Join(dir, "other.key"))
	b, _ := os.ReadFile(pub)
	other := strings.Split(strings.TrimSpace(string(b)), "\n")[1]
	for name, keys := range map[string]string{"another key": other, "none": "", "one more": releaseKey + "," + other} {
		out, err := run("..", nil, "go", "run", "./installers/pkg", "--version", version, "--bin", bins, "--out", filepath.Join(dir, "dist"),
			"--targets", "agent/linux/amd64", "--release-keys", keys)
		if err == nil || !strings.Contains(string(out), "the built agent trusts \""+releaseKeyID+"\"") {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
}
