// Package cputime reads the CPU time this process has used, for the
// benchmarks that compare two arms of a run by CPU a request: on a shared
// machine, other processes disturb a process's CPU time far less than its
// wall time.
package cputime

import (
	"syscall"
	"time"
)

// Process returns the user and system CPU time the process has used so
// far (getrusage(RUSAGE_SELF)); 0 if it cannot be read.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
