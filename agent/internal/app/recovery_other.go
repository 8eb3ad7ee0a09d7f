//go:build !windows

package app

// windowsRecovery is a no-op off Windows: the systemd unit carries the restart policy.
func windowsRecovery(string) error { return nil }

// msiServiceSetup is a no-op off Windows (there is no MSI).
func msiServiceSetup(string) error { return nil }

// msiProtect is a no-op off Windows (msi-configure writes the config 0600 there).
func msiProtect(string) error { return nil }
