//go:build !unix

package filewriter

import "io/fs"

// owner reports no owner: Windows files carry ACLs, which rename keeps.
func owner(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

// openOwner reports no owner: Windows files carry ACLs.
func openOwner(file) (uid, gid int, ok bool) { return 0, 0, false }
