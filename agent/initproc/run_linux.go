//go:build linux

package initproc

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwarded are the signals Run passes on to the child.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// Run starts cfg's program, reaps every child until that one is reaped and
// returns its exit status (see the package doc). An error means the program
// could not be started.
func Run(cfg Config) (int, error) {
	if err := cfg.validate(); err != nil {
		return 0, err
	}
	// Best effort: as PID 1 the kernel reparents orphans here anyway.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	// Listen before starting, so no SIGCHLD or SIGTERM is missed.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, forwarded...)...)
	defer signal.Stop(sigs)

	cmd := exec.Command(cfg.Path)
	cmd.Args = cfg.Args
	cmd.Env = cfg.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = cfg.ExtraFiles
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("initproc: start %s: %w", cfg.Path, err)
	}
	// cmd.Wait is never called: reap below collects the child's status.
	child := cmd.Process.Pid
	for {
		if code, done := reap(child); done {
			return code, nil
		}
		sig := <-sigs
		if sig == syscall.SIGCHLD {
			continue
		}
		_ = syscall.Kill(child, sig.(syscall.Signal))
	}
}

// reap collects every child that has exited and reports child's exit code
// once child is among them.
func reap(child int) (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD, or nothing exited yet
			return 0, false
		}
		if pid == child {
			code = exitCode(ws.Exited(), ws.ExitStatus(), ws.Signaled(), int(ws.Signal()))
			// Collect the orphans that exited with it, then report.
			for {
				p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if err == syscall.EINTR {
					continue
				}
				if err != nil || p <= 0 {
					break
				}
			}
			return code, true
		}
	}
}
