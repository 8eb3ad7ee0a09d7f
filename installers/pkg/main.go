// Command pkg is `make dist`'s packager: from the cross-compiled binaries in --bin it writes
// to --out the agent's and hub's .deb and .rpm (nfpm, as a library), the agent's Windows .msi
// (wixl, Debian's msitools), .tar.gz (linux) and .zip (windows) archives and SHA256SUMS.
// The agent's systemd unit is the one `lanebridge-agent service install` writes, printed by
// the agent itself (`service unit`), so the package and install cannot drift apart.
//
//	go run ./installers/pkg --version 1.2.3 --bin dist/bin --out dist
//
// Binaries are named lanebridge-{agent,hub}-GOOS-GOARCH[.exe]. Authenticode signing of the
// Windows .exe and .msi with osslsigncode: --sign-cert cert.pem --sign-key key.pem
// [--sign-pass-file F].
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"aead.dev/minisign"
	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// Targets is what `make dist` builds by default: component/GOOS/GOARCH.
var Targets = []string{
	"agent/linux/amd64", "agent/linux/arm64", "agent/linux/arm",
	"agent/windows/amd64", "agent/windows/386",
	"hub/linux/amd64", "hub/linux/arm64",
}

type options struct {
	version, bin, out, src string
	targets                []string
	mtime                  time.Time
	unitAgent              string // a host-runnable agent that prints the unit
	signCert, signKey      string
	signPassFile           string
	releaseKeys            string // RELEASE_KEYS: the agent must report exactly these key ids
	jobs                   int    // targets packaged at a time
}

func main() {
	var o options
	flag.StringVar(&o.version, "version", "", "version (git describe; a leading v is dropped)")
	flag.StringVar(&o.bin, "bin", "dist/bin", "directory of lanebridge-{agent,hub}-GOOS-GOARCH[.exe]")
	flag.StringVar(&o.out, "out", "dist", "output directory")
	flag.StringVar(&o.src, "src", "installers", "the installers directory (templates, scripts, .wxs)")
	targets := flag.String("targets", strings.Join(Targets, ","), "component/GOOS/GOARCH list")
	mtime := flag.Int64("mtime", 0, "file time in the packages, Unix seconds (default now; make passes the commit time)")
	flag.StringVar(&o.unitAgent, "unit-agent", "", "agent binary runnable here, to print its systemd unit (default: the one for this machine in --bin)")
	flag.StringVar(&o.signCert, "sign-cert", "", "Authenticode certificate (PEM or DER/SPC) for osslsigncode")
	flag.StringVar(&o.signKey, "sign-key", "", "Authenticode private key for osslsigncode")
	flag.StringVar(&o.signPassFile, "sign-pass-file", "", "file holding the key's password")
	flag.StringVar(&o.releaseKeys, "release-keys", "", "the minisign public keys the agents were built to trust (make's RELEASE_KEYS); checked against --unit-agent's `version`")
	flag.IntVar(&o.jobs, "jobs", runtime.NumCPU(), "targets packaged at a time")
	flag.Parse()
	o.targets = strings.Split(*targets, ",")
	o.mtime = time.Now().UTC().Truncate(time.Second)
	if *mtime != 0 {
		o.mtime = time.Unix(*mtime, 0).UTC()
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "lanebridge-pkg: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.version == "" {
		return errors.New("--version is required")
	}
	if (o.signCert == "") != (o.signKey == "") {
		return errors.New("--sign-cert and --sign-key go together")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "lanebridge-pkg")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.unitAgent == "" {
		o.unitAgent = filepath.Join(o.bin, binName("agent", runtime.GOOS, runtime.GOARCH))
	}
	if err := checkKeys(o); err != nil {
		return err
	}
	// Targets are packaged concurrently (compression is most of the work), each in its own
	// temporary folder.
	outs := make([][]string, len(o.targets))
	errs := make([]error, len(o.targets))
	sem := make(chan struct{}, max(o.jobs, 1))
	var wg sync.WaitGroup
	for i, t := range o.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			outs[i], errs[i] = packageTarget(o, tmp, t)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var written []string
	for _, w := range outs {
		written = append(written, w...)
	}
	if err := writeSums(o.out, written); err != nil {
		return err
	}
	for _, f := range append(written, "SHA256SUMS") {
		st, err := os.Stat(filepath.Join(o.out, f))
		if err != nil {
			return err
		}
		slog.Info("wrote", "file", filepath.Join(o.out, f), "bytes", st.Size())
	}
	return nil
}

