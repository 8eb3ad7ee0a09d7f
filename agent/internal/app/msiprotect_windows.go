//go:build windows

package app

import (
	"fmt"
	"os/exec"
)

// msiProtect limits dir (ProgramData\Lanebridge: the config with the hub password, and the
// spool) to LocalSystem and Administrators: ProgramData otherwise lets every local user read
// it. SIDs, not names, so it works on any Windows language.
func msiProtect(dir string) error {
	out, err := exec.Command("icacls", dir, "/inheritance:r",
		"/grant:r", "*S-1-5-18:(OI)(CI)F", "/grant:r", "*S-1-5-32-544:(OI)(CI)F", "/T", "/Q").CombinedOutput()
	if err != nil {
		return fmt.Errorf("icacls %s: %w: %s", dir, err, out)
	}
	return nil
}
