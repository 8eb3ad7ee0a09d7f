//go:build !windows

package update

import (
	"fmt"
	"os"
	"syscall"
)

// handover replaces this process with target (same pid, so the service manager sees no
// restart). The caller's files are closed on exec (Go opens them close-on-exec).
func handover(target string, args []string) error {
	argv := append([]string{target}, args...)
	if err := syscall.Exec(target, argv, withoutTrialEnv(os.Environ())); err != nil {
		return fmt.Errorf("update: exec %s: %w", target, err)
	}
	return nil // not reached
}
