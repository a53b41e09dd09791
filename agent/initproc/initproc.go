// Package initproc lets courier-agent be a container's first process (PID 1)
// the way tini is: it reaps every orphan the kernel hands to it and forwards
// the signals a container runtime sends to the one process it started.
//
// Reaping and exec.Cmd do not mix in one process: a reaper's wait4(-1)
// takes the exit status that exec.Cmd.Wait of the agent's spawner is
// waiting for. So the process that is PID 1 runs no agent: Run starts the
// agent again as its only child (same executable, arguments, environment
// and standard streams) and from then on only
//
//  1. reaps: on every SIGCHLD it calls wait4(-1, WNOHANG) until no child
//     is left to collect, the agent and orphans alike;
//  2. forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and
//     SIGWINCH to the agent (not to its process group, as tini without -g);
//  3. returns the agent's exit status when the agent is reaped: its exit
//     code, or 128+N when signal N ended it. Orphans still running then
//     are left to the runtime, which kills the container's processes when
//     PID 1 exits.
//
// The child is not PID 1, so it runs the agent as usual. Run also makes
// the process a child subreaper (prctl PR_SET_CHILD_SUBREAPER), which is
// what PID 1 is anyway and what lets the tests run it as an ordinary
// process.
package initproc

import (
	"errors"
	"fmt"
	"os"
)

// Config says what Run starts.
type Config struct {
	// Path is the executable to start; required.
	Path string
	// Args are its arguments, Args[0] included (as exec.Cmd.Args).
	Args []string
	// Env is its environment; nil means this process's.
	Env []string
	// ExtraFiles are inherited as descriptors 3, 4, ... (as exec.Cmd's).
	ExtraFiles []*os.File
}

// ErrNoPath is returned by Run for a Config without Path.
var ErrNoPath = errors.New("initproc: no executable to start")

// IsPID1 reports whether this process is PID 1 of its PID namespace.
func IsPID1() bool { return os.Getpid() == 1 }

// exitCode is the status Run returns for a wait status: the exit code, or
// 128 plus the signal that ended the process (a shell's convention, and
// tini's).
func exitCode(exited bool, code int, signaled bool, sig int) int {
	switch {
	case exited:
		return code
	case signaled:
		return 128 + sig
	default:
		return 1
	}
}

func (c Config) validate() error {
	if c.Path == "" {
		return ErrNoPath
	}
	if len(c.Args) == 0 {
		return fmt.Errorf("initproc: no arguments (Args[0] is the program name)")
	}
	return nil
}
