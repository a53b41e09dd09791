package cli

import (
	"errors"
	"fmt"
)

// exitStatusError carries an exit status the process must end with, such as
// the status of a remote command run by `courier ssh`.
type exitStatusError struct {
	code int
	msg  string
	// quiet: the status speaks for itself and nothing is printed (a
	// remote command's own failure, whose output already said why, as
	// ssh prints nothing for it).
	quiet bool
}

func (e *exitStatusError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// ExitCode maps an error returned by Execute to a process exit code: the
// status a command asked for (the remote status of `courier ssh`), else 1.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var es *exitStatusError
	if errors.As(err, &es) && es.code > 0 && es.code < 256 {
		return es.code
	}
	return 1
}

// Quiet reports whether err, returned by Execute, is only an exit status
// to end with: main prints nothing for it.
func Quiet(err error) bool {
	var es *exitStatusError
	return errors.As(err, &es) && es.quiet
}
