package agentapi

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/store"
)

// Limits of the status writer.
const (
	// statusBatch bounds the events of one store call: a PostgreSQL batch
	// of this many statements is one round trip of a few hundred KiB at
	// most, and SQLite's writer is not held long by it.
	statusBatch = 256
	// statusQueueMax bounds the events waiting while the database is
	// unavailable (about 200 bytes each, apply reports more): past it,
	// the oldest unwaited events are dropped, counted and logged. A
	// connected agent's status is written again at its next connect.
	statusQueueMax = 50_000
	// statusRetry is the pause before a batch that failed because the
	// database is unavailable is tried again.
	statusRetry = time.Second
)

// statusWriter records the agents' status changes (connected,
// disconnected, replaced, apply reported) in batches: every change queued
// while one batch is being written goes into the next, one store call and
// so one transaction and one commit. A restart storm's thousands of
// connects and reports then cost the database a few commits a second
// instead of one each, and hold one of its pooled connections instead of
// queueing on all of them until they time out, which left no connection
// for the work the agents came for.
//
// Events are written in the order they were queued. An event may be
// waited for (wait), which returns its own outcome, or not (add). While
// the database is unavailable a batch of unwaited events is kept and tried
// again every statusRetry; a waited one fails at once, as the single
// write it replaces did. It is logged once per episode, not per event.
type statusWriter struct {
	store store.Store
	log   *zap.Logger
	// Limits, statusQueueMax, statusRetry and recordTimeout but in tests.
	maxQueued    int
	retry, flush time.Duration

	mu      sync.Mutex
	queue   []statusEvent
	dropped int // since the last log of it
	// droppedTotal counts every event dropped since the start, and
	// inflight the events of the batch being written, for /metrics.
	droppedTotal uint64
	inflight     int
	closing      bool
	started      bool          // run was started (by the first event)
	wake         chan struct{} // cap 1: the queue has events, or closing
	closed       chan struct{} // closed by close
	done         chan struct{} // closed when run returns
}

type statusEvent struct {
	ev store.AgentEvent
	// result, when set (cap 1), receives the event's outcome.
	result chan error
}

func newStatusWriter(st store.Store, log *zap.Logger) *statusWriter {
	return &statusWriter{store: st, log: log, maxQueued: statusQueueMax, retry: statusRetry, flush: recordTimeout, wake: make(chan struct{}, 1), closed: make(chan struct{}),
		done: make(chan struct{})}
}

// add queues ev without waiting for it. It reports false when the writer
// has been closed (ev is dropped).
func (w *statusWriter) add(ev store.AgentEvent) bool {
	return w.push(statusEvent{ev: ev})
}

// wait queues ev and returns its outcome: nil, store.ErrNotFound when its
// workspace does not exist, the store's error, or ctx's when ctx ends
// first (the event may still be written).
func (w *statusWriter) wait(ctx context.Context, ev store.AgentEvent) error {
	res := make(chan error, 1)
	if !w.push(statusEvent{ev: ev, result: res}) {
		return ErrClosed
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *statusWriter) push(e statusEvent) bool {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return false
	}
	if !w.started {
		w.started = true
		go w.run()
	}
	if len(w.queue) >= w.maxQueued {
		w.dropOldest()
	}
	w.queue = append(w.queue, e)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// dropOldest drops the oldest event nobody waits for (the oldest of all
// when every one is waited for, whose waiter hears ErrQueueFull). Called
// with mu held.
func (w *statusWriter) dropOldest() {
	i := 0
	for i < len(w.queue) && w.queue[i].result != nil {
		i++
	}
	if i == len(w.queue) {
		i = 0
	}
	if r := w.queue[i].result; r != nil {
		r <- errStatusQueueFull
	}
	w.queue = append(w.queue[:i], w.queue[i+1:]...)
	w.dropped++
	w.droppedTotal++
}

// backlog returns how many events wait to be written, and how many were
// dropped since the start.
func (w *statusWriter) backlog() (pending int, dropped uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) + w.inflight, w.droppedTotal
}

// errStatusQueueFull is a waited event's outcome when it was dropped.
var errStatusQueueFull = errors.New("agentapi: too many agent status changes waiting for the database")

