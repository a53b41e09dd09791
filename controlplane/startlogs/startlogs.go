// Package startlogs stores and serves workspaces' startup logs: the output
// of their startup scripts and apps, and each one's last run (issue 21). It
// takes what agents report (already masked of secret values by the agent),
// bounds it, batches the writes of each workspace so a chatty script
// cannot flood the database, and reads and follows it for the REST API, the
// CLI and the dashboard. Everything lives in the store, so every replica
// serves it and it survives a restart.
package startlogs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/internal/utf8clip"
)

// Errors of this package.
var (
	// ErrConfig is wrapped by Config.Validate failures.
	ErrConfig = errors.New("invalid startlogs config")
)

// Config configures Logs.
type Config struct {
	// Store holds the output. Required.
	Store store.Store
	// Limits bound each workspace's stored output; the oldest lines go.
	// Default 10,000 lines and 1 MiB of text.
	Limits store.LogLimits
	// MinInterval is the least time between two writes of one
	// workspace's output: reports arriving meanwhile are written together
	// in the next one. Default 200ms; negative means no wait.
	MinInterval time.Duration
	// PollInterval is how often a follower reads the store for lines
	// written through another replica (lines written through this one wake
	// it at once). Default 1s.
	PollInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults; Store is left to the caller.
func DefaultConfig() Config {
	return Config{Limits: store.LogLimits{MaxLines: 10000, MaxBytes: 1 << 20}, MinInterval: 200 * time.Millisecond,
		PollInterval: time.Second, Now: time.Now}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Limits.MaxLines == 0 {
		c.Limits.MaxLines = d.Limits.MaxLines
	}
	if c.Limits.MaxBytes == 0 {
		c.Limits.MaxBytes = d.Limits.MaxBytes
	}
	if c.MinInterval == 0 {
		c.MinInterval = d.MinInterval
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Store == nil:
		return fmt.Errorf("%w: Store is required", ErrConfig)
	case c.Limits.MaxLines < 0 || c.Limits.MaxBytes < 0:
		return fmt.Errorf("%w: negative limits", ErrConfig)
	case c.PollInterval < 0:
		return fmt.Errorf("%w: negative poll interval", ErrConfig)
	}
	return nil
}

// Bounds on one line as stored, whatever an agent sends: the agent splits
// lines at 16 KiB, so an honest agent never hits them.
const (
	MaxTextBytes   = 16 << 10
	MaxSourceBytes = 256
	MaxStreamBytes = 16
)

// Logs is the startup-log service of one replica. Safe for concurrent use;
// it starts no goroutine: writes happen on the reporting requests (one of
// them writes the batch of all, see Append).
type Logs struct {
	cfg Config

	// mu guards the fields that follow.
	mu      sync.Mutex
	pending map[string]*pending // by workspace ID
	// changed is closed, and replaced, after every write: it wakes this
	// replica's followers.
	changed chan struct{}
	// sweepAt is the size of pending at which idle entries are dropped
	// (see sweepLocked).
	sweepAt int
}

// minSweep is the least size of pending that is swept.
const minSweep = 1024

// pending is what waits to be written for one workspace.
type pending struct {
	// turn is held by the request writing this workspace's batch.
	turn  chan struct{}
	batch *batch
	last  time.Time // end of the last write; guarded by Logs.mu
}

// batch is the lines of one write and its outcome; done is closed after.
type batch struct {
	lines []store.LogLine
	done  chan struct{}
	err   error
}

// New validates cfg and returns Logs. It starts nothing.
func New(cfg Config) (*Logs, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Logs{cfg: cfg, pending: map[string]*pending{}, changed: make(chan struct{}), sweepAt: minSweep}, nil
}

// Limits returns the per-workspace bounds in force.
func (l *Logs) Limits() store.LogLimits { return l.cfg.Limits }

// Clean makes a reported line storable: fields cut to their bounds
// (without splitting a UTF-8 sequence), a stream other than stdout and
// stderr read as stdout, a missing time read as now.
func (l *Logs) Clean(line store.LogLine) store.LogLine {
	line.Text, line.Source = utf8clip.Clip(line.Text, MaxTextBytes), utf8clip.Clip(line.Source, MaxSourceBytes)
	if line.Stream != "stderr" {
		line.Stream = "stdout"
	}
	if line.At.IsZero() {
		line.At = l.cfg.Now()
	}
	line.At = line.At.UTC()
	return line
}

// Append stores lines of a workspace (cleaned by the caller). Reports of
// one workspace arriving together are written in one transaction, at most
// one per MinInterval: the first request takes the workspace's turn, waits
// out the interval while others add their lines, and writes them all;
// every request returns its batch's outcome.
func (l *Logs) Append(ctx context.Context, workspaceID string, lines []store.LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	l.mu.Lock()
	if len(l.pending) >= l.sweepAt {
		l.sweepLocked()
	}
	p := l.pending[workspaceID]
	if p == nil {
		p = &pending{turn: make(chan struct{}, 1), batch: &batch{done: make(chan struct{})}}
		l.pending[workspaceID] = p
	}
	b := p.batch
	b.lines = l.cfg.Limits.Trim(append(b.lines, lines...))
	l.mu.Unlock()

	select {
	case p.turn <- struct{}{}:
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.turn }()
	select {
	case <-b.done: // written by the request that held the turn
		return b.err
	default:
	}
	l.mu.Lock()
	last := p.last
	l.mu.Unlock()
	if wait := l.cfg.MinInterval - l.cfg.Now().Sub(last); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err() // the lines stay pending for the next request
		}
	}
	l.mu.Lock()
	b = p.batch
	p.batch = &batch{done: make(chan struct{})}
	l.mu.Unlock()
	_, b.err = l.cfg.Store.AppendWorkspaceLogs(ctx, workspaceID, b.lines, l.cfg.Limits)
	close(b.done)
	l.mu.Lock()
	p.last = l.cfg.Now()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return b.err
}

