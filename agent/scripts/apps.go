package scripts

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/spawn"
)

// Clock is the time source of the Supervisor, injectable so tests need not
// sleep.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (SystemClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// SupervisorConfig configures a Supervisor.
type SupervisorConfig struct {
	// Spawner builds every app process. Required.
	Spawner *spawn.Spawner
	// Apps are the apps to run; each is started with `Shell -c Command`.
	Apps []proto.App
	// Sink receives each app's output under source "app:SLUG". nil
	// discards it.
	Sink LogSink
	// Logger records starts, exits and restarts (never output or env). nil
	// means a no-op logger.
	Logger *zap.Logger
	// Clock drives the restart backoff. nil means SystemClock.
	Clock Clock
	// InitialInterval is the first restart delay. Default 1s.
	InitialInterval time.Duration
	// MaxInterval caps the restart delay. Default 1 minute.
	MaxInterval time.Duration
	// StableAfter is how long an app must run for the next restart delay
	// to start again from InitialInterval. Default 1 minute.
	StableAfter time.Duration
}

// DefaultSupervisorConfig returns the defaults; Spawner and Apps are left
// for the caller.
func DefaultSupervisorConfig() SupervisorConfig {
	return SupervisorConfig{
		Sink:            NopSink{},
		Logger:          zap.NewNop(),
		Clock:           SystemClock{},
		InitialInterval: time.Second,
		MaxInterval:     time.Minute,
		StableAfter:     time.Minute,
	}
}

func (c SupervisorConfig) withDefaults() SupervisorConfig {
	d := DefaultSupervisorConfig()
	if c.Sink == nil {
		c.Sink = d.Sink
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.InitialInterval == 0 {
		c.InitialInterval = d.InitialInterval
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = d.MaxInterval
	}
	if c.StableAfter == 0 {
		c.StableAfter = d.StableAfter
	}
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c SupervisorConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Spawner == nil:
		return fmt.Errorf("%w: no spawner", ErrInvalidConfig)
	case c.InitialInterval < 0 || c.MaxInterval < c.InitialInterval:
		return fmt.Errorf("%w: intervals must satisfy 0 <= initial <= max", ErrInvalidConfig)
	case c.StableAfter < 0:
		return fmt.Errorf("%w: negative stable-after", ErrInvalidConfig)
	}
	seen := make(map[string]bool, len(c.Apps))
	for _, a := range c.Apps {
		if a.Command == "" {
			return fmt.Errorf("%w: app %q has no command", ErrInvalidConfig, a.Slug)
		}
		if seen[a.Slug] {
			return fmt.Errorf("%w: app slug %q is not unique", ErrInvalidConfig, a.Slug)
		}
		seen[a.Slug] = true
	}
	return nil
}

// Supervisor keeps a workspace's apps running. Each app runs in its own
// goroutine: start, wait, log the exit, wait a capped, jittered exponential
// backoff, start again — for as long as Run's context lives. The delay goes
// back to InitialInterval after a run of at least StableAfter.
type Supervisor struct {
	cfg SupervisorConfig
}

// NewSupervisor checks cfg and returns a Supervisor. It starts nothing.
func NewSupervisor(cfg SupervisorConfig) (*Supervisor, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Apps = append([]proto.App(nil), cfg.Apps...)
	return &Supervisor{cfg: cfg}, nil
}

// Run starts every app and keeps them running until ctx ends; then each
// app's process group gets SIGTERM (SIGKILL after the spawner's WaitDelay),
// and Run returns nil once all have exited.
func (s *Supervisor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, a := range s.cfg.Apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runApp(ctx, a)
		}()
	}
	wg.Wait()
	return nil
}

func (s *Supervisor) newBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = s.cfg.InitialInterval
	b.MaxInterval = s.cfg.MaxInterval
	b.MaxElapsedTime = 0
	b.Clock = s.cfg.Clock
	b.Reset()
	return b
}

// runApp is the loop of one app.
func (s *Supervisor) runApp(ctx context.Context, app proto.App) {
	log := s.cfg.Logger.With(zap.String("app", app.Slug))
	b := s.newBackOff()
	for runs := 0; ; runs++ {
		started := s.cfg.Clock.Now()
		err := s.runOnce(ctx, app)
		state := proto.RunExited
		if ctx.Err() != nil {
			state = proto.RunStopped
		}
		reportRun(s.cfg.Sink, ended("app:"+app.Slug, state, started, s.cfg.Clock.Now(), err))
		if ctx.Err() != nil {
			log.Info("app stopped")
			return
		}
		if s.cfg.Clock.Now().Sub(started) >= s.cfg.StableAfter {
			b.Reset()
		}
		delay := min(b.NextBackOff(), s.cfg.MaxInterval) // jitter never passes the cap
		log.Warn("app exited; restarting", zap.Int("runs", runs+1),
			zap.Duration("delay", delay), zap.NamedError("exit", err))
		c, stop := s.cfg.Clock.NewTimer(delay)
		select {
		case <-c:
		case <-ctx.Done():
			stop()
			log.Info("app stopped")
			return
		}
	}
}

// runOnce starts the app and waits for it to exit. A nil error means it
// exited with status 0.
func (s *Supervisor) runOnce(ctx context.Context, app proto.App) error {
	source := "app:" + app.Slug
	stdout := newLineWriter(s.cfg.Sink, source, StreamStdout)
	stderr := newLineWriter(s.cfg.Sink, source, StreamStderr)
	defer stdout.Close()
	defer stderr.Close()
	cmd, err := s.cfg.Spawner.Start(ctx, spawn.Spec{Command: app.Command}, func(c *exec.Cmd) error {
		c.Stdout, c.Stderr = stdout, stderr
		return c.Start()
	})
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("app started", zap.String("app", app.Slug), zap.Int("pid", cmd.Process.Pid))
	reportRun(s.cfg.Sink, proto.Run{Source: source, State: proto.RunRunning, StartedAt: s.cfg.Clock.Now().UTC()})
	err = cmd.Wait()
	if errors.Is(err, exec.ErrWaitDelay) {
		return nil
	}
	return err
}
