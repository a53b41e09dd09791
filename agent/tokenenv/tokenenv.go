// Package tokenenv takes the agent token out of the agent's environment.
//
// A variable removed with os.Unsetenv is gone from the Go runtime's copy of
// the environment, but not from the environment block the kernel set up at
// exec: /proc/<pid>/environ keeps showing it to every process of the same
// user for as long as the process lives. The only way to drop it from there
// is a new exec. So when the token comes from COURIER_AGENT_TOKEN, Take
// re-executes the agent once, in place (same PID, so systemd, Docker and
// any supervisor keep tracking it), with that variable removed and the token
// passed through an inherited pipe instead:
//
//  1. write the token into a new pipe and close the write end;
//  2. clear close-on-exec on the read end, so the new image inherits it;
//  3. exec this binary again with the same arguments and the environment
//     minus COURIER_AGENT_TOKEN plus COURIER_AGENT_TOKEN_FD=<read end's
//     number> (a number only, never the token);
//  4. the new image finds COURIER_AGENT_TOKEN_FD, reads the token, closes
//     the descriptor and unsets the variable. Finding it is also what stops
//     a second re-exec: there is at most one.
//
// Where exec in place does not exist (Windows), or if it fails, Take falls
// back to os.Unsetenv and says why: the token then stays readable in the
// process's initial environment (on Windows, by the same user through the
// process's PEB).
//
// A token taken this way is read once, at start: nothing is left to re-read
// it from. Rotating such an agent's token means restarting it with the new
// one; an agent given --token-file (COURIER_AGENT_TOKEN_FILE) re-reads the
// file at every reconnect and picks a rotated token up without a restart,
// which is why the file form is the one to use where tokens are rotated.
package tokenenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Environment variables Take reads.
const (
	// EnvToken holds the agent token given by environment.
	EnvToken = "COURIER_AGENT_TOKEN"
	// EnvTokenFD is set by Take for the re-executed image: the number of an
	// inherited descriptor the token can be read from. Internal; never set
	// it by hand.
	EnvTokenFD = "COURIER_AGENT_TOKEN_FD"
)

// maxTokenBytes bounds what is read from the descriptor.
const maxTokenBytes = 4096

// ErrNotDropped wraps the reason the token could not be dropped from the
// exec environment; the token returned alongside it is still valid.
var ErrNotDropped = errors.New("the agent token stays readable in this process's initial environment")

// Take returns the agent token given by environment, or "" when there is
// none, and leaves it in neither the Go environment nor (where it can) the
// kernel's copy of it. On Unix, when the token is in EnvToken, Take does not
// return: it re-executes the program (see the package doc), and the new
// image's Take returns the token. An error wrapping ErrNotDropped comes with
// a usable token; any other error comes with none.
func Take() (string, error) {
	if fd, ok := os.LookupEnv(EnvTokenFD); ok {
		_ = os.Unsetenv(EnvTokenFD)
		_ = os.Unsetenv(EnvToken) // if someone set both, the pipe wins
		return readFD(fd)
	}
	token, ok := os.LookupEnv(EnvToken)
	if !ok || token == "" {
		_ = os.Unsetenv(EnvToken)
		return "", nil
	}
	err := reexec(token) // returns only on failure
	_ = os.Unsetenv(EnvToken)
	return token, fmt.Errorf("%w: %w", ErrNotDropped, err)
}

// readFD reads the token from the inherited descriptor named by s and
// closes it.
func readFD(s string) (string, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 3 {
		return "", fmt.Errorf("%s=%q is not an inherited descriptor number", EnvTokenFD, s)
	}
	f := os.NewFile(uintptr(n), "agent-token-pipe")
	if f == nil {
		return "", fmt.Errorf("%s=%d is not a valid descriptor", EnvTokenFD, n)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("read the agent token from descriptor %d: %w", n, err)
	}
	if len(b) > maxTokenBytes {
		return "", fmt.Errorf("the agent token from descriptor %d is longer than %d bytes", n, maxTokenBytes)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("descriptor %d held no agent token", n)
	}
	return token, nil
}

// environWithout returns env without name and with extra appended.
func environWithout(env []string, name string, extra ...string) []string {
	out := make([]string, 0, len(env)+len(extra))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == name || k == EnvTokenFD {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}
