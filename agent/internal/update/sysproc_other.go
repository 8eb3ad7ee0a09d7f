//go:build !linux

package update

import "os/exec"

// trialSysProc: elsewhere the child stops when its stdin closes (the parent's death closes it);
// a Windows service stop or restart ends the service's processes.
func trialSysProc(*exec.Cmd) {}
