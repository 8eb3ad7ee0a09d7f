package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// sharedDirs hold other programs or the system's files: the unit never makes one writable for
// the agent's self-update, since the service user could then rewrite everything in it.
var sharedDirs = []string{"/", "/bin", "/sbin", "/usr", "/usr/bin", "/usr/sbin", "/usr/local", "/usr/local/bin",
	"/usr/local/sbin", "/usr/lib", "/usr/libexec", "/usr/local/lib", "/usr/games", "/opt", "/etc", "/var",
	"/var/lib", "/tmp", "/var/tmp", "/root", "/home", "/srv"}

// packagedBinDir is where the .deb and .rpm install the agent (a folder of its own, group
// lanebridge, 0775, so self-update can swap the binary); /usr/bin/lanebridge-agent links to it.
const packagedBinDir = "/usr/lib/lanebridge-agent/bin"

// updateBinDir is the folder the unit makes writable so self-update (github.com/minio/selfupdate:
// a new file beside exe, exe renamed to exe.old, the new one renamed in) can replace exe: exe's
// own folder when that is a folder of its own. Otherwise dir is "" and why says what is wrong.
// inspect also reads the folder (service install, on the machine it installs on): it must hold
// nothing but the agent's files (lanebridge-agent*, selfupdate's .lanebridge-agent*).
func updateBinDir(exe string, inspect bool) (dir, why string) {
	dir = filepath.Dir(filepath.Clean(exe))
	for _, s := range sharedDirs {
		if dir == s {
			return "", fmt.Sprintf("%s is a shared system folder; the service user must not be able to write it", dir)
		}
	}
	if strings.ContainsAny(dir, " \t\n\r\"'\\{}%") {
		return "", fmt.Sprintf("%q contains a space, quote, backslash, brace or %%, which the unit's ReadWritePaths cannot carry", dir)
	}
	if !inspect {
		return dir, ""
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Sprintf("cannot read %s: %v", dir, err)
	}
	base := filepath.Base(exe)
	for _, e := range entries {
		if n := strings.TrimPrefix(e.Name(), "."); !strings.HasPrefix(n, base) {
			return "", fmt.Sprintf("%s also holds %s; the service user would be able to rewrite it", dir, e.Name())
		}
	}
	return dir, ""
}

// selfUpdateHint tells an operator how to give the agent a folder self-update can write.
func selfUpdateHint(exe, cfgPath, why string) string {
	return fmt.Sprintf("self-update will not be able to replace %s (%s); to allow it, put the agent in a folder of its own and install from there: "+
		"install -D -m 0755 %s /opt/lanebridge/bin/lanebridge-agent && /opt/lanebridge/bin/lanebridge-agent service install --config %s",
		exe, why, exe, cfgPath)
}

// executable is this binary's real path (symlinks resolved: /usr/bin/lanebridge-agent of the
// packages is a link into packagedBinDir), as kardianos/service and the updater see it.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(exe)
}
