package cli

import "golang.org/x/sys/unix"

// bytesWaiting tells a readable pipe that holds bytes from one at end of
// file (a writer that closed without writing), which poll reports alike.
func bytesWaiting(fd int) bool {
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
	return err == nil && n > 0
}
