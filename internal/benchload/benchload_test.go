package benchload

import (
	"errors"
	"sync"
	"testing"
)

func TestRunCallsEveryOperationOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[int64]int{}
	workers := map[int]bool{}
	rate, cpu, err := Run(4, 1000, 3, func(w int, i int64) error {
		mu.Lock()
		defer mu.Unlock()
		seen[i]++
		workers[w] = true
		return nil
	})
	if err != nil || rate <= 0 || cpu < 0 {
		t.Fatalf("Run = %v, %v, %v", rate, cpu, err)
	}
	for i := int64(1); i <= 1000; i++ {
		if seen[i] != 1 {
			t.Fatalf("operation %d ran %d times", i, seen[i])
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("%d operations, want 1000", len(seen))
	}
	for w := range workers {
		if w < 0 || w >= 4 {
			t.Fatalf("worker index %d", w)
		}
	}
}

func TestRunReturnsTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	_, _, err := Run(3, 100, 1, func(_ int, i int64) error {
		if i == 50 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}
