package audit

import (
	"fmt"
	"strings"
	"time"
)

// MaxLimit is the most records one page returns.
const MaxLimit = 1000

// Filter selects records. Empty fields match everything.
type Filter struct {
	// Actor matches the actor's ID or name (names case-insensitively).
	Actor string
	// Action matches exactly, or by prefix when it ends in "*"
	// ("secret.*").
	Action string
	// Target matches the target's ID or name.
	Target string
	// Outcome is Success, Failure or Denied.
	Outcome string
	// Involving keeps the records of this user ID (a member reading
	// their own): those whose actor is that user, whose target is that
	// user, or whose target that user owns.
	Involving string
	// Since and Until bound the record's time: Since <= time < Until.
	Since, Until time.Time
	// After and Before bound the sequence number: After < seq < Before
	// (0: no bound). They are the cursors of pagination.
	After  int64
	Before int64
	// Oldest lists oldest first (following the chain); the default is
	// newest first.
	Oldest bool
	// Limit bounds the page (default and maximum MaxLimit).
	Limit int
}

// Validate checks f and applies the default limit.
func (f *Filter) Validate() error {
	switch f.Outcome {
	case "", Success, Failure, Denied:
	default:
		return fmt.Errorf("%w: outcome must be success, failure or denied", ErrBadFilter)
	}
	if f.After < 0 || f.Before < 0 {
		return fmt.Errorf("%w: after and before are positive sequence numbers", ErrBadFilter)
	}
	if f.Limit < 0 || f.Limit > MaxLimit {
		return fmt.Errorf("%w: limit must be between 1 and %d", ErrBadFilter, MaxLimit)
	}
	if f.Limit == 0 {
		f.Limit = MaxLimit
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return fmt.Errorf("%w: until must be after since", ErrBadFilter)
	}
	for _, s := range []string{f.Actor, f.Action, f.Target, f.Involving} {
		if len(s) > 256 || strings.ContainsRune(s, 0) {
			return fmt.Errorf("%w: filter values are at most 256 bytes, without NUL", ErrBadFilter)
		}
	}
	return nil
}
