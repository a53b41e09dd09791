// Package notifytest is the conformance suite every notify.Notifier
// implementation passes: Local here, a PostgreSQL LISTEN/NOTIFY one with
// its store. Cross-process delivery is asynchronous, so checks wait for a
// batch (bounded by the test's context) rather than expect it at once.
package notifytest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/notify"
)

// wait bounds one expected delivery; generous for a loaded CI machine.
const wait = 30 * time.Second

// Run runs the suite. newNotifier returns a fresh, empty Notifier; the
// suite closes it.
func Run(t *testing.T, newNotifier func(t *testing.T) notify.Notifier) {
	t.Run("DeliversToEverySubscriber", func(t *testing.T) {
		n := newNotifier(t)
		defer n.Close()
		a, b := n.Subscribe(), n.Subscribe()
		defer a.Close()
		defer b.Close()
		if err := n.Publish(t.Context(), "user-1"); err != nil {
			t.Fatal(err)
		}
		for _, s := range []notify.Subscription{a, b} {
			if got := collect(t, s, "user-1"); !slices.Contains(got.Users, "user-1") && !got.Resync {
				t.Fatalf("batch %+v does not name user-1", got)
			}
		}
	})
	t.Run("CoalescesRepeats", func(t *testing.T) {
		n := newNotifier(t)
		defer n.Close()
		s := n.Subscribe()
		defer s.Close()
		for range 5 {
			if err := n.Publish(t.Context(), "user-1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.Publish(t.Context(), "user-2"); err != nil {
			t.Fatal(err)
		}
		got := collect(t, s, "user-1", "user-2")
		seen := map[string]int{}
		for _, u := range got.Users {
			seen[u]++
		}
		for u, c := range seen {
			if c != 1 {
				t.Errorf("user %s named %d times in one batch", u, c)
			}
		}
	})
	t.Run("NextHonoursContext", func(t *testing.T) {
		n := newNotifier(t)
		defer n.Close()
		s := n.Subscribe()
		defer s.Close()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next on a cancelled context: %v, want context.Canceled", err)
		}
	})
	t.Run("CloseEndsSubscriptions", func(t *testing.T) {
		n := newNotifier(t)
		s := n.Subscribe()
		done := make(chan error, 1)
		go func() { _, err := s.Next(t.Context()); done <- err }()
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, notify.ErrClosed) {
			t.Fatalf("Next after Close: %v, want ErrClosed", err)
		}
		if err := n.Publish(t.Context(), "user-1"); !errors.Is(err, notify.ErrClosed) {
			t.Fatalf("Publish after Close: %v, want ErrClosed", err)
		}
		if err := n.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		s.Close()
		s.Close()
	})
	t.Run("SubscriptionCloseStopsDelivery", func(t *testing.T) {
		n := newNotifier(t)
		defer n.Close()
		s := n.Subscribe()
		s.Close()
		if _, err := s.Next(t.Context()); !errors.Is(err, notify.ErrClosed) {
			t.Fatalf("Next after the subscription closed: %v, want ErrClosed", err)
		}
	})
}

// collect reads batches from s until every user in want was named (or a
// Resync came), and returns their union.
func collect(t *testing.T, s notify.Subscription, want ...string) notify.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	var all notify.Batch
	for {
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %v: %v (got %+v so far)", want, err, all)
		}
		all.Users = append(all.Users, b.Users...)
		all.Resync = all.Resync || b.Resync
		if all.Resync || containsAll(all.Users, want) {
			return all
		}
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
