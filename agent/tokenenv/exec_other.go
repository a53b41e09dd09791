//go:build !unix

package tokenenv

import "errors"

// reexec is impossible without exec in place (Windows starts a new process
// with a new PID, which a service manager would not track).
func reexec(string) error {
	return errors.New("this OS cannot re-execute a process in place")
}
