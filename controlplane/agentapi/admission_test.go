package agentapi

import (
	"context"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
)

func TestAdmissionBoundsAndSpreadsRetries(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	// No line: over the bound is refused at once.
	a := newAdmission(2, 0, 0, clock)
	r1, _ := a.acquire(ctx, nil)
	r2, _ := a.acquire(ctx, nil)
	if r1 == nil || r2 == nil {
		t.Fatal("the first two agents were not admitted")
	}
	// Nobody got through yet: the crowd is scheduled at minRate a second.
	var last int
	for i := 1; i <= 40*minRate; i++ {
		rel, ra := a.acquire(ctx, nil)
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
	if rel, _ := a.acquire(ctx, nil); rel == nil {
		t.Error("a released place was not given to the next agent")
	}

	// 2,000 agents got through in the last second: the schedule offers
	// twice that.
	b := newAdmission(1, 0, 0, clock)
	for range 2000 {
		rel, _ := b.acquire(ctx, nil)
		rel()
	}
	now = now.Add(time.Second)
	if hold, _ := b.acquire(ctx, nil); hold == nil {
		t.Fatal("not admitted")
	}
	var ra int
	for range 6000 {
		_, ra = b.acquire(ctx, nil)
	}
	if ra != 2 {
		t.Errorf("6,000 refused at 2,000/s (scheduled at twice that): last Retry-After %d, want 2", ra)
	}

	unbounded := newAdmission(-1, 0, 0, time.Now)
	for range 1000 {
		if rel, _ := unbounded.acquire(ctx, nil); rel == nil {
			t.Fatal("MaxConnecting < 0 refused an agent")
		}
	}
}

// TestAdmissionLine: over the bound, an agent waits in line and gets the
// next free place; with the line full, or its request gone, it is refused.
func TestAdmissionLine(t *testing.T) {
	ctx := context.Background()
	a := newAdmission(1, 1, time.Hour, time.Now)
	first, _ := a.acquire(ctx, nil)
	got := make(chan func(), 1)
	go func() { rel, _ := a.acquire(ctx, nil); got <- rel }()
	// Wait until it is in line, then the line is full.
	for {
		a.mu.Lock()
		w := a.waiting
		a.mu.Unlock()
		if w == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if rel, ra := a.acquire(ctx, nil); rel != nil || ra < 1 {
		t.Fatalf("line full: admitted=%v Retry-After %d, want refused", rel != nil, ra)
	}
	first()
	second := <-got
	if second == nil {
		t.Fatal("the agent in line was not let in when a place freed up")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if rel, _ := a.acquire(cctx, nil); rel != nil {
		t.Fatal("an agent whose request ended was admitted")
	}
	second()
}

// An agent that waits the whole line must be answered (let in, or 503 with
// a Retry-After) with time to spare before its own handshake timeout;
// with the two equal it gave up first and counted a timeout.
func TestDefaultAdmitWaitEndsBeforeTheAgentGivesUp(t *testing.T) {
	const margin = 5 * time.Second // the upgrade itself, a balancer's retries
	if w := DefaultConfig().AdmitWait; w <= 0 || w > proto.DefaultRequestTimeout-margin {
		t.Fatalf("AdmitWait %s: want at most the agents' %s handshake timeout less %s", w, proto.DefaultRequestTimeout, margin)
	}
}
