//go:build unix

package sshd

import (
	"os/exec"
	"syscall"

	gliderssh "github.com/gliderlabs/ssh"
)

func init() {
	signals[gliderssh.SIGUSR1] = syscall.SIGUSR1
	signals[gliderssh.SIGUSR2] = syscall.SIGUSR2
}

// ttySysProcAttr starts a new session with the pty as its controlling
// terminal; the child leads its own process group, so group signals work.
func ttySysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Setctty: true}
}

// signalGroup sends sig to cmd's process group, or to the process alone.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		return cmd.Process.Signal(sig)
	}
	return nil
}
