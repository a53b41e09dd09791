//go:build !linux

package main

// closeInheritedOnExec does nothing here: without /proc/self/fd there is no
// cheap list of the inherited descriptors.
func closeInheritedOnExec() {}
