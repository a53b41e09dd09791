//go:build windows

package filewriter

import "github.com/courierhq/courier/internal/ownerfile"

// copyXattrs keeps, on Windows, the target's DACL (see ownerfile.CopyACL).
func copyXattrs(src, dst string) error { return ownerfile.CopyACL(src, dst) }

// restrictNew gives a new file an owner-only DACL (see ownerfile.Restrict).
func restrictNew(p string) error { return ownerfile.Restrict(p) }
