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

// run flushes batches until ctx ends, then makes one last bounded attempt.
func (f *forwarder) run(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			f.flush(fctx)
			cancel()
			return
		case <-f.wake:
		case <-tick.C:
		}
		f.flush(ctx)
	}
}

func (f *forwarder) flush(ctx context.Context) {
	s := f.session()
	if s == nil {
		return
	}
	f.mu.Lock()
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
}
