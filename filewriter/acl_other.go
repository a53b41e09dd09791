//go:build !windows

package filewriter

// windowsACL does nothing off Windows: mode, owner and extended attributes
// were set through the open file (see Writer.write).
func windowsACL(tmp, p string, exists bool) (why string, err error) { return "", nil }
