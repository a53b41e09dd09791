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

// openOwner returns the owner and group of the open file f.
func openOwner(f file) (uid, gid int, ok bool) {
	if d, isFd := f.(interface{ descriptor() uintptr }); isFd {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(d.descriptor()), &st); err != nil {
			return 0, 0, false
		}
		return int(st.Uid), int(st.Gid), true
	}
	if sf, canStat := f.(interface{ Stat() (fs.FileInfo, error) }); canStat {
		if fi, err := sf.Stat(); err == nil {
			return owner(fi)
		}
	}
	return 0, 0, false
}
