package agentapi

import (
	"testing"
	"time"
)

func TestAdmissionBoundsAndSpreadsRetries(t *testing.T) {
	now := time.Unix(1000, 0)
	a := admission{max: 2, now: func() time.Time { return now }}
	r1, _ := a.acquire()
	r2, _ := a.acquire()
	if r1 == nil || r2 == nil {
		t.Fatal("the first two agents were not admitted")
	}
	// Nobody got through yet: the crowd is scheduled at minRate a second.
	var last int
	for i := 1; i <= 40*minRate; i++ { // scheduled at minRate a second
		rel, ra := a.acquire()
		if rel != nil {
			t.Fatalf("agent %d admitted over the bound", i+2)
		}
		if ra < 1 || ra > maxRetryAfter || ra < last {
			t.Fatalf("refusal %d: Retry-After %d (previous %d), want non-decreasing within 1..%d", i, ra, last, maxRetryAfter)
		}
		if i == 5*minRate && ra != 5 {
			t.Errorf("refusal %d at %d/s: Retry-After %d, want 5", i, minRate, ra)
		}
		last = ra
	}
	if last != maxRetryAfter {
		t.Errorf("Retry-After reached %d, want the cap %d", last, maxRetryAfter)
	}
	r1()
	if rel, _ := a.acquire(); rel == nil {
		t.Error("a released place was not given to the next agent")
	}

	// 2,000 agents got through in the last second: the schedule offers
	// twice that.
	b := admission{max: 1, now: func() time.Time { return now }}
	for range 2000 {
		rel, _ := b.acquire()
		rel()
	}
	now = now.Add(time.Second)
	hold, _ := b.acquire()
	if hold == nil {
		t.Fatal("not admitted")
	}
	var ra int
	for range 6000 {
		_, ra = b.acquire()
	}
	if ra != 2 {
		t.Errorf("6,000 refused at 2,000/s (scheduled at twice that): last Retry-After %d, want 2", ra)
	}

	unbounded := admission{max: -1, now: time.Now}
	for range 1000 {
		if rel, _ := unbounded.acquire(); rel == nil {
			t.Fatal("MaxConnecting < 0 refused an agent")
		}
	}
}
