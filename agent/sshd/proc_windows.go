//go:build windows

package sshd

import (
	"os"
	"os/exec"
	"syscall"
)

// ttySysProcAttr: Windows has no controlling terminals.
func ttySysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// signalGroup: Windows can only kill; other signals are ignored.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		return cmd.Process.Kill()
	}
	return nil
}

// sendBreak: Windows sessions have no pty (ConPTY has no BREAK).
func sendBreak(*os.File) error { return nil }
