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

// ownsNew reports whether a file the process creates in the directory
// described by dir (nil: not known) gets owner uid and group gid by
// itself: the process's user, and its group or, in a set-group-ID
// directory, the directory's. Then no chown is needed.
func (w *Writer) ownsNew(dir fs.FileInfo, uid, gid int) bool {
	if dir == nil || uid != w.euid {
		return false
	}
	if dir.Mode()&fs.ModeSetgid != 0 {
		_, dg, ok := owner(dir)
		return ok && gid == dg
	}
	return gid == w.egid
}
