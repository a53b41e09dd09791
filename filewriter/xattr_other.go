//go:build !linux

package filewriter

// copyXattrs copies nothing outside Linux: there the Writer keeps mode and
// owner only, and on Windows the DACL (see windowsACL).
func copyXattrs(string, file, bool) error { return nil }

// hasXattrs reports none outside Linux.
func hasXattrs(int) (bool, error) { return false, nil }