// close stops taking events, writes those queued (giving up after
// flush) and returns once the loop has ended.
func (w *statusWriter) close() {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return
	}
	w.closing = true
	started := w.started
	w.mu.Unlock()
	close(w.closed)
	if started {
		<-w.done
	}
}

// run writes batches until closed and the queue is empty.
func (w *statusWriter) run() {
	defer close(w.done)
	var (
		failing  bool             // in an episode of failed batches (logged once)
		deadline time.Time        // after closing: when to give up
		pause    <-chan time.Time // set while waiting to retry
	)
	for {
		if pause != nil {
			select {
			case <-pause:
			case <-w.closed:
			}
			pause = nil
		}
		w.mu.Lock()
		n := min(len(w.queue), statusBatch)
		batch := append([]statusEvent(nil), w.queue[:n]...)
		w.queue = append(w.queue[:0], w.queue[n:]...)
		w.inflight = n
		closing, dropped := w.closing, w.dropped
		w.dropped = 0
		w.mu.Unlock()
		if dropped > 0 {
			w.log.Error("agent status changes dropped: the database was unavailable for too long and too many were waiting",
				zap.Int("dropped", dropped))
		}
		if closing && deadline.IsZero() {
			deadline = time.Now().Add(w.flush)
		}
		if n == 0 {
			if closing {
				return
			}
			select {
			case <-w.wake:
			case <-w.closed:
			}
			continue
		}
		keep, err := w.write(batch, deadline)
		giveUp := len(keep) > 0 && closing && time.Now().After(deadline)
		w.mu.Lock()
		w.inflight = 0
		if len(keep) > 0 && !giveUp {
			w.queue = append(keep, w.queue...)
		}
		w.mu.Unlock()
		switch {
		case err == nil && failing:
			failing = false
			w.log.Info("agent status changes are recorded again")
		case err != nil && !failing:
			failing = true
			w.log.Error("could not record agent status changes (connections, disconnections, apply reports); "+
				"trying again while the database is unavailable", zap.Int("changes", len(batch)), zap.Error(err))
		}
		if len(keep) == 0 {
			continue
		}
		if giveUp {
			w.mu.Lock()
			left := append(keep, w.queue...)
			w.queue = nil
			w.mu.Unlock()
			for _, e := range left {
				if e.result != nil {
					e.result <- ErrClosed
				}
			}
			w.log.Error("agent status changes not recorded at shutdown: the database was unavailable", zap.Int("changes", len(left)))
			return
		}
		pause = time.After(w.retry)
	}
}

// write records batch and tells its waiters. It returns the unwaited
// events to try again (the database was unavailable) and the batch's
// error, if any. A batch refused for another reason is written one event
// at a time, so that one bad event does not lose the rest.
func (w *statusWriter) write(batch []statusEvent, deadline time.Time) ([]statusEvent, error) {
	if deadline.IsZero() {
		deadline = time.Now().Add(w.flush)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	evs := make([]store.AgentEvent, len(batch))
	for i, e := range batch {
		evs[i] = e.ev
	}
	missing, err := w.store.RecordAgentEvents(ctx, evs)
	if err == nil {
		for i, e := range batch {
			gone := len(missing) > 0 && missing[0] == i
			if gone {
				missing = missing[1:]
			}
			switch {
			case e.result == nil:
			case gone:
				e.result <- store.ErrNotFound
			default:
				e.result <- nil
			}
		}
		return nil, nil
	}
	if store.Unavailable(err) != nil || errors.Is(err, context.DeadlineExceeded) {
		var keep []statusEvent
		for _, e := range batch {
			if e.result != nil {
				e.result <- err
				continue
			}
			keep = append(keep, e)
		}
		return keep, err
	}
	if len(batch) == 1 {
		if batch[0].result != nil {
			batch[0].result <- err
		} else {
			w.log.Error("could not record an agent status change", zap.String("workspace_id", batch[0].ev.WorkspaceID), zap.Error(err))
		}
		return nil, nil
	}
	var keep []statusEvent
	for _, e := range batch {
		k, _ := w.write([]statusEvent{e}, deadline)
		keep = append(keep, k...)
	}
	return keep, nil
}