// checkKeys runs the host agent's `version` (built with the same -ldflags as every packaged
// agent) and requires it to trust exactly the ids of --release-keys: a build whose keys did not
// make it in would refuse every update in the field.
func checkKeys(o options) error {
	want := "none"
	var ids []string
	for _, f := range strings.FieldsFunc(o.releaseKeys, func(r rune) bool { return r == ',' || r == '\n' }) {
		var k minisign.PublicKey
		if err := k.UnmarshalText([]byte(strings.TrimSpace(f))); err != nil {
			return fmt.Errorf("--release-keys (RELEASE_KEYS): %q is not a minisign public key (the base64 line of a minisign .pub file): %w", f, err)
		}
		ids = append(ids, fmt.Sprintf("%016X", k.ID()))
	}
	if len(ids) > 0 {
		want = strings.Join(ids, ", ")
	}
	out, err := exec.Command(o.unitAgent, "version").Output()
	if err != nil {
		return fmt.Errorf("%s version: %w", o.unitAgent, err)
	}
	var got string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "trusted keys:"); ok {
			got, _, _ = strings.Cut(strings.TrimSpace(v), " (")
		}
	}
	if got != want {
		return fmt.Errorf("the built agent trusts %q, RELEASE_KEYS gives %q: its -ldflags did not carry the keys (see the Makefile's LDFLAGS)", got, want)
	}
	if len(ids) == 0 {
		slog.Warn("RELEASE_KEYS is empty: these agents trust no release key and refuse every update and config push")
	} else {
		slog.Info("agents trust", "keys", want)
	}
	return nil
}

// packageTarget writes one component/GOOS/GOARCH's packages, working in its own folder of tmp.
func packageTarget(o options, tmp, t string) ([]string, error) {
	parts := strings.Split(strings.TrimSpace(t), "/")
	if len(parts) != 3 || (parts[0] != "agent" && parts[0] != "hub") {
		return nil, fmt.Errorf("--targets: %q is not agent|hub/GOOS/GOARCH", t)
	}
	comp, goos, goarch := parts[0], parts[1], parts[2]
	bin := filepath.Join(o.bin, binName(comp, goos, goarch))
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: %w (build it first: make dist)", t, err)
	}
	dir := filepath.Join(tmp, comp+"-"+goos+"-"+goarch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var outs []string
	var err error
	switch goos {
	case "linux":
		outs, err = linuxPackages(o, dir, comp, goarch, bin)
	case "windows":
		if comp != "agent" {
			return nil, fmt.Errorf("%s: only the agent is packaged for Windows", t)
		}
		outs, err = windowsPackages(o, dir, goarch, bin)
	default:
		err = fmt.Errorf("no packages for %s", goos)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	return outs, nil
}

func binName(comp, goos, goarch string) string {
	n := "lanebridge-" + comp + "-" + goos + "-" + goarch
	if goos == "windows" {
		n += ".exe"
	}
	return n
}

// pkgVersion makes git describe output a version deb and rpm accept and order correctly:
// v1.2.0-3-gabc → 1.2.0+3+gabc (after 1.2.0), abc123 → 0.0.0+abc123.
func pkgVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	v = strings.ReplaceAll(v, "-", "+")
	if v == "" || v[0] < '0' || v[0] > '9' {
		v = "0.0.0+" + v
	}
	return v
}

var numeric = regexp.MustCompile(`^(\d+)(?:\.(\d+))?(?:\.(\d+))?`)

