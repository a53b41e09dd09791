//go:build unix

package spawn

import (
	"os/exec"
	"syscall"
)

// groupSysProcAttr makes the child lead its own process group, so a stop
// reaches everything it started.
func groupSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// terminate sends SIGTERM to cmd's process group (the child leads it, by
// Setpgid or Setsid), falling back to the process alone.
func terminate(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err == nil {
		return nil
	}
	return cmd.Process.Signal(syscall.SIGTERM)
}

// setCmdLine: Unix passes argv as is; ShellArgs gives no command line here.
func setCmdLine(*exec.Cmd, string) {}
