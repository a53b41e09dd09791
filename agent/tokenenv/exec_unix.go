//go:build unix

package tokenenv

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// reexec replaces this process's image with a new one of the same binary
// that finds the token on an inherited pipe (steps 1-3 of the package doc).
// It returns only on failure.
func reexec(token string) error {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	r, w, err := os.Pipe() // (1)
	if err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	defer r.Close()
	_, err = w.Write([]byte(token)) // a token is far below the pipe's buffer
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the token pipe: %w", err)
	}
	fd := int(r.Fd())
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil { // (2)
		return fmt.Errorf("keep the token pipe across exec: %w", err)
	}
	env := environWithout(os.Environ(), EnvToken, EnvTokenFD+"="+strconv.Itoa(fd))
	err = syscall.Exec(exe, os.Args, env) // (3)
	runtime.KeepAlive(r)
	return fmt.Errorf("re-execute %s: %w", exe, err)
}
