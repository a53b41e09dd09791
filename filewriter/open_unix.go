//go:build unix

package filewriter

import (
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/spf13/afero"
)

// openFile is w.cfg.Fs.OpenFile, with a shorter path for afero.OsFs: the
// file is opened with open(2) and used as a bare descriptor (fdFile).
// os.OpenFile instead offers every regular file to epoll, is refused, and
// switches the descriptor's mode there and back (five system calls more
// per open), and an *os.File sets and clears a finalizer; a write of fifty
// small files pays for both a hundred times over.
func (w *Writer) openFile(name string, flag int, perm fs.FileMode) (file, error) {
	if _, ok := w.cfg.Fs.(*afero.OsFs); !ok {
		return w.cfg.Fs.OpenFile(name, flag, perm)
	}
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &fdFile{fd: fd, name: name}, nil
	}
}

// rename is w.cfg.Fs.Rename, and for afero.OsFs rename(2) itself:
// os.Rename first lstats the target to refuse a directory there, which
// write has already done.
func (w *Writer) rename(from, to string) error {
	if _, ok := w.cfg.Fs.(*afero.OsFs); !ok {
		return w.cfg.Fs.Rename(from, to)
	}
	if err := syscall.Rename(from, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// fdFile is an open file as a bare descriptor, with no finalizer: whoever
// opens one closes it. It implements file and handleAttrs, and reports
// errors as *fs.PathError like *os.File does.
type fdFile struct {
	fd   int
	name string
}

func (f *fdFile) descriptor() uintptr { return uintptr(f.fd) }

func (f *fdFile) err(op string, err error) error {
	return &fs.PathError{Op: op, Path: f.name, Err: err}
}

// Read reads like *os.File: 0, io.EOF at the end.
func (f *fdFile) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(f.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, f.err("read", err)
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes all of p, or returns why not.
func (f *fdFile) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := syscall.Write(f.fd, p[done:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return done, f.err("write", err)
		}
		if n == 0 {
			return done, f.err("write", io.ErrShortWrite)
		}
		done += n
	}
	return done, nil
}

// Sync is fsync(2).
func (f *fdFile) Sync() error {
	for {
		err := syscall.Fsync(f.fd)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return f.err("sync", err)
		}
		return nil
	}
}

// Close closes the descriptor once; a second Close fails.
func (f *fdFile) Close() error {
	if f.fd < 0 {
		return f.err("close", fs.ErrClosed)
	}
	err := syscall.Close(f.fd)
	f.fd = -1
	if err != nil {
		return f.err("close", err)
	}
	return nil
}

// Chmod is fchmod(2).
func (f *fdFile) Chmod(mode fs.FileMode) error {
	if err := syscall.Fchmod(f.fd, uint32(mode.Perm())); err != nil {
		return f.err("chmod", err)
	}
	return nil
}

// Chown is fchown(2).
func (f *fdFile) Chown(uid, gid int) error {
	if err := syscall.Fchown(f.fd, uid, gid); err != nil {
		return f.err("chown", err)
	}
	return nil
}
