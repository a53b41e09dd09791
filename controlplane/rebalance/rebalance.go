// Package rebalance evens out the agents over a deployment's replicas. An
// agent holds one long-lived connection, so a replica that was down (or
// was added) gets none of the fleet back by itself: the others keep what
// they took over until agents happen to reconnect. Here a replica that
// holds clearly more than its share (connected agents over live replicas,
// as the database records them) asks a few of its agents at a time to
// reconnect; the load balancer (leastconn, or round robin more slowly)
// sends them to a replica with fewer. It is deliberately gentle: a small
// fraction per interval, each close at its own random moment of the
// interval, and nothing at all below a tolerance, so replicas near their
// share never trade agents back and forth.
package rebalance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
)

// ErrConfig is wrapped by every Config.Validate failure.
var ErrConfig = errors.New("invalid rebalance config")

// Config configures a Rebalancer.
type Config struct {
	// Self is this replica's ID as registered. Required.
	Self string
	// Loads returns the connected agents of every live replica by ID.
	// Required.
	Loads func(ctx context.Context) (map[string]int, error)
	// Shed asks one of this replica's agents to reconnect and reports
	// whether there was one to ask. Required.
	Shed func() bool
	// Interval is how often the load is compared; the closes of one
	// interval are spread over the next. Default 10s.
	Interval time.Duration
	// Fraction bounds what one interval sheds, as a fraction of the
	// replica's agents. Default 0.05.
	Fraction float64
	// Tolerance is how far above its share a replica may stay: it sheds
	// only above share × (1 + Tolerance), and never more than brings it
	// back to its share. Default 0.1.
	Tolerance float64
	// MinExcess ignores imbalances of fewer agents than this (small
	// deployments need no balancing). Default 20.
	MinExcess int
	// Settle is how long an imbalance must have been seen, at every look,
	// before any agent is asked to move: passing states settle by
	// themselves (a replica killed moments ago still counts as live, with
	// no agents, until its heartbeat is old; a fleet reconnecting after
	// an outage is uneven for a while). Default 15s.
	Settle time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// After is the clock's timer. Default time.After.
	After func(time.Duration) <-chan time.Time
	// Rand returns a uniform float in [0, 1). Default math/rand/v2.
	Rand func() float64
	// Logger gets one line per interval that sheds. Default nop.
	Logger *zap.Logger
}

// DefaultConfig returns the defaults of every optional field.
func DefaultConfig() Config {
	return Config{Interval: 10 * time.Second, Fraction: 0.05, Tolerance: 0.1, MinExcess: 20, Settle: 15 * time.Second,
		Now: time.Now, After: time.After, Rand: rand.Float64, Logger: zap.NewNop()}
}

// withDefaults fills c's zero optional fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.Fraction == 0 {
		c.Fraction = d.Fraction
	}
	if c.Tolerance == 0 {
		c.Tolerance = d.Tolerance
	}
	if c.MinExcess == 0 {
		c.MinExcess = d.MinExcess
	}
	if c.Settle == 0 {
		c.Settle = d.Settle
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.After == nil {
		c.After = d.After
	}
	if c.Rand == nil {
		c.Rand = d.Rand
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}

// Validate reports whether c (with defaults filled) is usable.
func (c Config) Validate() error {
	switch {
	case c.Self == "" || c.Loads == nil || c.Shed == nil:
		return fmt.Errorf("%w: Self, Loads and Shed are required", ErrConfig)
	case c.Interval <= 0 || c.Fraction <= 0 || c.Fraction > 1 || c.Tolerance < 0 || c.MinExcess < 0 || c.Settle < 0:
		return fmt.Errorf("%w: interval and fraction (up to 1) must be positive, tolerance, min excess and settle not negative", ErrConfig)
	}
	return nil
}

// Plan returns how many of self's agents to ask to reconnect this
// interval, given every live replica's load: none when self is within
// tolerance of its share (or alone), else the excess over the share,
// bounded by Fraction of its agents (at least one).
func Plan(c Config, self string, loads map[string]int) int {
	own, ok := loads[self]
	if !ok || len(loads) < 2 {
		return 0
	}
	total := 0
	for _, n := range loads {
		total += n
	}
	share := float64(total) / float64(len(loads))
	excess := own - int(math.Ceil(share))
	if float64(own) <= share*(1+c.Tolerance) || excess < c.MinExcess {
		return 0
	}
	return min(excess, max(1, int(c.Fraction*float64(own))))
}

// Rebalancer runs Plan every interval and sheds what it says once the
// imbalance has lasted Settle. Its Run and Step are not to be called
// concurrently.
type Rebalancer struct {
	cfg Config
	// since is when the looks began to find an imbalance (zero: the
	// last look found none).
	since time.Time
}

// New fills cfg's zero optional fields with DefaultConfig's, validates it
// and returns a Rebalancer. It starts nothing.
func New(cfg Config) (*Rebalancer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Rebalancer{cfg: cfg}, nil
}

// Run compares the loads every Interval (each wait jittered by ±25%, so
// replicas do not act in step) and spreads the closes Plan asks for over
// the next interval, until ctx ends. A failed read of the loads skips one
// interval.
func (r *Rebalancer) Run(ctx context.Context) error {
	for {
		if !r.wait(ctx, time.Duration(float64(r.cfg.Interval)*(0.75+r.cfg.Rand()/2))) {
			return nil
		}
		if _, err := r.Step(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Debug("could not read the replicas' loads", zap.Error(err))
		}
	}
}

// Step reads the loads and, when every look for at least Settle found an
// imbalance, sheds what Plan says, each close after a random wait of up
// to 2×Interval/n so that the n closes spread over about one interval. A
// look without an imbalance, or a failed read, starts the count again. It
// returns how many agents it asked to reconnect.
func (r *Rebalancer) Step(ctx context.Context) (int, error) {
	now := r.cfg.Now()
	loads, err := r.cfg.Loads(ctx)
	if err != nil {
		r.since = time.Time{}
		return 0, err
	}
	n := Plan(r.cfg, r.cfg.Self, loads)
	if n == 0 {
		r.since = time.Time{}
		return 0, nil
	}
	if r.since.IsZero() {
		r.since = now
	}
	if now.Sub(r.since) < r.cfg.Settle {
		return 0, nil
	}
	r.cfg.Logger.Info("this replica holds more than its share of agents; asking some to reconnect elsewhere",
		zap.Int("agents", loads[r.cfg.Self]), zap.Int("replicas", len(loads)), zap.Int("asking", n))
	shed := 0
	for range n {
		if !r.wait(ctx, time.Duration(2*r.cfg.Rand()*float64(r.cfg.Interval)/float64(n))) || !r.cfg.Shed() {
			break
		}
		shed++
	}
	return shed, nil
}

func (r *Rebalancer) wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-r.cfg.After(d):
		return true
	}
}
