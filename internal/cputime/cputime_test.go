package cputime

import (
	"crypto/sha256"
	"os"
	"strings"
	"testing"
	"time"
)

// Busy work moves the process's CPU time forward by about what it took.
func TestProcessAdvancesWithWork(t *testing.T) {
	before := Process()
	if before <= 0 {
		t.Fatalf("CPU time %v at the start of a test, want > 0", before)
	}
	start := time.Now()
	sum := sha256.Sum256(nil)
	for time.Since(start) < 50*time.Millisecond {
		sum = sha256.Sum256(sum[:])
	}
	if after := Process(); after-before < 10*time.Millisecond {
		t.Fatalf("CPU time moved %v over 50 ms of hashing, want at least 10 ms", after-before)
	}
}

func TestStatTicks(t *testing.T) {
	for _, tc := range []struct {
		name, stat, comm string
		want             int64
	}{
		{"plain", "42 (postgres) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0", "postgres", 10},
		{"other command", "42 (sshd) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0", "postgres", 0},
		{"name with spaces and parens", "7 (a) (b c) R 1 7 7 0 -1 0 0 0 0 0 11 22 0 0", "a) (b c", 33},
		{"prefix of the name", "42 (postgres: wal) S 1 42 42 0 -1 0 0 0 0 0 7 3", "postgres", 0},
		{"truncated", "42 (postgres) S 1 42", "postgres", 0},
		{"garbage times", "42 (postgres) S 1 42 42 0 -1 0 0 0 0 0 x 3", "postgres", 0},
		{"no parentheses", "42 postgres S 1", "postgres", 0},
	} {
		if got := statTicks([]byte(tc.stat), tc.comm); got != tc.want {
			t.Errorf("%s: statTicks = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestNamedCountsThisProcess(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatalf("reading /proc/self/comm: %v", err)
	}
	name := strings.TrimSpace(string(comm))
	// Spin until this process has used 60 ms of CPU (by getrusage), however
	// busy the machine, then expect /proc to have seen most of it.
	before, cpu0, start := Named(name), Process(), time.Now()
	sum := sha256.Sum256(nil)
	for Process()-cpu0 < 60*time.Millisecond && time.Since(start) < time.Minute {
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
	}
	if after := Named(name); after-before < 40*time.Millisecond {
		t.Fatalf("CPU time of processes named %q moved %v while this one used %v, want at least 40 ms", name, after-before, Process()-cpu0)
	}
	if got := Named("no-such-command-\x00"); got != 0 {
		t.Fatalf("Named of a command nobody runs = %v, want 0", got)
	}
}
