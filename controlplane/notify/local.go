package notify

import (
	"context"
	"slices"
	"sync"
)

// DefaultMaxPending is Local's default bound on the distinct users one
// subscription remembers between two calls of Next.
const DefaultMaxPending = 10000

// Local is the Notifier of one control-plane process: Publish hands the
// user to every subscription of this process. Memory is bounded: a
// subscription that falls behind by more than MaxPending distinct users
// forgets them and gets a Resync instead.
type Local struct {
	maxPending int

	// mu guards the fields that follow.
	mu     sync.Mutex
	subs   map[*localSub]struct{}
	closed bool
}

// NewLocal returns a Local. maxPending <= 0 means DefaultMaxPending. It
// starts no goroutine.
func NewLocal(maxPending int) *Local {
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	return &Local{maxPending: maxPending, subs: map[*localSub]struct{}{}}
}

// Publish implements Notifier. It never blocks on a subscriber.
func (l *Local) Publish(_ context.Context, userID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	for s := range l.subs {
		s.add(userID)
	}
	return nil
}

// Subscribe implements Notifier. On a closed Local the subscription's Next
// returns ErrClosed.
func (l *Local) Subscribe() Subscription {
	s := &localSub{owner: l, max: l.maxPending, users: map[string]struct{}{}, wake: make(chan struct{}, 1)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		s.closed = true
		return s
	}
	l.subs[s] = struct{}{}
	return s
}

// Close implements Notifier.
func (l *Local) Close() error {
	l.mu.Lock()
	subs := l.subs
	l.subs = map[*localSub]struct{}{}
	l.closed = true
	l.mu.Unlock()
	for s := range subs {
		s.close()
	}
	return nil
}

func (l *Local) remove(s *localSub) {
	l.mu.Lock()
	delete(l.subs, s)
	l.mu.Unlock()
}

// Resync makes every current subscription's next Batch a Resync. A
// cross-process notifier does this after its notification connection came
// back; Local never loses a change, and offers it for tests and for
// callers that changed secrets behind the write paths' back.
func (l *Local) Resync() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.subs {
		s.resync()
	}
}

// localSub is one subscription of a Local.
type localSub struct {
	owner *Local
	max   int
	wake  chan struct{} // one token: "there is something to read"

	// mu guards the fields that follow.
	mu      sync.Mutex
	users   map[string]struct{}
	resyncs bool
	closed  bool
}

func (s *localSub) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *localSub) add(userID string) {
	s.mu.Lock()
	switch {
	case s.closed:
	case len(s.users) >= s.max:
		if _, ok := s.users[userID]; !ok {
			s.users = map[string]struct{}{}
			s.resyncs = true
		}
	default:
		s.users[userID] = struct{}{}
	}
	s.mu.Unlock()
	s.signal()
}

func (s *localSub) resync() {
	s.mu.Lock()
	s.resyncs = true
	s.mu.Unlock()
	s.signal()
}

func (s *localSub) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
}

// Next implements Subscription.
func (s *localSub) Next(ctx context.Context) (Batch, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return Batch{}, ErrClosed
		}
		if len(s.users) > 0 || s.resyncs {
			b := Batch{Resync: s.resyncs, Users: make([]string, 0, len(s.users))}
			for u := range s.users {
				b.Users = append(b.Users, u)
			}
			slices.Sort(b.Users)
			s.users, s.resyncs = map[string]struct{}{}, false
			s.mu.Unlock()
			return b, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		case <-s.wake:
		}
	}
}

// Close implements Subscription.
func (s *localSub) Close() {
	s.owner.remove(s)
	s.close()
}
