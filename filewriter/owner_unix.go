//go:build unix

package filewriter

import (
	"io/fs"
	"syscall"
)

// owner returns the uid and gid of fi where the platform reports them.
func owner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
