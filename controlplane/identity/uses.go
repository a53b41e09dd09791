package identity

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// Toucher stores the last uses of tokens (store.Store implements it).
type Toucher interface {
	TouchAPITokens(ctx context.Context, uses []store.APITokenUse) error
}

// Clock is the time source of a UseRecorder, injectable so tests do not
// sleep.
type Clock interface {
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// UseRecorderConfig configures a UseRecorder.
type UseRecorderConfig struct {
	// Store receives the coalesced uses. Required.
	Store Toucher
	// Interval is the shortest time between two writes. Default 10s.
	Interval time.Duration
	// FlushTimeout bounds the last write, at Close. Default 5s.
	FlushTimeout time.Duration
	// Log reports failed writes. Default nil: nothing is logged.
	Log *zap.Logger
	// Clock is the time source of the interval. Default the real clock.
	Clock Clock
}

// ErrRecorderClosed is returned by Run after Close (or called twice).
var ErrRecorderClosed = errors.New("identity: use recorder closed")

// UseRecorder remembers the last use of each API token (time and client
// address) in memory and writes what it gathered with one TouchAPITokens
// call at most once per Interval, and once more at Close: a request never
// waits for, or costs, a write of its own. Of several uses of one token
// between two writes only the latest is kept, so memory is bounded by the
// number of distinct tokens used in an interval (each one a valid token).
// A failed write keeps its uses for the next, unless a newer use came.
// Uses recorded after Close are dropped.
//
// New starts nothing; Run writes until its context ends or Close is
// called; Close stops Run, waits for it and writes what is left. Record,
// Flush and Close are safe for concurrent use.
type UseRecorder struct {
	cfg     UseRecorderConfig
	closing chan struct{} // closed by Close
	once    sync.Once
	flushMu sync.Mutex // serialises writes, so an older batch cannot land after a newer one

	// mu guards the fields that follow.
	mu      sync.Mutex
	pending map[string]store.APITokenUse
	closed  bool
	running bool
	done    chan struct{} // closed when Run returns; nil before Run
}

// NewUseRecorder returns a recorder writing to cfg.Store.
func NewUseRecorder(cfg UseRecorderConfig) *UseRecorder {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	return &UseRecorder{cfg: cfg, closing: make(chan struct{}), pending: map[string]store.APITokenUse{}}
}

// Record notes a use of token id at time at from client address addr.
// It never blocks on the store.
func (u *UseRecorder) Record(id string, at time.Time, addr string) {
	u.add(store.APITokenUse{ID: id, At: at, Addr: addr})
}

// RecordFirst is Record for a use of a token the store said was never
// used: first is the token.first_use record of this use. Of the drafts
// gathered between two writes the earliest is kept, and the store appends
// it only if its write is the one that moves the token's last use from
// never (see store.APITokenUse), so a request still costs no write and
// replicas racing on a new token record its first use once.
func (u *UseRecorder) RecordFirst(id string, at time.Time, addr string, first audit.Record) {
	u.add(store.APITokenUse{ID: id, At: at, Addr: addr, FirstUse: &first})
}

func (u *UseRecorder) add(use store.APITokenUse) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return
	}
	u.pending[use.ID] = mergeUse(u.pending[use.ID], use)
}

// mergeUse combines two uses of one token (prev may be the zero use): the
// later time and address, and the earlier first-use draft.
func mergeUse(prev, use store.APITokenUse) store.APITokenUse {
	if prev.ID == "" {
		return use
	}
	out := prev
	if use.At.After(prev.At) {
		out.At, out.Addr = use.At, use.Addr
	}
	if f := use.FirstUse; f != nil && (out.FirstUse == nil || f.Time.Before(out.FirstUse.Time)) {
		out.FirstUse = f
	}
	return out
}

// Pending is how many tokens have uses not yet written.
func (u *UseRecorder) Pending() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.pending)
}

// Run writes the gathered uses once per Interval until ctx ends or Close
// is called, then writes what is left (bounded by FlushTimeout). It
// returns nil then, or ErrRecorderClosed when called after Close or twice.
func (u *UseRecorder) Run(ctx context.Context) error {
	u.mu.Lock()
	if u.running || u.closed {
		u.mu.Unlock()
		return ErrRecorderClosed
	}
	u.running = true
	u.done = make(chan struct{})
	u.mu.Unlock()
	defer close(u.done)
	failing := false // a write failed: warn once per episode, not every interval
	for {
		select {
		case <-ctx.Done():
			u.finalFlush()
			return nil
		case <-u.closing:
			u.finalFlush()
			return nil
		case <-u.cfg.Clock.After(u.cfg.Interval):
			err := u.Flush(ctx)
			switch {
			case err != nil && ctx.Err() != nil: // stopping: finalFlush tries again
			case err != nil && !failing:
				failing = true
				u.cfg.Log.Warn("cannot record the last use of API tokens; kept in memory and retried every interval",
					zap.Duration("interval", u.cfg.Interval), zap.Error(err))
			case err != nil:
				u.cfg.Log.Debug("still cannot record the last use of API tokens", zap.Error(err))
			case failing:
				failing = false
				u.cfg.Log.Info("recording the last use of API tokens again")
			}
		}
	}
}

// finalFlush writes what is left with a fresh context: the one that
// stopped Run is done.
func (u *UseRecorder) finalFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.FlushTimeout)
	defer cancel()
	if err := u.Flush(ctx); err != nil {
		u.cfg.Log.Warn("record the last use of API tokens at shutdown", zap.Error(err))
	}
}

// Flush writes the gathered uses now, in one call; nothing when there are
// none. On failure the uses are kept (a newer one of the same token wins).
func (u *UseRecorder) Flush(ctx context.Context) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	u.mu.Lock()
	batch := u.pending
	if len(batch) == 0 {
		u.mu.Unlock()
		return nil
	}
	u.pending = map[string]store.APITokenUse{}
	u.mu.Unlock()
	uses := make([]store.APITokenUse, 0, len(batch))
	for _, use := range batch {
		uses = append(uses, use)
	}
	err := u.cfg.Store.TouchAPITokens(ctx, uses)
	if err != nil {
		u.mu.Lock()
		for id, use := range batch {
			u.pending[id] = mergeUse(use, u.pending[id])
		}
		u.mu.Unlock()
	}
	return err
}

// Close stops Run (if it runs) and waits for it, then writes what is left
// and drops uses recorded later. It may be called twice.
func (u *UseRecorder) Close() error {
	var err error
	u.once.Do(func() {
		u.mu.Lock()
		u.closed = true // Run cannot start now, and new uses are dropped
		done := u.done
		u.mu.Unlock()
		close(u.closing)
		if done != nil {
			<-done
		}
		ctx, cancel := context.WithTimeout(context.Background(), u.cfg.FlushTimeout)
		defer cancel()
		err = u.Flush(ctx) // without Run, everything recorded; with it, nothing left
	})
	return err
}
