package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// closeInheritedOnExec marks every descriptor above stderr that this
// process inherited (from a shell, a supervisor, a container runtime) as
// close-on-exec, so that no session, script or app the agent starts gets
// it: sshd closes them for its sessions too (closefrom). The Go runtime
// opens its own descriptors close-on-exec already; what a child needs is
// passed explicitly.
func closeInheritedOnExec() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		unix.CloseOnExec(fd)
	}
}
