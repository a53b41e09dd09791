//go:build linux

package filewriter

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"

	"github.com/spf13/afero"
	"golang.org/x/sys/unix"
)

// openUnnamed creates, with O_TMPFILE, a file in dir that has no name: it
// is written and given its attributes before any name points at it, so an
// agent killed meanwhile leaves nothing behind. ok is false where the
// filesystem, the kernel or the Fs cannot (then a named temporary file is
// used), and once linking has been seen to be impossible (see linkUnnamed).
func (w *Writer) openUnnamed(dir string) (f file, ok bool) {
	if _, osFs := w.cfg.Fs.(*afero.OsFs); !osFs || w.noTmpfile.Load() {
		return nil, false
	}
	for {
		fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, newFileMode)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// EOPNOTSUPP, or EISDIR from a kernel without O_TMPFILE; and a
			// real failure (EACCES) is reported by the named path below.
			return nil, false
		}
		return &fdFile{fd: fd, name: path.Join(dir, "(unnamed)")}, true
	}
}

// errNoLink means an unnamed file could not be given a name by this
// process at all: no /proc and no CAP_DAC_READ_SEARCH, or a filesystem or
// security module that refuses the link.
var errNoLink = errors.New("cannot link an O_TMPFILE file")

// linkUnnamed gives the unnamed file f in dir a temporary name and returns
// it. Through /proc/self/fd it needs no privilege; without /proc, linkat's
// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH. When linking is refused as such
// (linkRefused), it remembers that and returns errNoLink: the caller then
// writes through a named temporary file, now and from then on. Other
// failures (no space, the directory removed meanwhile) fail this write.
func (w *Writer) linkUnnamed(f file, dir string) (string, error) {
	for range 5 {
		name := tempName(dir)
		var lerr error
		ok, cerr := withDescriptor(f, func(fd uintptr) {
			lerr = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(fd)), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
			if errors.Is(lerr, unix.ENOENT) {
				if _, serr := os.Stat("/proc/self/fd"); serr != nil {
					lerr = unix.Linkat(int(fd), "", unix.AT_FDCWD, name, unix.AT_EMPTY_PATH)
					if errors.Is(lerr, unix.ENOENT) {
						lerr = errNoLink
					}
				}
			}
		})
		switch {
		case !ok:
			return "", errNoLink
		case cerr != nil:
			return "", cerr
		case errors.Is(lerr, unix.EEXIST):
			continue
		case errors.Is(lerr, errNoLink) || linkRefused(lerr):
			w.noTmpfile.Store(true)
			return "", errNoLink
		case lerr != nil:
			return "", &os.LinkError{Op: "link", Old: "(unnamed)", New: name, Err: lerr}
		}
		return name, nil
	}
	return "", fmt.Errorf("could not name a temporary file in %s", dir)
}

// linkRefused reports whether a linkat error says this process may never
// name an unnamed file here, as opposed to a failure of this one write.
func linkRefused(err error) bool {
	for _, e := range []error{unix.EPERM, unix.EACCES, unix.EOPNOTSUPP, unix.EXDEV, unix.EINVAL} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
