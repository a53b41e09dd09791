package cputime

import (
	"crypto/sha256"
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
