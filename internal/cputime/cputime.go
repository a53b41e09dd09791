// Package cputime reads the CPU time this process (and the processes of a
// local database server) have used, for the benchmarks that compare two
// arms of a run by CPU a request: on a shared machine, other processes
// disturb a process's CPU time far less than its wall time.
package cputime

import (
	"bytes"
	"os"
	"strconv"
	"strings"
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

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ, which
// Linux fixes at 100 a second for user space on every architecture Go
// supports).
const clockTick = 10 * time.Millisecond

// Named returns the user and system CPU time used so far by the live
// processes whose command name (/proc/<pid>/comm) is comm, summed: a
// database server's processes, say, whose CPU a benchmark counts with
// its own. Processes that exit between two readings take their time with
// them, so the difference of two readings undercounts short-lived ones.
// It returns 0 where /proc cannot be read.
func Named(comm string) time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var ticks int64
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		ticks += statTicks(stat, comm)
	}
	return time.Duration(ticks) * clockTick
}

// statTicks returns utime + stime from one /proc/<pid>/stat line when its
// command name is comm, else 0. The name is in parentheses and may hold
// spaces and parentheses itself, so the fields are counted from the last
// ')'.
func statTicks(stat []byte, comm string) int64 {
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open || string(stat[open+1:end]) != comm {
		return 0
	}
	// After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime(14) stime(15).
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return u + s
}