// msiVersion is the numeric part an MSI ProductVersion allows (major.minor.build, ≤255.255.65535).
func msiVersion(v string) (string, error) {
	m := numeric.FindStringSubmatch(pkgVersion(v))
	parts := []string{"0", "0", "0"}
	limits := []int{255, 255, 65535}
	for i := range parts {
		if m != nil && m[i+1] != "" {
			parts[i] = m[i+1]
		}
		if n, _ := strconv.Atoi(parts[i]); n > limits[i] {
			return "", fmt.Errorf("version %s: an MSI version field is at most %d", v, limits[i])
		}
	}
	return strings.Join(parts, "."), nil
}

// component is what differs between the agent's and the hub's Linux packages.
type component struct {
	name, conf, description string
	// binDir, when not "", is the binary's own folder (the agent's, for self-update: group
	// lanebridge, 0775 after post-install, writable in the unit) and /usr/bin/NAME links to it;
	// otherwise the binary is /usr/bin/NAME.
	binDir string
	unit   func(o options, tmp string) (string, error) // path of the unit file
	check  string                                      // postinstall starts the service only if this passes
}

func components(comp string) component {
	if comp == "agent" {
		return component{
			name: "lanebridge-agent", conf: "agent.yaml",
			description: "Lanebridge store agent: captures POS sales from legacy terminals into a local spool and forwards them to the Lanebridge hub.",
			unit:        agentUnit,
			check:       "/usr/bin/lanebridge-agent validate --config /etc/lanebridge/agent.yaml",
			binDir:      agentBinDir,
		}
	}
	return component{
		name: "lanebridge-hub", conf: "hub.yaml",
		description: "Lanebridge hub: stores the stores' sales idempotently, posts them to the ERP, reconciles store-days and serves the web console.",
		unit: func(o options, _ string) (string, error) {
			return filepath.Join(o.src, "systemd", "lanebridge-hub.service"), nil
		},
		check: "true",
	}
}

// agentBinDir is where the packages put the agent (agent/internal/app's packagedBinDir): a
// folder of its own that self-update may write, unlike /usr/bin.
const agentBinDir = "/usr/lib/lanebridge-agent/bin"

// agentUnit has the agent print the unit `service install` writes, for the packaged paths.
func agentUnit(o options, tmp string) (string, error) {
	cmd := exec.Command(o.unitAgent, "service", "unit", "--config", "/etc/lanebridge/agent.yaml",
		"--data-dir", "/var/lib/lanebridge-agent", "--exe", agentBinDir+"/lanebridge-agent")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	unit, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s service unit (--unit-agent must run on this machine): %w: %s", o.unitAgent, err, stderr.Bytes())
	}
	path := filepath.Join(tmp, "lanebridge-agent.service")
	return path, os.WriteFile(path, unit, 0o644)
}

// nfpmArch maps GOARCH to nfpm's names (arm is built with GOARM=7: armhf, armv7hl).
func nfpmArch(goarch string) string {
	if goarch == "arm" {
		return "arm7"
	}
	return goarch
}

func script(o options, tmp string, c component, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(o.src, "linux", name))
	if err != nil {
		return "", err
	}
	s := strings.NewReplacer("@NAME@", c.name, "@CONF@", c.conf, "@CHECK@", c.check, "@BINDIR@", c.binDir).Replace(string(b))
	path := filepath.Join(tmp, c.name+"-"+name)
	return path, os.WriteFile(path, []byte(s), 0o755)
}

