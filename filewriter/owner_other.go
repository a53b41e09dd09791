//go:build !unix

package filewriter

import "io/fs"

// owner reports no owner: Windows files carry ACLs, which rename keeps.
func owner(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

// ownsNew reports false: there is no owner to compare.
func (w *Writer) ownsNew(fs.FileInfo, int, int) bool { return false }
