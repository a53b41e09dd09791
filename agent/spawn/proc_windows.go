//go:build windows

package spawn

import (
	"os/exec"
	"syscall"
)

// groupSysProcAttr starts the child in a new process group.
func groupSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// terminate kills the process: Windows has no SIGTERM to send to a console
// process that is not attached to ours.
func terminate(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return cmd.Process.Kill()
}

// setCmdLine gives the child a verbatim command line (see ShellArgs).
func setCmdLine(cmd *exec.Cmd, line string) {
	if line != "" {
		cmd.SysProcAttr.CmdLine = line
	}
}
