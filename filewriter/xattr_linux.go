//go:build linux

package filewriter

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// copyXattrs gives the open file dst exactly the extended attributes of
// the file at src: the POSIX ACL (system.posix_acl_access), the SELinux
// label (security.selinux) and any user.* or other attribute the process
// can read. An attribute dst already holds with the same value is left
// alone (so a label the policy already gave it needs no relabel
// permission); one dst holds that src does not (an ACL inherited from the
// directory's default ACL) is removed. dst is changed through its handle
// (an *os.File), so its path is not walked again.
//
// A filesystem without xattr support (ENOTSUP) has nothing to copy: nil. Any
// other failure is returned, naming the attribute: the caller then does not
// use dst, so no attribute is dropped silently.
//
// bare says dst is known to have no attributes (see newFile), so it is not
// listed.
func copyXattrs(src string, dst file, bare bool) error {
	var cerr error
	ok, err := withDescriptor(dst, func(h uintptr) { cerr = copyXattrsTo(src, int(h), bare) })
	switch {
	case !ok:
		return fmt.Errorf("the new file has no handle to set extended attributes through")
	case err != nil:
		return err
	}
	return cerr
}

func copyXattrsTo(src string, fd int, bare bool) error {
	want, err := readXattrs(
		func(b []byte) (int, error) { return unix.Listxattr(src, b) },
		func(name string, b []byte) (int, error) { return unix.Getxattr(src, name, b) })
	if errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading extended attributes: %w", err)
	}
	have := map[string][]byte{}
	if !bare {
		have, err = readXattrs(
			func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
			func(name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
		if err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("reading extended attributes of the new file: %w", err)
		}
	}
	for name, v := range want {
		if cur, ok := have[name]; ok && bytes.Equal(cur, v) {
			continue
		}
		if err := unix.Fsetxattr(fd, name, v, 0); err != nil {
			return fmt.Errorf("setting extended attribute %s: %w", name, err)
		}
	}
	for name := range have {
		if _, ok := want[name]; ok {
			continue
		}
		if err := unix.Fremovexattr(fd, name); err != nil && !errors.Is(err, unix.ENODATA) {
			return fmt.Errorf("removing extended attribute %s: %w", name, err)
		}
	}
	return nil
}

// readXattrs returns every extended attribute the process may list with
// list, each with its value from get. An attribute removed between list and
// get is skipped.
func readXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error)) (map[string][]byte, error) {
	names, err := xattrCall(list)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(string(names), "\x00") {
		if name == "" {
			continue
		}
		v, err := xattrCall(func(b []byte) (int, error) { return get(name, b) })
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

// xattrCall runs a size-then-fill xattr call, retrying when the value grew
// between the two (ERANGE).
func xattrCall(call func([]byte) (int, error)) ([]byte, error) {
	for range 5 {
		n, err := call(nil)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, nil
		}
		b := make([]byte, n)
		n, err = call(b)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return b[:n], nil
	}
	return nil, unix.ERANGE
}

// hasXattrs reports whether the open file fd has any extended attribute
// the process can list. A filesystem without them has none.
func hasXattrs(fd int) (bool, error) {
	n, err := unix.Flistxattr(fd, nil)
	if errors.Is(err, unix.ENOTSUP) {
		return false, nil
	}
	return n > 0, err
}
