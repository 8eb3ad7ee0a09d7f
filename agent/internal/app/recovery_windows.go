//go:build windows

package app

import (
	"fmt"
	"time"

	"golang.org/x/sys/windows/svc/mgr"
)

// windowsRecovery replaces the single recovery action kardianos/service sets with restarts after
// 5 s, 10 s and 30 s (counter reset after an hour), and sets the flag that applies them also when
// the agent stops with an error without crashing (kardianos cannot set it).
func windowsRecovery(name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("open service %s: %w", name, err)
	}
	defer s.Close()
	acts := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 10 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
	}
	if err := s.SetRecoveryActions(acts, uint32(time.Hour/time.Second)); err != nil {
		return err
	}
	return s.SetRecoveryActionsOnNonCrashFailures(true)
}

// msiServiceSetup, for the service the MSI registered: the recovery actions of windowsRecovery
// and the delayed automatic start kardianos/service sets (the MSI's ServiceInstall cannot).
func msiServiceSetup(name string) error {
	if err := windowsRecovery(name); err != nil {
		return err
	}
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("open service %s: %w", name, err)
	}
	defer s.Close()
	c, err := s.Config()
	if err != nil {
		return err
	}
	c.DelayedAutoStart = true
	return s.UpdateConfig(c)
}
