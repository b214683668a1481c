package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to send the target SIGTERM if bench dies
// without stopping it (SIGKILL, a crash), so that no target outlives the
// run holding its port and its CPU.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
