package sshd

import (
	"os"

	"golang.org/x/sys/unix"
)

// sendBreak sends a BREAK on the terminal whose master is ptmx
// (tcsendbreak(ptmx, 0), as sshd's session_break_req does).
func sendBreak(ptmx *os.File) error {
	return unix.IoctlSetInt(int(ptmx.Fd()), unix.TCSBRK, 0)
}
