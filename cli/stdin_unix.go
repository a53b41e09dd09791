//go:build unix

package cli

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pipeHasData reports whether the pipe, FIFO or socket f has bytes to read
// within wait: a writer that already wrote (`echo -n v |`) is seen, one
// that closed without writing or has not written yet is not. It never
// reads, so a caller that leaves stdin alone still can.
func pipeHasData(f *os.File, wait time.Duration) bool {
	fd := int(f.Fd())
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(wait.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 || fds[0].Revents&unix.POLLIN == 0 {
			return false
		}
		return bytesWaiting(fd)
	}
}
