package agentapi

import (
	"math"
	"sync"
	"time"
)

// admission bounds how many agents are connecting at once (between the
// upgrade and their first apply report) and tells the others when to come
// back. After a control-plane restart every agent reconnects within about
// a second; admitting them all at once would queue thousands of fetches and
// time some out. The excess is turned away before any work (not even the
// token lookup) with 503 and a Retry-After from a schedule: each refused
// agent is given the next free slot at the rate agents have recently been
// getting through, doubled (at least minRate a second), so the crowd comes back
// spread at the pace the server serves it instead of all at once.
//
// mu guards the fields after it.
type admission struct {
	max int // <0: no bound
	now func() time.Time

	mu         sync.Mutex
	connecting int
	next       time.Time // the last slot handed out
	winStart   time.Time // start of the current one-second window
	winDone    int       // agents through in the current window
	rate       int       // agents through in the last full window
}

const (
	// minRate is the schedule's rate before any agent got through.
	minRate = 1000
	// maxRetryAfter caps Retry-After, in seconds.
	maxRetryAfter = 30
)

// acquire admits an agent and returns the function that lets the next
// one in, or nil and the Retry-After in seconds.
func (a *admission) acquire() (release func(), retryAfter int) {
	if a.max < 0 {
		return func() {}, 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.tick(now)
	if a.connecting < a.max {
		a.connecting++
		return a.release, 0
	}
	if a.next.Before(now) {
		a.next = now
	}
	// Twice the recent rate: the rate only measures what came through, so
	// the schedule must offer more to find out whether the server can
	// take it; who comes too early is scheduled again.
	a.next = a.next.Add(time.Second / time.Duration(max(2*a.rate, minRate)))
	ra := int(math.Ceil(a.next.Sub(now).Seconds()))
	return nil, min(maxRetryAfter, max(1, ra))
}

// tick starts a new window when a second has passed.
func (a *admission) tick(now time.Time) {
	switch d := now.Sub(a.winStart); {
	case d >= 2*time.Second:
		a.winStart, a.rate, a.winDone = now, 0, 0
	case d >= time.Second:
		a.winStart, a.rate, a.winDone = now, a.winDone, 0
	}
}

func (a *admission) release() {
	a.mu.Lock()
	a.connecting--
	a.tick(a.now())
	a.winDone++
	a.mu.Unlock()
}
