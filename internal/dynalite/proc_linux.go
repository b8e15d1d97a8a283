package dynalite

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill cmd if the test binary dies first.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
