package filewriter

import (
	"io"
	"io/fs"
	"syscall"
)

// file is what the writer needs of an open file: an afero.File has it, and
// so has fdFile, the bare descriptor used on afero.OsFs (see openFile).
type file interface {
	io.Reader
	io.Writer
	Sync() error
	Close() error
}

// handleAttrs is what an open *os.File or fdFile offers: attribute changes
// by handle, with no second walk of the path.
type handleAttrs interface {
	Chmod(fs.FileMode) error
	Chown(uid, gid int) error
}

// withDescriptor runs fn with f's operating-system descriptor, for the
// calls (xattrs, linkat) that take one. ok is false for a file that has
// none, as on afero.MemMapFs.
func withDescriptor(f file, fn func(fd uintptr)) (ok bool, err error) {
	switch h := f.(type) {
	case interface{ descriptor() uintptr }:
		fn(h.descriptor())
		return true, nil
	case syscall.Conn:
		rc, err := h.SyscallConn()
		if err != nil {
			return true, err
		}
		return true, rc.Control(fn)
	}
	return false, nil
}
