//go:build windows

package filewriter

import (
	"fmt"

	"github.com/courierhq/courier/internal/ownerfile"
)

// windowsACL gives the closed temporary file tmp its DACL, by path: the
// target p's (see ownerfile.CopyACL) when it exists, else an owner-only one
// (see ownerfile.Restrict). It returns why, if the target's DACL cannot be
// kept (the caller then writes in place), or an error that fails the write.
func windowsACL(tmp, p string, exists bool) (why string, err error) {
	if !exists {
		return "", ownerfile.Restrict(tmp)
	}
	if err := ownerfile.CopyACL(p, tmp); err != nil {
		return fmt.Sprintf("the agent may not give a replacement the existing file's DACL (%v)", err), nil
	}
	return "", nil
}
