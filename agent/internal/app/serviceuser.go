package app

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/lanebridge/lanebridge/agent/internal/config"
)

// serviceUser is the system user (and group) the systemd unit runs the agent as; systemd.tmpl
// and the packages' postinstall (installers/linux) name it too.
const serviceUser = "lanebridge"

// hostOps is what preparing the service user does to the machine; tests replace it.
type hostOps struct {
	lookup func(name string) (*user.User, error)
	run    func(name string, args ...string) error
	chown  func(path string, uid, gid int) error
	chmod  func(path string, mode os.FileMode) error
}

var realHost = hostOps{
	lookup: user.Lookup,
	run: func(name string, args ...string) error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, out)
		}
		return nil
	},
	chown: os.Chown,
	chmod: os.Chmod,
}

// prepareServiceUser, for a systemd install as root, creates the lanebridge system user if
// missing and gives it data_dir (created if missing) and the files holding its secrets (the
// config and hub.password_file), so the unit's User= can run the agent. binDir, when not "", is
// the binary's own folder: it gets group lanebridge and mode 0775 (its owner unchanged) so
// self-update can swap the binary there.
func prepareServiceUser(h hostOps, cfgPath string, cfg *config.Config, binDir string, stdout io.Writer) error {
	u, err := h.lookup(serviceUser)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		if err := h.run("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", serviceUser); err != nil {
			return fmt.Errorf("create the %s system user: %w", serviceUser, err)
		}
		fmt.Fprintf(stdout, "created system user %s\n", serviceUser)
		u, err = h.lookup(serviceUser)
	}
	if err != nil {
		return fmt.Errorf("look up the %s user: %w", serviceUser, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("user %s: %w", serviceUser, err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("config key data_dir: cannot create %s: %w", cfg.DataDir, err)
	}
	err = filepath.WalkDir(cfg.DataDir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return h.chown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("config key data_dir: give %s to %s: %w", cfg.DataDir, serviceUser, err)
	}
	for _, p := range []string{cfgPath, cfg.Hub.PasswordFile} {
		if p == "" {
			continue
		}
		if err := h.chown(p, uid, gid); err != nil {
			return fmt.Errorf("give %s to %s: %w", p, serviceUser, err)
		}
	}
	fmt.Fprintf(stdout, "%s owns %s and %s\n", serviceUser, cfg.DataDir, cfgPath)
	if binDir != "" {
		if err := h.chown(binDir, -1, gid); err != nil {
			return fmt.Errorf("give %s to group %s (self-update): %w", binDir, serviceUser, err)
		}
		if err := h.chmod(binDir, 0o775); err != nil {
			return fmt.Errorf("make %s group-writable (self-update): %w", binDir, err)
		}
		fmt.Fprintf(stdout, "self-update may replace the binary in %s (group %s, 0775; writable in the unit)\n", binDir, serviceUser)
	}
	return nil
}
