package identity

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// StartLimitConfig configures a StartLimiter. Rates are per minute.
type StartLimitConfig struct {
	// PerSource is how many starts a minute one client address may make
	// in the long run. Default 10.
	PerSource float64
	// SourceBurst is how many starts one address may make at once, after
	// being quiet. Default 20.
	SourceBurst int
	// Total is how many starts a minute this replica accepts from every
	// address together, so that a flood from many addresses is bounded
	// too. Default 600.
	Total float64
	// TotalBurst is the burst of Total. Default 200.
	TotalBurst int
	// MaxSources bounds the addresses remembered. Addresses whose budget
	// has refilled are forgotten first; when every remembered one is still
	// spending, a new address is refused until one refills. Default 10000.
	MaxSources int
}

// Validate checks c after defaults.
func (c StartLimitConfig) Validate() error {
	if c.PerSource <= 0 || c.SourceBurst <= 0 || c.Total <= 0 || c.TotalBurst <= 0 || c.MaxSources <= 0 {
		return errors.New("identity: StartLimitConfig needs positive rates, bursts and MaxSources")
	}
	return nil
}

func (c StartLimitConfig) withDefaults() StartLimitConfig {
	if c.PerSource == 0 {
		c.PerSource = 10
	}
	if c.SourceBurst == 0 {
		c.SourceBurst = 20
	}
	if c.Total == 0 {
		c.Total = 600
	}
	if c.TotalBurst == 0 {
		c.TotalBurst = 200
	}
	if c.MaxSources == 0 {
		c.MaxSources = 10000
	}
	return c
}

// StartLimiter limits how often unauthenticated clients may start a
// sign-in flow that stores state (a single sign-on redirect, a device
// authorization): a token bucket per client address and one for all of
// them. A flood from one address, or from many, is refused with a wait
// rather than written, so it cannot fill the flows table; a person
// signing in a few times never meets it. It counts per replica, in
// memory: N replicas accept at most N times the rates, and a restart
// forgets — the bound on stored rows stays linear in both.
//
// A StartLimiter is safe for concurrent use; it starts no goroutine.
type StartLimiter struct {
	cfg StartLimitConfig

	// mu guards the fields that follow.
	mu      sync.Mutex
	total   *rate.Limiter
	sources map[string]*rate.Limiter
	swept   time.Time // the last forgetRefilled: at most one a second
}

// NewStartLimiter returns a limiter for cfg (zero fields take their
// defaults).
func NewStartLimiter(cfg StartLimitConfig) (*StartLimiter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &StartLimiter{cfg: cfg, total: rate.NewLimiter(perMinute(cfg.Total), cfg.TotalBurst),
		sources: map[string]*rate.Limiter{}}, nil
}

func perMinute(n float64) rate.Limit { return rate.Limit(n / 60) }

// Allow takes one start for address source at now. It returns 0 when the
// start may go ahead, or how long to wait (at least a second) when it is
// refused; a refused start takes nothing.
func (l *StartLimiter) Allow(source string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.sources[source]
	if lim == nil {
		if len(l.sources) >= l.cfg.MaxSources && now.Sub(l.swept) >= time.Second {
			l.forgetRefilled(now)
		}
		if len(l.sources) >= l.cfg.MaxSources {
			return wait(time.Duration(float64(time.Minute) / l.cfg.PerSource))
		}
		lim = rate.NewLimiter(perMinute(l.cfg.PerSource), l.cfg.SourceBurst)
		l.sources[source] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return wait(d)
	}
	t := l.total.ReserveN(now, 1)
	if d := t.DelayFrom(now); d > 0 {
		t.CancelAt(now)
		r.CancelAt(now)
		return wait(d)
	}
	return 0
}

// forgetRefilled drops the addresses whose bucket is full again: they are
// indistinguishable from new ones.
func (l *StartLimiter) forgetRefilled(now time.Time) {
	l.swept = now
	for k, lim := range l.sources {
		if lim.TokensAt(now) >= float64(l.cfg.SourceBurst) {
			delete(l.sources, k)
		}
	}
}

// wait rounds d up to whole seconds, at least one (Retry-After's unit).
func wait(d time.Duration) time.Duration {
	return max((d+time.Second-1)/time.Second*time.Second, time.Second)
}
