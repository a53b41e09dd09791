package agent

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
)

// maxQueuedSSHEvents bounds the SSH events (issue 20) waiting for a
// connection; past it the oldest are dropped and counted.
const maxQueuedSSHEvents = 1024

// sshEvents is the SSH server's sshd.Config.OnEvent: a bounded queue that
// never blocks the SSH server, sent in batches on the current session to a
// control plane that announced proto.FeatureSSHEvents (an older one would
// answer 404, so its events are dropped).
type sshEvents struct {
	session func() *conn.Session
	log     *zap.Logger
	wake    chan struct{}

	// mu guards the fields that follow.
	mu      sync.Mutex
	queue   []proto.SSHEvent
	dropped int
}

func newSSHEvents(session func() *conn.Session, log *zap.Logger) *sshEvents {
	return &sshEvents{session: session, log: log.Named("ssh-events"), wake: make(chan struct{}, 1)}
}

// add queues ev; it never blocks. Safe for concurrent use.
func (e *sshEvents) add(ev proto.SSHEvent) {
	e.mu.Lock()
	e.queue = append(e.queue, ev)
	e.trimLocked()
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// trimLocked drops the oldest events past the bound.
func (e *sshEvents) trimLocked() {
	if n := len(e.queue) - maxQueuedSSHEvents; n > 0 {
		e.queue = append(e.queue[:0:0], e.queue[n:]...)
		e.dropped += n
	}
}

// run sends what is queued as soon as it is queued, until ctx ends, then
// makes one last bounded attempt. A timer runs only while something is
// left unsent (retryInterval, as the output forwarder): an idle agent has
// none (issue 23).
func (e *sshEvents) run(ctx context.Context) {
	timer := time.NewTimer(retryInterval)
	timer.Stop()
	defer timer.Stop()
	armed := false
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			e.flush(fctx)
			cancel()
			return
		case <-e.wake:
		case <-timer.C:
			armed = false
		}
		if !e.flush(ctx) && !armed {
			timer.Reset(retryInterval)
			armed = true
		}
	}
}

// flush sends the queue in requests of at most proto.MaxReportSSHEvents;
// what a failed request held goes back to the front of the queue. It
// reports false when something is left to send (no connection, or a
// request failed).
func (e *sshEvents) flush(ctx context.Context) bool {
	s := e.session()
	if s == nil {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.queue) == 0
	}
	e.mu.Lock()
	batch, dropped := e.queue, e.dropped
	e.queue, e.dropped = nil, 0
	e.mu.Unlock()
	if dropped > 0 {
		e.log.Warn("ssh events dropped while the control plane could not take them", zap.Int("events", dropped))
	}
	if len(batch) == 0 {
		return true
	}
	if !s.ControlHas(proto.FeatureSSHEvents) {
		e.log.Debug("the control plane does not take ssh events; not reported", zap.Int("events", len(batch)))
		return true
	}
	for len(batch) > 0 {
		n := min(len(batch), proto.MaxReportSSHEvents)
		if err := s.ReportSSHEvents(ctx, proto.SSHEventReport{Events: batch[:n]}); err != nil {
			e.log.Debug("could not report ssh events to the control plane", zap.Error(err))
			e.mu.Lock()
			e.queue = append(batch, e.queue...)
			e.trimLocked()
			e.mu.Unlock()
			return false
		}
		batch = batch[n:]
	}
	return true
}
