package identity

import (
	"fmt"
	"testing"
	"time"
)

// One address gets its burst, then one start per refill and a wait
// saying when; another address is not held back by it; a refused start
// takes nothing from the budget.
func TestStartLimiterPerSource(t *testing.T) {
	l, err := NewStartLimiter(StartLimitConfig{PerSource: 6, SourceBurst: 3}) // one per 10 s
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	for i := range 3 {
		if d := l.Allow("192.0.2.1", now); d != 0 {
			t.Fatalf("start %d of the burst refused (wait %v)", i+1, d)
		}
	}
	for range 50 { // a flood: refused, and it does not push the wait back
		if d := l.Allow("192.0.2.1", now); d != 10*time.Second {
			t.Fatalf("over the burst: wait %v, want 10s", d)
		}
	}
	if d := l.Allow("192.0.2.2", now); d != 0 {
		t.Fatalf("another address refused: wait %v", d)
	}
	if d := l.Allow("192.0.2.1", now.Add(4500*time.Millisecond)); d != 6*time.Second {
		t.Fatalf("wait %v, want 5.5s rounded up to 6s", d)
	}
	if d := l.Allow("192.0.2.1", now.Add(10*time.Second)); d != 0 {
		t.Fatalf("after a refill: wait %v", d)
	}
	if d := l.Allow("192.0.2.1", now.Add(10*time.Second)); d == 0 {
		t.Fatal("two starts on one refill")
	}
}

// Many addresses together meet the total; a full table of addresses still
// spending refuses new ones, and forgets those that refilled.
func TestStartLimiterTotalAndMemory(t *testing.T) {
	l, err := NewStartLimiter(StartLimitConfig{PerSource: 60, SourceBurst: 2, Total: 60, TotalBurst: 5, MaxSources: 4})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	allowed := 0
	for i := range 4 {
		if l.Allow(fmt.Sprint("198.51.100.", i), now) == 0 {
			allowed++
		}
	}
	if d := l.Allow("198.51.100.0", now); d != 0 {
		t.Fatalf("an address's second start refused: %v", d)
	}
	allowed++
	if d := l.Allow("198.51.100.1", now); d != time.Second {
		t.Fatalf("start past the total burst: wait %v, want 1s", d)
	}
	if allowed != 5 {
		t.Fatalf("%d starts allowed, want the total burst 5", allowed)
	}
	if d := l.Allow("198.51.100.9", now); d == 0 {
		t.Fatal("a fifth address was remembered beyond MaxSources")
	}
	later := now.Add(time.Minute) // every bucket refilled: forgotten, room again
	if d := l.Allow("198.51.100.9", later); d != 0 {
		t.Fatalf("a new address after the others refilled: wait %v", d)
	}
	if n := len(l.sources); n != 1 {
		t.Fatalf("%d addresses remembered, want 1", n)
	}
}

func TestStartLimitConfigValidate(t *testing.T) {
	if _, err := NewStartLimiter(StartLimitConfig{PerSource: -1}); err == nil {
		t.Fatal("a negative rate was accepted")
	}
}
