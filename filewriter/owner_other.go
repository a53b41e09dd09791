//go:build !unix

package filewriter

import "io/fs"

// owner reports no owner: Windows files carry ACLs, which rename keeps.
func owner(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

// probeNew knows nothing off Unix: every attribute is set as asked.
func probeNew(file) (newFile, bool) { return newFile{}, false }