// sweepLocked drops the entries of workspaces with nothing pending, no
// write under way and no write for MinInterval, so pending does not grow
// with every workspace that ever reported. A request still holding a
// dropped entry only returns its batch's outcome (its lines, had it any,
// would keep the entry). Amortized: the next sweep waits until pending
// doubles.
func (l *Logs) sweepLocked() {
	now := l.cfg.Now()
	for id, p := range l.pending {
		if len(p.batch.lines) == 0 && len(p.turn) == 0 && now.Sub(p.last) >= l.cfg.MinInterval {
			delete(l.pending, id)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.pending))
}

// SetRuns records runs of a workspace's scripts and apps.
func (l *Logs) SetRuns(ctx context.Context, workspaceID string, runs []store.ScriptRun) error {
	for _, r := range runs {
		r.Source = utf8clip.Clip(r.Source, MaxSourceBytes)
		if err := l.cfg.Store.SetScriptRun(ctx, workspaceID, r); err != nil {
			return err
		}
	}
	return nil
}

// Read returns a workspace's lines matching q.
func (l *Logs) Read(ctx context.Context, workspaceID string, q store.LogQuery) ([]store.LogLine, error) {
	return l.cfg.Store.WorkspaceLogs(ctx, workspaceID, q)
}

// Runs returns a workspace's script and app runs.
func (l *Logs) Runs(ctx context.Context, workspaceID string) ([]store.ScriptRun, error) {
	return l.cfg.Store.ScriptRuns(ctx, workspaceID)
}

// Follow calls fn with each new batch of a workspace's lines matching q
// (q.After advancing past each), until ctx ends (then it returns nil) or
// fn or a read fails. It reads the store when a write on this replica
// happened and every PollInterval, so lines written through another
// replica arrive too. fn is also called with no lines once per
// PollInterval of quiet (a heartbeat for the caller's connection).
func (l *Logs) Follow(ctx context.Context, workspaceID string, q store.LogQuery, fn func([]store.LogLine) error) error {
	tick := time.NewTicker(l.cfg.PollInterval)
	defer tick.Stop()
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		lines, err := l.Read(ctx, workspaceID, q)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if len(lines) > 0 {
			q.After = lines[len(lines)-1].Seq
			if err := fn(lines); err != nil {
				return err
			}
			continue // there may be more than q.Limit
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
			if err := fn(nil); err != nil {
				return err
			}
		}
	}
}
