// Package notify tells the parts of a control plane that hold agent
// connections that a user's secrets changed. A write path publishes the
// owner's user ID after its transaction committed; every subscriber learns
// of it and tells that owner's connected agents.
//
// Local is the implementation for one control-plane process. A deployment
// of several replicas needs one that crosses processes (PostgreSQL
// LISTEN/NOTIFY); it satisfies the same Notifier interface and keeps the
// same guarantees, listed on Notifier.
package notify

import (
	"context"
	"errors"
)

var (
	// ErrClosed is returned by Publish after Close, and by
	// Subscription.Next after the subscription or its notifier closed.
	ErrClosed = errors.New("notifier closed")
)

// Batch is what Subscription.Next returns: the users whose secrets changed
// since the previous Next, each named once however often it changed.
type Batch struct {
	// Users are the IDs of the users whose secrets changed, sorted.
	Users []string
	// Resync is true when changes may have been lost (a notification
	// connection was down, or the subscriber fell so far behind that the
	// notifier stopped counting users): the subscriber must treat every
	// user as changed. Users may still be set; it is then a subset.
	Resync bool
}

// Notifier carries "user X's secrets changed" between the write paths and
// the agent connections. Implementations are safe for concurrent use and
// promise:
//
//  1. Publish never blocks on a subscriber and never carries anything but
//     the user ID: no secret name, target or value.
//  2. Every Subscription receives, after a Publish of user X returned nil,
//     a Batch naming X or a Batch with Resync set. Batches coalesce:
//     several publishes of X before Next is called yield X once.
//  3. A change can be lost only by making a Batch with Resync; a
//     cross-process implementation delivers a Resync to every
//     subscription after its notification connection was lost and
//     re-established (changes made meanwhile were not heard).
//  4. A Publish made before a Subscribe returned may or may not reach that
//     subscription: subscribers read the current state when they start
//     (for agents: the secrets fetched at connect).
type Notifier interface {
	// Publish announces that userID's secrets changed. Call it after the
	// change committed. An error means the announcement was not sent;
	// the change itself stands, and agents get it at their next connect.
	Publish(ctx context.Context, userID string) error
	// Subscribe starts a subscription. Close it when done.
	Subscribe() Subscription
	// Close ends every subscription (their Next returns ErrClosed) and
	// makes Publish fail. It is safe to call twice.
	Close() error
}

// Subscription is one receiver of changes.
type Subscription interface {
	// Next blocks until there is at least one change, then returns every
	// change since the previous call. It returns ctx.Err() when ctx ends
	// and ErrClosed when the subscription or the notifier was closed.
	Next(ctx context.Context) (Batch, error)
	// Close ends the subscription; it is safe to call twice.
	Close()
}
