//go:build windows

package update

// handover on Windows cannot replace the process: ErrRestart makes the caller exit non-zero
// and the service's recovery action (restart on failure) starts the new binary.
func handover(target string, args []string) error { return ErrRestart }
