package audit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Appender appends records to the chain in one transaction (a store's
// AppendAudit).
type Appender func(ctx context.Context, recs []Record) error

// BatcherConfig configures a Batcher.
type BatcherConfig struct {
	// Append writes a batch. Required.
	Append Appender
	// Interval is the longest a record waits in memory. Default 1s.
	Interval time.Duration
	// MaxBatch flushes early once this many records wait. Default 500.
	MaxBatch int
	// MaxPending bounds the records held in memory; Add blocks beyond it
	// (a flood slows only itself, and no record is dropped). Default 100000.
	MaxPending int
	// Log reports failed flushes. Default: no logging.
	Log *zap.Logger
}

// Validate checks c after defaults.
func (c BatcherConfig) Validate() error {
	if c.Append == nil {
		return errors.New("audit: BatcherConfig.Append is required")
	}
	if c.Interval <= 0 || c.MaxBatch <= 0 || c.MaxPending < c.MaxBatch {
		return errors.New("audit: BatcherConfig needs a positive Interval and MaxBatch, and MaxPending >= MaxBatch")
	}
	return nil
}

func (c BatcherConfig) withDefaults() BatcherConfig {
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 500
	}
	if c.MaxPending == 0 {
		c.MaxPending = 100000
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	return c
}

// Batcher collects records of access decisions that change nothing (a
// failed sign-in, an agent refused, an SSH session opened) and appends them
// in batches, so that a flood of them costs one transaction per batch
// rather than one per request. Records wait at most Interval. Add never
// touches the database.
type Batcher struct {
	cfg  BatcherConfig
	kick chan struct{}
	done chan struct{}
	// failing is set from a failed batch until one is written again: an
	// outage is logged once, and its end once, not at every flush.
	failing atomic.Bool

	// mu guards the fields that follow.
	mu      sync.Mutex
	cond    *sync.Cond // signalled when buf shrinks
	buf     []Record
	closed  bool
	running bool
	stopped chan struct{} // closed when Run returns
}

// NewBatcher returns a Batcher; it starts no goroutine (see Run).
func NewBatcher(cfg BatcherConfig) (*Batcher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Batcher{cfg: cfg, kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	return b, nil
}

// Add queues r. It blocks only while MaxPending records wait.
func (b *Batcher) Add(r Record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.buf) >= b.cfg.MaxPending && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		return ErrClosed
	}
	b.buf = append(b.buf, r)
	if len(b.buf) >= b.cfg.MaxBatch {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Run flushes every Interval, or sooner when MaxBatch records wait, until
// ctx ends or Close; then it flushes what is left.
func (b *Batcher) Run(ctx context.Context) error {
	b.mu.Lock()
	b.running = true
	b.mu.Unlock()
	defer close(b.stopped)
	t := time.NewTicker(b.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.Flush(context.WithoutCancel(ctx))
			return nil
		case <-b.done:
			b.Flush(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
		case <-b.kick:
		}
		b.Flush(ctx)
	}
}

// Flush appends every waiting record now, in batches of MaxBatch. A batch
// that fails is logged and kept to be tried again at the next flush.
func (b *Batcher) Flush(ctx context.Context) {
	for {
		b.mu.Lock()
		n := min(len(b.buf), b.cfg.MaxBatch)
		batch := append([]Record(nil), b.buf[:n]...)
		b.mu.Unlock()
		if n == 0 {
			return
		}
		if err := b.cfg.Append(ctx, batch); err != nil {
			if !b.failing.Swap(true) {
				b.cfg.Log.Error("could not write audit records; keeping them to try again every flush",
					zap.Int("records", n), zap.Error(err))
			}
			return
		}
		if b.failing.Swap(false) {
			b.cfg.Log.Info("audit records are written again")
		}
		b.mu.Lock()
		b.buf = b.buf[n:]
		b.cond.Broadcast()
		b.mu.Unlock()
	}
}

// Close stops Run, waits for its last flush, and flushes what is left. Later Adds fail with ErrClosed. Safe to call twice.
func (b *Batcher) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	running := b.running
	b.cond.Broadcast()
	b.mu.Unlock()
	close(b.done)
	if running {
		<-b.stopped
	}
	// Records added after Run returned (its ctx ended first) are flushed
	// here.
	b.Flush(context.Background())
	return nil
}
