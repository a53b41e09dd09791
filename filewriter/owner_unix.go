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

// probeNew describes the new, still untouched file f (see newFile).
func probeNew(f file) (newFile, bool) {
	if d, isFd := f.(interface{ descriptor() uintptr }); isFd {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(d.descriptor()), &st); err != nil {
			return newFile{}, false
		}
		has, err := hasXattrs(int(d.descriptor()))
		if err != nil {
			return newFile{}, false
		}
		return newFile{uid: int(st.Uid), gid: int(st.Gid), mode: fs.FileMode(st.Mode).Perm(), xattrs: has}, true
	}
	// An afero file: Stat, with no extended attributes to know of.
	if sf, canStat := f.(interface{ Stat() (fs.FileInfo, error) }); canStat {
		if fi, err := sf.Stat(); err == nil {
			if uid, gid, ok := owner(fi); ok {
				return newFile{uid: uid, gid: gid, mode: fi.Mode().Perm()}, true
			}
		}
	}
	return newFile{}, false
}