func linuxPackages(o options, tmp, comp, goarch, bin string) ([]string, error) {
	c := components(comp)
	unit, err := c.unit(o, tmp)
	if err != nil {
		return nil, err
	}
	var scripts nfpm.Scripts
	for dst, name := range map[*string]string{&scripts.PostInstall: "postinstall.sh", &scripts.PreRemove: "preremove.sh", &scripts.PostRemove: "postremove.sh"} {
		if *dst, err = script(o, tmp, c, name); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(o.src, "linux", c.conf)
	contents := files.Contents{
		{Source: bin, Destination: "/usr/bin/" + c.name, FileInfo: &files.ContentFileInfo{Mode: 0o755, MTime: o.mtime}},
	}
	if c.binDir != "" {
		exe := c.binDir + "/" + c.name
		contents = files.Contents{
			// post-install gives the folder to group lanebridge (the user does not exist at unpack time).
			{Destination: c.binDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o775, MTime: o.mtime}},
			{Source: bin, Destination: exe, FileInfo: &files.ContentFileInfo{Mode: 0o755, MTime: o.mtime}},
			{Source: "../lib/" + strings.TrimPrefix(exe, "/usr/lib/"), Destination: "/usr/bin/" + c.name, Type: files.TypeSymlink, FileInfo: &files.ContentFileInfo{Mode: 0o777, MTime: o.mtime}},
		}
	}
	info := &nfpm.Info{
		Name:          c.name,
		Arch:          nfpmArch(goarch),
		Platform:      "linux",
		Version:       pkgVersion(o.version),
		VersionSchema: "none",
		Release:       "1",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "Lanebridge <ops@lanebridge.invalid>",
		Vendor:        "Lanebridge",
		Homepage:      "https://github.com/lanebridge/lanebridge",
		License:       "Proprietary",
		Description:   c.description,
		MTime:         o.mtime,
		Overridables: nfpm.Overridables{
			Contents: append(contents, files.Contents{
				{Source: unit, Destination: "/usr/lib/systemd/system/" + c.name + ".service", FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: o.mtime}},
				// postinstall gives it to group lanebridge (the user does not exist at unpack time).
				{Source: conf, Destination: "/etc/lanebridge/" + c.conf, Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o640, MTime: o.mtime}},
			}...),
			Scripts: scripts,
		},
	}
	var outs []string
	// gzip level 6 (nfpm's default is 9): about twice as fast, a few percent larger.
	info.Deb.Compression = "gzip:6"
	info.RPM.Compression = "gzip:6"
	for _, format := range []string{"deb", "rpm"} {
		i := *info
		i.Contents = slices.Clone(info.Contents)
		for k, ct := range i.Contents {
			cp := *ct
			fi := *ct.FileInfo
			cp.FileInfo = &fi
			i.Contents[k] = &cp
		}
		p, err := nfpm.Get(format)
		if err != nil {
			return nil, err
		}
		if err := nfpm.PrepareForPackager(&i, format); err != nil {
			return nil, fmt.Errorf("%s: %w", format, err)
		}
		name := p.ConventionalFileName(&i)
		if err := writeFile(filepath.Join(o.out, name), func(w io.Writer) error { return p.Package(nfpm.WithDefaults(&i), w) }); err != nil {
			return nil, fmt.Errorf("%s: %w", format, err)
		}
		outs = append(outs, name)
	}
	tgz := fmt.Sprintf("%s_%s_linux_%s.tar.gz", c.name, pkgVersion(o.version), goarch)
	err = writeFile(filepath.Join(o.out, tgz), func(w io.Writer) error {
		return writeTarGz(w, strings.TrimSuffix(tgz, ".tar.gz"), o.mtime, []archived{
			{bin, c.name, 0o755}, {unit, c.name + ".service", 0o644}, {conf, c.conf, 0o644},
		})
	})
	return append(outs, tgz), err
}

type archived struct {
	src, name string
	mode      int64
}

func writeTarGz(w io.Writer, dir string, mtime time.Time, fs []archived) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, f := range fs {
		b, err := os.ReadFile(f.src)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/" + f.name, Mode: f.mode, Size: int64(len(b)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(w io.Writer, dir string, mtime time.Time, fs []archived) error {
	zw := zip.NewWriter(w)
	for _, f := range fs {
		b, err := os.ReadFile(f.src)
		if err != nil {
			return err
		}
		h := &zip.FileHeader{Name: dir + "/" + f.name, Method: zip.Deflate, Modified: mtime}
		h.SetMode(os.FileMode(f.mode))
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := fw.Write(b); err != nil {
			return err
		}
	}
	return zw.Close()
}

