package installers_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebLifecycle installs, self-updates, upgrades, removes and purges the agent's .deb with
// the real dpkg, as root, in a throwaway copy-on-write root: an overlay of this machine's root
// filesystem (its dpkg database included) in a private mount namespace, discarded afterwards, so
// nothing here is changed. The self-update is done the way github.com/minio/selfupdate does it
// (a new file beside the binary, the binary renamed to .old, the new one renamed in), as the
// service user: the packaged folder must let it. Then:
//   - dpkg --verify reports the swapped binary as modified (expected: it is not the package's);
//   - an upgrade to the next package version puts the package's binary back (the self-updated
//     one is replaced: acceptable, the hub offers its release again) and keeps the folder writable;
//   - removal stops and disables the service, removes the folder with self-update's leftovers
//     (no dpkg "not empty" warning), the /usr/bin link and the unit, and leaves no [Install] link
//     pointing at a missing unit; config and data stay; purge drops the config, never the data.
func TestDebLifecycle(t *testing.T) {
	build(t)
	need(t, "dpkg", "unshare", "setpriv", "chroot", "mount")
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("CI: TestDebLifecycle needs root (dpkg -i in an overlay root)")
		}
		t.Skip("needs root: dpkg -i in an overlay root")
	}
	if out, err := exec.Command("unshare", "-m", "true").CombinedOutput(); err != nil {
		if ci {
			t.Fatalf("CI: cannot make a private mount namespace (unshare -m): %v %s", err, out)
		}
		t.Skipf("cannot make a private mount namespace (unshare -m): %v %s", err, out)
	}
	// The next version's package: the same binaries, packaged as 7.8.10.
	next := t.TempDir()
	if _, err := run("..", nil, "go", "run", "./installers/pkg", "--version", "v7.8.10", "--bin", bins, "--out", next,
		"--targets", "agent/linux/amd64", "--release-keys", releaseKey); err != nil {
		t.Fatal(err)
	}
	w := t.TempDir()
	pkgs := filepath.Join(w, "pkgs")
	if err := os.MkdirAll(pkgs, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{
		filepath.Join(dist, "lanebridge-agent_"+pkgVersion+"-1_amd64.deb"): "v1.deb",
		filepath.Join(next, "lanebridge-agent_7.8.10-1_amd64.deb"):         "v2.deb",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkgs, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(w, "lifecycle.sh")
	if err := os.WriteFile(script, []byte(lifecycle), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", script, w).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("lifecycle: %v", err)
	}
	if strings.Contains(string(out), "not empty so not removed") {
		t.Error("dpkg left a directory behind")
	}
	if !strings.HasSuffix(strings.TrimSpace(string(out)), "lifecycle: ok") {
		t.Error("the lifecycle script did not finish")
	}
}

// lifecycle runs in the private mount namespace; $1 is the work folder (pkgs/ holds the debs).
const lifecycle = `set -eu
W=$1
mkdir -p "$W/upper" "$W/work" "$W/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/upper,workdir=$W/work" "$W/root"
mount --bind /dev "$W/root/dev"
mount -t proc proc "$W/root/proc"
mkdir -p "$W/root/lbtest" && mount --bind "$W/pkgs" "$W/root/lbtest"
chroot "$W/root" sh -eu -c '
fail() { echo "lifecycle: FAILED: $*"; exit 1; }
B=/usr/lib/lanebridge-agent/bin
echo "== install"
dpkg -i /lbtest/v1.deb
[ -L /usr/bin/lanebridge-agent ] || fail "/usr/bin/lanebridge-agent is not a link"
[ "$(stat -c "%U:%G %a" $B)" = "root:lanebridge 775" ] || fail "$B is $(stat -c "%U:%G %a" $B), want root:lanebridge 775"
[ -e /etc/systemd/system/multi-user.target.wants/lanebridge-agent.service ] || fail "not enabled"
lanebridge-agent version | grep -q "^lanebridge-agent v7.8.9-3-gabc1234 " || fail "version"
echo "== self-update, as the service user, the way minio/selfupdate swaps"
setpriv --reuid=lanebridge --regid=lanebridge --init-groups sh -eu -c "
  { cat $B/lanebridge-agent; echo self-updated; } > $B/.lanebridge-agent.new
  chmod 0755 $B/.lanebridge-agent.new
  mv $B/lanebridge-agent $B/lanebridge-agent.old
  mv $B/.lanebridge-agent.new $B/lanebridge-agent"
tail -c 13 $B/lanebridge-agent | grep -q self-updated || fail "swap"
lanebridge-agent version >/dev/null || fail "the swapped binary does not run"
dpkg --verify lanebridge-agent | grep -q "^..5...... *$B/lanebridge-agent$" || fail "dpkg --verify does not see the swapped binary"
echo "== upgrade"
dpkg -i /lbtest/v2.deb
[ "$(dpkg-query -W -f="\${Version}" lanebridge-agent)" = "7.8.10-1" ] || fail "not upgraded"
if tail -c 13 $B/lanebridge-agent | grep -q self-updated; then fail "upgrade kept the self-updated binary"; fi
dpkg --verify lanebridge-agent || fail "after the upgrade the files are not the package'"'"'s"
[ "$(stat -c "%U:%G %a" $B)" = "root:lanebridge 775" ] || fail "after upgrade $B is $(stat -c "%U:%G %a" $B)"
lanebridge-agent version >/dev/null || fail "upgraded binary"
echo "== remove"
mkdir -p /var/lib/lanebridge-agent && echo spool > /var/lib/lanebridge-agent/spool.db
dpkg -r lanebridge-agent
[ ! -e $B ] && [ ! -e /usr/lib/lanebridge-agent ] || fail "left: $(ls -la /usr/lib/lanebridge-agent $B 2>&1)"
[ ! -e /usr/bin/lanebridge-agent ] && [ ! -L /usr/bin/lanebridge-agent ] || fail "/usr/bin link left"
[ ! -e /usr/lib/systemd/system/lanebridge-agent.service ] || fail "unit left"
[ ! -L /etc/systemd/system/multi-user.target.wants/lanebridge-agent.service ] || fail "a dangling [Install] link is left"
[ -f /etc/lanebridge/agent.yaml ] || fail "removal dropped the config"
[ "$(cat /var/lib/lanebridge-agent/spool.db)" = spool ] || fail "removal touched the data"
echo "== purge"
dpkg -P lanebridge-agent
[ ! -e /etc/lanebridge/agent.yaml ] || fail "purge kept the config"
[ "$(cat /var/lib/lanebridge-agent/spool.db)" = spool ] || fail "purge touched the data"
'
echo "lifecycle: ok"
`
