package agent

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
)

// forwarder is the scripts.LogSink of scripts and apps: each line goes to
// the agent's log at once and to the control plane in batches. Lines wait
// in a bounded buffer while there is no connection; the oldest are dropped
// past maxBuffered (they are still in the agent's log).
type forwarder struct {
	session func() *conn.Session
	log     *zap.Logger

	// mu guards pending.
	mu      sync.Mutex
	pending map[string][]proto.LogLine
	count   int
	wake    chan struct{}
}

const maxBuffered = 5000

func newForwarder(session func() *conn.Session, log *zap.Logger) *forwarder {
	return &forwarder{session: session, log: log.Named("output"), pending: map[string][]proto.LogLine{},
		wake: make(chan struct{}, 1)}
}

// Log implements scripts.LogSink. Safe for concurrent use.
func (f *forwarder) Log(source, stream, line string) {
	f.log.Info(line, zap.String("source", source), zap.String("stream", stream))
	f.mu.Lock()
	if f.count >= maxBuffered {
		for s, lines := range f.pending {
			if len(lines) > 0 {
				f.pending[s] = lines[1:]
				f.count--
				break
			}
		}
	}
	f.pending[source] = append(f.pending[source], proto.LogLine{At: time.Now().UTC(), Stream: stream, Text: line})
	f.count++
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// retryInterval is how soon lines that found no connection are tried again.
const retryInterval = 500 * time.Millisecond

// run flushes batches until ctx ends, then makes one last bounded attempt.
// It wakes for new lines, and on a timer only while lines wait for a
// connection: an idle agent with nothing to send is not woken at all.
func (f *forwarder) run(ctx context.Context) {
	retry := time.NewTimer(retryInterval)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			f.flush(fctx)
			cancel()
			return
		case <-f.wake:
		case <-retry.C:
		}
		if !f.flush(ctx) {
			retry.Reset(retryInterval)
		}
	}
}

// flush sends the pending lines and reports false when there are lines it
// could not try for want of a connection.
func (f *forwarder) flush(ctx context.Context) bool {
	s := f.session()
	f.mu.Lock()
	if f.count == 0 {
		f.mu.Unlock()
		return true
	}
	if s == nil {
		f.mu.Unlock()
		return false
	}
	batch := f.pending
	f.pending, f.count = map[string][]proto.LogLine{}, 0
	f.mu.Unlock()
	for source, lines := range batch {
		if len(lines) == 0 {
			continue
		}
		if err := s.ReportLogs(ctx, proto.LogReport{Source: source, Lines: lines}); err != nil {
			f.log.Debug("could not forward output to the control plane", zap.Error(err))
		}
	}
	return true
}
