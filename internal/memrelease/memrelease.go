// Package memrelease gives back to the operating system memory that a
// process touched during a burst of work and will not need while it sits
// idle for a long time.
package memrelease

// AfterBurst is meant to be called once, when a long idle period begins.
// On Linux it drops from the process's resident set the pages of its
// executable it touched while starting (see dropExecutable); elsewhere it
// does nothing.
//
// It does not call debug.FreeOSMemory: measured on an idle agent (see
// BENCHMARKS.md), the heap a boot frees is small and returning it made no
// difference to the resident set.
func AfterBurst() { dropExecutable() }
