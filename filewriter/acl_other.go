//go:build !windows

package filewriter

// restrictNew does nothing off Windows: mode 0600 is the restriction.
func restrictNew(string) error { return nil }
