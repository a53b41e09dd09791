package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

var (
	// errNoTerminal is returned when a prompt is needed but stdin is not a
	// terminal.
	errNoTerminal = errors.New("stdin is not a terminal")
	// errInputTooLarge is returned when stdin holds more than a command reads.
	errInputTooLarge = errors.New("input too large")
)

// maxStdinBytes bounds what any command reads from stdin: larger than every
// secret and import the server accepts, so the server gives the precise error.
const maxStdinBytes = 4 << 20

// fdOf returns the file descriptor behind r, if r is an *os.File.
func fdOf(r any) (int, bool) {
	f, ok := r.(*os.File)
	if !ok || f == nil {
		return 0, false
	}
	return int(f.Fd()), true
}

// isTerminal reports whether r is a terminal.
func isTerminal(r any) bool {
	fd, ok := fdOf(r)
	return ok && term.IsTerminal(fd)
}

// stdinKind classifies the command's stdin.
type stdinKind int

const (
	stdinTerminal stdinKind = iota // an interactive terminal
	stdinNone                      // nothing to read: /dev/null or another device
	stdinData                      // a pipe, FIFO, socket or regular file: read it
)

// classifyStdin decides how stdin may be used. A reader that is not an
// *os.File (tests driving cobra in-process) counts as data.
func classifyStdin(r io.Reader) stdinKind {
	f, ok := r.(*os.File)
	if !ok {
		return stdinData
	}
	if term.IsTerminal(int(f.Fd())) {
		return stdinTerminal
	}
	fi, err := f.Stat()
	if err != nil {
		return stdinNone
	}
	if fi.Mode()&os.ModeCharDevice != 0 || fi.Mode()&os.ModeDevice != 0 {
		return stdinNone
	}
	return stdinData
}

// stdinPending reports whether stdin visibly holds a value nobody will
// read: a regular file with bytes left, or a pipe with bytes waiting
// (pipeHasData, after at most pendingWait). A terminal, a device and an
// idle or closed pipe hold none. A reader that is not an *os.File (tests
// driving cobra in-process) holds one when it says it has bytes (Len).
func stdinPending(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		l, ok := r.(interface{ Len() int })
		return ok && l.Len() > 0
	}
	if classifyStdin(f) != stdinData {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	if fi.Mode().IsRegular() {
		at, err := f.Seek(0, io.SeekCurrent)
		return err == nil && fi.Size() > at
	}
	return pipeHasData(f, pendingWait)
}

// pendingWait is how long stdinPending waits for a pipe's writer: enough
// for a command that prints at once (echo, cat, printf), short enough that
// a script whose stdin is an idle pipe (ssh, CI) is not slowed much.
const pendingWait = 150 * time.Millisecond

// readAllStdin reads stdin to EOF, verbatim, refusing more than
// maxStdinBytes.
func readAllStdin(r io.Reader) (string, error) { return readAllLimited(r, "stdin") }

// readAllLimited reads r (named what in errors) to EOF, verbatim, refusing
// more than maxStdinBytes.
func readAllLimited(r io.Reader, what string) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxStdinBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	if len(data) > maxStdinBytes {
		return "", fmt.Errorf("%w: %s holds more than %d bytes", errInputTooLarge, what, maxStdinBytes)
	}
	return string(data), nil
}

// promptSecret asks for a value on the terminal without echo. The prompt
// goes to stderr so stdout stays clean for scripts.
func promptSecret(cmd *cobra.Command, prompt string) (string, error) {
	fd, ok := fdOf(cmd.InOrStdin())
	if !ok || !term.IsTerminal(fd) {
		return "", fmt.Errorf("%w: cannot prompt for %s", errNoTerminal, strings.TrimSuffix(prompt, ": "))
	}
	fmt.Fprint(cmd.ErrOrStderr(), prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read %s: %w", strings.TrimSuffix(prompt, ": "), err)
	}
	return string(b), nil
}

// promptLine asks for one visible line on the terminal.
func promptLine(cmd *cobra.Command, prompt string) (string, error) {
	if !isTerminal(cmd.InOrStdin()) {
		return "", fmt.Errorf("%w: cannot prompt for %s", errNoTerminal, strings.TrimSuffix(prompt, ": "))
	}
	fmt.Fprint(cmd.ErrOrStderr(), prompt)
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read %s: %w", strings.TrimSuffix(prompt, ": "), err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// promptNewPassword asks twice and checks both entries match.
func promptNewPassword(cmd *cobra.Command) (string, error) {
	p1, err := promptSecret(cmd, "Password: ")
	if err != nil {
		return "", err
	}
	p2, err := promptSecret(cmd, "Confirm password: ")
	if err != nil {
		return "", err
	}
	if p1 != p2 {
		return "", errors.New("passwords do not match")
	}
	return p1, nil
}

// readPasswordStdin reads a password from stdin for --password-stdin: one
// line, the trailing newline (and a CR before it) removed, as docker login
// does. A password is typed, not a file, so this is not R10's verbatim rule.
func readPasswordStdin(cmd *cobra.Command) (string, error) {
	if classifyStdin(cmd.InOrStdin()) == stdinTerminal {
		return promptSecret(cmd, "Password: ")
	}
	s, err := readAllStdin(cmd.InOrStdin())
	if err != nil {
		return "", err
	}
	s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	if s == "" {
		return "", errors.New("--password-stdin: stdin is empty")
	}
	return s, nil
}

// confirm asks a yes/no question on the terminal; only "y" or "yes" agree.
func confirm(cmd *cobra.Command, question string) (bool, error) {
	ans, err := promptLine(cmd, question+" [y/N]: ")
	if err != nil {
		return false, err
	}
	ans = strings.ToLower(strings.TrimSpace(ans))
	return ans == "y" || ans == "yes", nil
}

// confirmDelete is every delete command's guard: true to go ahead. With
// --yes (yes) it asks nothing; on a terminal it asks question; without a
// terminal it refuses, so a script never deletes by accident. A "no" is
// (false, nil), after saying "Not deleted.".
func confirmDelete(cmd *cobra.Command, yes bool, kind, name, question string) (bool, error) {
	if yes {
		return true, nil
	}
	if !isTerminal(cmd.InOrStdin()) {
		return false, fmt.Errorf("refusing to delete %s %q without confirmation: stdin is not a terminal; pass --yes", kind, name)
	}
	ok, err := confirm(cmd, question)
	if err != nil || !ok {
		if err == nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "Not deleted.")
		}
		return false, err
	}
	return true, nil
}
