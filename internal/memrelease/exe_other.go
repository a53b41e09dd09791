//go:build !linux

package memrelease

// dropExecutable does nothing here: only Linux's resident set counts the
// executable's pages this way (see exe_linux.go).
func dropExecutable() {}
