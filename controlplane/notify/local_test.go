package notify_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/notify/notifytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLocalConformance(t *testing.T) {
	notifytest.Run(t, func(*testing.T) notify.Notifier { return notify.NewLocal(0) })
}

// TestLocalBatches: one batch names each changed user once, sorted, and
// nothing is delivered twice.
func TestLocalBatches(t *testing.T) {
	n := notify.NewLocal(0)
	defer n.Close()
	s := n.Subscribe()
	defer s.Close()
	for _, u := range []string{"b", "a", "b", "a", "c"} {
		if err := n.Publish(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b.Resync || len(b.Users) != 3 || b.Users[0] != "a" || b.Users[1] != "b" || b.Users[2] != "c" {
		t.Fatalf("batch %+v, want users a b c and no resync", b)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if b, err := s.Next(ctx); err == nil {
		t.Fatalf("a second batch %+v after everything was read", b)
	}
}

// TestLocalOverflowResyncs: a subscriber that falls behind by more than
// the bound gets a Resync instead of unbounded memory, and loses nothing.
func TestLocalOverflowResyncs(t *testing.T) {
	n := notify.NewLocal(2)
	defer n.Close()
	s := n.Subscribe()
	defer s.Close()
	for _, u := range []string{"a", "b", "a", "c"} {
		if err := n.Publish(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !b.Resync {
		t.Fatalf("batch %+v: a third distinct user past a bound of 2 must make a Resync", b)
	}
}

// TestLocalResync: Resync reaches every subscription once.
func TestLocalResync(t *testing.T) {
	n := notify.NewLocal(0)
	defer n.Close()
	s := n.Subscribe()
	defer s.Close()
	n.Resync()
	b, err := s.Next(t.Context())
	if err != nil || !b.Resync || len(b.Users) != 0 {
		t.Fatalf("after Resync: %+v, %v", b, err)
	}
}

// TestLocalSubscribeAfterClose: a subscription of a closed notifier ends at
// once.
func TestLocalSubscribeAfterClose(t *testing.T) {
	n := notify.NewLocal(0)
	_ = n.Close()
	if _, err := n.Subscribe().Next(t.Context()); err != notify.ErrClosed {
		t.Fatalf("Next: %v, want ErrClosed", err)
	}
}
