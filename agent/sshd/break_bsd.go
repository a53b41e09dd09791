//go:build unix && !linux

package sshd

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// sendBreak sends a BREAK on the terminal whose master is ptmx, as
// tcsendbreak does on the BSDs: set the break condition, hold it a quarter
// of a second, clear it.
func sendBreak(ptmx *os.File) error {
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetInt(fd, unix.TIOCSBRK, 0); err != nil {
		return err
	}
	time.Sleep(250 * time.Millisecond)
	return unix.IoctlSetInt(fd, unix.TIOCCBRK, 0)
}
