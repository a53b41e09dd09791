package agentapi

import (
	"context"
	"math"
	"sync"
	"time"
)

// admission bounds how many agents are connecting at once (between the
// upgrade and their first apply report). After a control-plane restart
// every agent reconnects within about a second; serving them all at once
// would queue thousands of fetches and time some out. So:
//
//  1. Up to max agents connect at once.
//  2. Up to maxWaiting more wait in line, each for at most wait, and are
//     let in as places free up, oldest first: no retry, no lost time.
//  3. Anyone else — or whoever waited too long — is turned away before any
//     work (not even the token lookup) with 503 and a Retry-After from a
//     schedule: each is given the next free slot at twice the rate agents
//     have recently been getting through (at least minRate a second), so
//     the crowd comes back spread at about the pace the server serves it.
//
// mu guards the fields after it.
type admission struct {
	max, maxWaiting int // max < 0: no bound
	wait            time.Duration
	now             func() time.Time

	slots chan struct{} // a token per place taken

	mu       sync.Mutex
	waiting  int
	next     time.Time // the last slot handed out
	winStart time.Time // start of the current one-second window
	winDone  int       // agents through in the current window
	rate     int       // agents through in the last full window
}

const (
	// minRate is the schedule's rate before any agent got through.
	minRate = 1000
	// maxRetryAfter caps Retry-After, in seconds.
	maxRetryAfter = 30
)

func newAdmission(places, maxWaiting int, wait time.Duration, now func() time.Time) *admission {
	a := &admission{max: places, maxWaiting: max(0, maxWaiting), wait: wait, now: now}
	if places > 0 {
		a.slots = make(chan struct{}, places)
	}
	return a
}

// acquire admits an agent, waiting in line if there is room (until ctx or
// stop ends), and returns the function that lets the next one in; or nil
// and the Retry-After in seconds.
func (a *admission) acquire(ctx context.Context, stop <-chan struct{}) (release func(), retryAfter int) {
	if a.max < 0 {
		return func() {}, 0
	}
	select {
	case a.slots <- struct{}{}:
		return a.release, 0
	default:
	}
	a.mu.Lock()
	if a.waiting >= a.maxWaiting || a.wait <= 0 {
		defer a.mu.Unlock()
		return nil, a.scheduleLocked()
	}
	a.waiting++
	a.mu.Unlock()
	t := time.NewTimer(a.wait)
	defer t.Stop()
	admitted := false
	select {
	case a.slots <- struct{}{}:
		admitted = true
	case <-t.C:
	case <-ctx.Done():
	case <-stop:
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.waiting--
	if admitted {
		return a.release, 0
	}
	return nil, a.scheduleLocked()
}

// scheduleLocked hands out the next slot of the retry schedule and returns
// its Retry-After in seconds.
func (a *admission) scheduleLocked() int {
	now := a.now()
	a.tickLocked(now)
	if a.next.Before(now) {
		a.next = now
	}
	// Twice the recent rate: the rate only measures what came through, so
	// the schedule offers more to find out whether the server can take
	// it; who comes too early waits in line or is scheduled again.
	a.next = a.next.Add(time.Second / time.Duration(max(2*a.rate, minRate)))
	ra := int(math.Ceil(a.next.Sub(now).Seconds()))
	return min(maxRetryAfter, max(1, ra))
}

// tickLocked starts a new window when a second has passed.
func (a *admission) tickLocked(now time.Time) {
	switch d := now.Sub(a.winStart); {
	case d >= 2*time.Second:
		a.winStart, a.rate, a.winDone = now, 0, 0
	case d >= time.Second:
		a.winStart, a.rate, a.winDone = now, a.winDone, 0
	}
}

func (a *admission) release() {
	<-a.slots
	a.mu.Lock()
	a.tickLocked(a.now())
	a.winDone++
	a.mu.Unlock()
}