func windowsPackages(o options, tmp, goarch, bin string) ([]string, error) {
	dir := filepath.Join(tmp, "windows-"+goarch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	exe := filepath.Join(dir, "lanebridge-agent.exe")
	if err := copyFile(bin, exe, 0o755); err != nil {
		return nil, err
	}
	if err := sign(o, exe, "Lanebridge store agent"); err != nil {
		return nil, err
	}
	v := pkgVersion(o.version)
	zipName := fmt.Sprintf("lanebridge-agent_%s_windows_%s.zip", v, goarch)
	if err := writeFile(filepath.Join(o.out, zipName), func(w io.Writer) error {
		return writeZip(w, strings.TrimSuffix(zipName, ".zip"), o.mtime, []archived{{exe, "lanebridge-agent.exe", 0o755}})
	}); err != nil {
		return nil, err
	}
	arch := map[string]string{"amd64": "x64", "386": "x86"}[goarch]
	if arch == "" {
		return nil, fmt.Errorf("no MSI for windows/%s", goarch)
	}
	mv, err := msiVersion(o.version)
	if err != nil {
		return nil, err
	}
	wxs, err := filepath.Abs(filepath.Join(o.src, "windows", "lanebridge-agent.wxs"))
	if err != nil {
		return nil, err
	}
	msiName := fmt.Sprintf("lanebridge-agent_%s_windows_%s.msi", v, goarch)
	msi := filepath.Join(dir, msiName)
	// wixl resolves File/@Source against its working directory (an absolute one is refused).
	if err := tool(dir, "wixl", "-a", arch, "-D", "Version="+mv, "-D", "Exe=lanebridge-agent.exe", "-D", "Arch="+arch, "-o", msi, wxs); err != nil {
		return nil, err
	}
	// wixl writes SecureCustomProperties for MajorUpgrade and cannot add to it (see the .wxs).
	if err := tool(dir, "msibuild", msi, "-q", "UPDATE `Property` SET `Value` = 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;STORE_ID;HUB_URL;ENROLL_TOKEN;CONFIG_FILE' WHERE `Property` = 'SecureCustomProperties'"); err != nil {
		return nil, err
	}
	// Self-update leaves the previous exe as lanebridge-agent.exe.old beside it (and an
	// interrupted swap selfupdate's .lanebridge-agent.exe.new): not the MSI's files, so uninstall
	// removes them explicitly (RemoveFile, InstallMode 2: on uninstall; wixl 0.101 has no
	// RemoveFile element) and the Program Files folder goes too.
	if err := tool(dir, "msibuild", msi, "-q", "INSERT INTO `RemoveFile` (`FileKey`, `Component_`, `FileName`, `DirProperty`, `InstallMode`) VALUES ('RemoveOldExe', 'AgentExe', 'lanebridge-agent.exe.old', 'INSTALLDIR', 2)"); err != nil {
		return nil, err
	}
	if err := tool(dir, "msibuild", msi, "-q", "INSERT INTO `RemoveFile` (`FileKey`, `Component_`, `FileName`, `DirProperty`, `InstallMode`) VALUES ('RemoveNewExe', 'AgentExe', '.lanebridge-agent.exe.new', 'INSTALLDIR', 2)"); err != nil {
		return nil, err
	}
	if err := sign(o, msi, "Lanebridge store agent installer"); err != nil {
		return nil, err
	}
	return []string{zipName, msiName}, copyFile(msi, filepath.Join(o.out, msiName), 0o644)
}

// sign signs a Windows .exe or .msi in place with osslsigncode, if a key was given.
func sign(o options, path, desc string) error {
	if o.signKey == "" {
		return nil
	}
	args := []string{"sign", "-certs", o.signCert, "-key", o.signKey, "-n", desc, "-h", "sha256"}
	if o.signPassFile != "" {
		args = append(args, "-readpass", o.signPassFile)
	}
	signed := path + ".signed"
	if err := tool("", "osslsigncode", append(args, "-in", path, "-out", signed)...); err != nil {
		return err
	}
	return os.Rename(signed, path)
}

func tool(dir, name string, args ...string) error {
	if _, err := exec.LookPath(name); err != nil {
		pkg := map[string]string{"wixl": "wixl", "msibuild": "msitools", "osslsigncode": "osslsigncode"}[name]
		return fmt.Errorf("%s not found: apt-get install %s", name, pkg)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, out)
	}
	return nil
}

func writeFile(path string, fill func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// writeSums writes SHA256SUMS in sha256sum's format (sha256sum -c SHA256SUMS checks it).
func writeSums(dir string, names []string) error {
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), n)
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}
