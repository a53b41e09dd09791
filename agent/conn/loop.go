package conn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
	// or revoked token (ErrTokenRejected, ErrRevoked), a version mismatch
	// or a session replaced by another agent's (ErrReplaced) waits exactly
	// this long.
	MaxInterval time.Duration
	// StableAfter is how long a connection must last for the backoff to
	// start again from InitialInterval. Default 1m.
	StableAfter time.Duration
	// FastInterval and FastWindow make an outage's first moments cheap to
	// recover from: for FastWindow after a working session is lost (one
	// that lasted at least 5×FastInterval), and from Run's start, each wait
	// is drawn uniformly from [FastInterval/2, FastInterval] instead of the
	// growing backoff, so an agent is back about FastInterval/2 after the
	// control plane is. A control plane that cannot take everyone at once
	// answers 503 with Retry-After, which is honoured first (see
	// UnavailableError). After the window the exponential backoff takes
	// over. Defaults 1s and 30s; a negative FastWindow turns this off.
	FastInterval, FastWindow time.Duration
	// CredentialGeneration, if set, returns a number that changes whenever
	// the credential Dial presents changes (the agent re-read a new token
	// from its token file). A refused token is logged once per
	// generation, and again after a dial succeeded. Default: the
	// credential never changes.
	CredentialGeneration func() uint64
	// RefusedHint says what an operator should do about a refused token;
	// it ends the one error line logged for a refusal. Default: rotate
	// the token and give the agent the new one.
	RefusedHint string
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
	case c.InitialInterval < 0 || c.MaxInterval < 0 || c.StableAfter < 0 || c.FastInterval < 0:
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
	// refusal is the refused-token situation last logged (the credential
	// generation); "" after a dial succeeded.
	refusal string
	// fastUntil ends the current window of fast retries (see FastWindow).
	fastUntil time.Time
	// jitter returns a uniform float in [0, 1); tests replace it.
	jitter func() float64
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
	if cfg.FastInterval == 0 {
		cfg.FastInterval = time.Second
	}
	if cfg.FastWindow == 0 {
		cfg.FastWindow = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.RefusedHint == "" {
		cfg.RefusedHint = "If the token was rotated, revoked or expired, rotate it (courier workspaces rotate-token WORKSPACE) and give the agent the new token"
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
	return &Loop{cfg: cfg, bo: bo, closeSession: func(s *Session) { _ = s.Close() }, jitter: rand.Float64}, nil
}

// retryWait is the wait after a failed dial or a lost session that is not
// a rejection: the server's Retry-After when it shed load (plus up to a
// second, so agents told the same second do not come back together; the
// server spreads the seconds), a short jittered wait while the outage is
// young, the growing backoff after that.
func (l *Loop) retryWait(err error) time.Duration {
	var ue *UnavailableError
	if errors.As(err, &ue) && ue.RetryAfter > 0 {
		return min(l.cfg.MaxInterval, ue.RetryAfter+time.Duration(l.jitter()*float64(time.Second)))
	}
	if l.cfg.FastWindow > 0 && l.cfg.Clock.Now().Before(l.fastUntil) {
		return min(l.cfg.MaxInterval, l.cfg.FastInterval/2+time.Duration(l.jitter()*float64(l.cfg.FastInterval)/2))
	}
	return l.next()
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

// refused handles a token the control plane refused: at the dial (401 or
// 403, ErrTokenRejected) or by closing a session whose token it revoked
// (ErrRevoked). The same token will not start working by itself, so the
// wait is the longest backoff; Dial presents the token anew each time (the
// agent re-reads its token file), so an operator who writes a new token
// there is picked up at the next attempt. One error line says what to do;
// refusals of the same credential are not logged again (at debug level only).
func (l *Loop) refused(err error) time.Duration {
	wait := l.cfg.MaxInterval
	// A revoked session and the refused reconnects after it are one
	// situation; a new credential, or a session served meanwhile, is
	// another.
	situation := "refused"
	if l.cfg.CredentialGeneration != nil {
		situation = fmt.Sprintf("refused with credential %d", l.cfg.CredentialGeneration())
	}
	if situation == l.refusal {
		l.cfg.Logger.Debug("the agent token is still refused", zap.Duration("retry_in", wait))
		return wait
	}
	l.refusal = situation
	l.cfg.Logger.Error("the control plane refused the agent token (the error says why; a suspended owner needs an admin to reactivate them). "+
		l.cfg.RefusedHint+". Retrying at the longest backoff; this is logged again only when the token changes or a connection succeeded",
		zap.Error(err), zap.Duration("retry_in", wait))
	return wait
}

// Run connects and serves until ctx is cancelled, which is a clean exit
// (nil). Failures are logged and retried; Run never gives up.
func (l *Loop) Run(ctx context.Context) error {
	log := l.cfg.Logger
	// An agent starting is like an outage ending: the control plane may be
	// starting too.
	l.fastUntil = l.cfg.Clock.Now().Add(l.cfg.FastWindow)
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
			wait = l.refused(err)
		case errors.Is(err, ErrVersionMismatch):
			wait = l.cfg.MaxInterval
			log.Error("the control plane speaks another agent protocol version; upgrade the agent or the control plane",
				zap.Error(err), zap.Duration("retry_in", wait))
		case err != nil:
			wait = l.retryWait(err)
			log.Warn("cannot reach the control plane", zap.Error(err), zap.Duration("retry_in", wait))
		default:
			l.refusal = ""
			start := l.cfg.Clock.Now()
			serr := l.cfg.Serve(ctx, sess)
			l.closeSession(sess)
			if ctx.Err() != nil {
				return nil
			}
			now := l.cfg.Clock.Now()
			if now.Sub(start) >= l.cfg.StableAfter {
				l.bo.Reset()
				l.replacedInARow = 0
			}
			// A session that worked for a while ended: the outage is
			// young. One that ended at once is flapping, and backs off.
			if now.Sub(start) >= 5*l.cfg.FastInterval {
				l.fastUntil = now.Add(l.cfg.FastWindow)
			}
			if errors.Is(serr, ErrReplaced) {
				wait = l.replaced(serr)
				break
			}
			if errors.Is(serr, ErrRevoked) {
				wait = l.refused(serr)
				break
			}
			wait = l.retryWait(serr)
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
