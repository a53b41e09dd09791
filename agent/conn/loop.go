package conn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

// Clock is the time source of Loop, injectable so tests do not sleep.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// LoopConfig configures Loop.
type LoopConfig struct {
	// Dial opens a session. Required.
	Dial func(ctx context.Context) (*Session, error)
	// Serve runs on each session until it ends or ctx is cancelled; the
	// Loop closes the session afterwards. Required.
	Serve func(ctx context.Context, s *Session) error
	// InitialInterval is the first retry wait. Default 500ms.
	InitialInterval time.Duration
	// MaxInterval caps every wait, jitter included. Default 30s. A rejected
	// token, a version mismatch or a session replaced by another agent's
	// (ErrReplaced) waits exactly this long.
	MaxInterval time.Duration
	// StableAfter is how long a connection must last for the backoff to
	// start again from InitialInterval. Default 1m.
	StableAfter time.Duration
	// Clock is the time source. Default the real clock.
	Clock Clock
	// Logger receives one line per failed attempt. Default nop.
	Logger *zap.Logger
}

// Validate reports whether c is usable.
func (c LoopConfig) Validate() error {
	switch {
	case c.Dial == nil || c.Serve == nil:
		return fmt.Errorf("%w: Dial and Serve are required", ErrConfig)
	case c.InitialInterval < 0 || c.MaxInterval < 0 || c.StableAfter < 0:
		return fmt.Errorf("%w: negative interval", ErrConfig)
	case c.MaxInterval != 0 && c.InitialInterval > c.MaxInterval:
		return fmt.Errorf("%w: InitialInterval exceeds MaxInterval", ErrConfig)
	}
	return nil
}

// Loop connects, serves, and reconnects forever.
type Loop struct {
	cfg LoopConfig
	bo  *backoff.ExponentialBackOff
	// closeSession ends a served session; tests replace it.
	closeSession func(*Session)
	// replacedInARow counts sessions ended by ErrReplaced since the last
	// stable one: only the first of a streak is logged at error level.
	replacedInARow int
}

// NewLoop validates cfg and returns a Loop. It starts nothing.
func NewLoop(cfg LoopConfig) (*Loop, error) {
	if cfg.InitialInterval == 0 {
		cfg.InitialInterval = 500 * time.Millisecond
	}
	if cfg.MaxInterval == 0 {
		cfg.MaxInterval = 30 * time.Second
	}
	if cfg.StableAfter == 0 {
		cfg.StableAfter = time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(cfg.InitialInterval),
		backoff.WithMaxInterval(cfg.MaxInterval),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0), // forever
		backoff.WithClockProvider(cfg.Clock),
	)
	return &Loop{cfg: cfg, bo: bo, closeSession: func(s *Session) { _ = s.Close() }}, nil
}

// next returns the next wait, never above MaxInterval (the jitter of
// ExponentialBackOff may otherwise exceed it by half).
func (l *Loop) next() time.Duration {
	d := l.bo.NextBackOff()
	if d == backoff.Stop || d > l.cfg.MaxInterval {
		d = l.cfg.MaxInterval
	}
	return d
}

// replaced handles a session the control plane closed because another
// connection with this workspace's token replaced it. Reconnecting at once
// would replace that agent in turn and start a fight; waiting the longest
// backoff lets the other agent serve the workspace. The first replacement
// of a streak is logged at error level, the next ones at warn level.
func (l *Loop) replaced(serr error) time.Duration {
	wait := l.cfg.MaxInterval
	l.replacedInARow++
	if l.replacedInARow == 1 {
		l.cfg.Logger.Error("another agent connected to the control plane with this workspace's token and replaced this one; "+
			"two agents may be running with the same token (stop one of them). Waiting the longest backoff before connecting again",
			zap.Error(serr), zap.Duration("retry_in", wait))
	} else {
		l.cfg.Logger.Warn("replaced again by another agent with this workspace's token",
			zap.Int("times_in_a_row", l.replacedInARow), zap.Duration("retry_in", wait))
	}
	return wait
}

// Run connects and serves until ctx is cancelled, which is a clean exit
// (nil). Failures are logged and retried; Run never gives up.
func (l *Loop) Run(ctx context.Context) error {
	log := l.cfg.Logger
	for {
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		sess, err := l.cfg.Dial(ctx)
		switch {
		case ctx.Err() != nil:
			if sess != nil {
				_ = sess.Close()
			}
			return nil
		case errors.Is(err, ErrTokenRejected):
			wait = l.cfg.MaxInterval
			log.Error("the control plane rejected the agent token; check COURIER_AGENT_TOKEN or the token file",
				zap.Error(err), zap.Duration("retry_in", wait))
		case errors.Is(err, ErrVersionMismatch):
			wait = l.cfg.MaxInterval
			log.Error("the control plane speaks another agent protocol version; upgrade the agent or the control plane",
				zap.Error(err), zap.Duration("retry_in", wait))
		case err != nil:
			wait = l.next()
			log.Warn("cannot reach the control plane", zap.Error(err), zap.Duration("retry_in", wait))
		default:
			start := l.cfg.Clock.Now()
			serr := l.cfg.Serve(ctx, sess)
			l.closeSession(sess)
			if ctx.Err() != nil {
				return nil
			}
			if l.cfg.Clock.Now().Sub(start) >= l.cfg.StableAfter {
				l.bo.Reset()
				l.replacedInARow = 0
			}
			if errors.Is(serr, ErrReplaced) {
				wait = l.replaced(serr)
				break
			}
			wait = l.next()
			if errors.Is(serr, ErrBadAnswer) {
				log.Error("the control plane sent an answer the agent cannot use; nothing from it was applied",
					zap.Error(serr), zap.Duration("retry_in", wait))
			} else {
				log.Warn("connection to the control plane lost; reconnecting", zap.Error(serr), zap.Duration("retry_in", wait))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-l.cfg.Clock.After(wait):
		}
	}
}
