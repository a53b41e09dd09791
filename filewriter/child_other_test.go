//go:build !linux

package filewriter

// runChild is Linux-only: the unprivileged-user tests re-execute the test
// binary with another user's credentials there.
func runChild() bool { return false }
