package update

import (
	"os/exec"
	"syscall"
)

// trialSysProc makes the kernel kill a trial child whose parent dies (SIGKILL, OOM): a broken
// release that ignores its closed stdin must not outlive the agent and hold the spool. (Go does
// not end the threads that fork children, so the signal follows the process's death.)
func trialSysProc(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
