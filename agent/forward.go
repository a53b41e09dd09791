package agent

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/mask"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/scripts"
)

// Bounds and pace of the output the agent forwards (issue 21). Lines wait
// in a bounded queue while there is no connection; past either bound the
// oldest are dropped (their masked text stays in the agent's log).
const (
	maxQueuedLines = 10000
	maxQueuedBytes = 1 << 20
	// flushEvery is the most a line waits before it is sent (connected).
	flushEvery = 250 * time.Millisecond
	// flushBytes sends at once when this much is queued; it also bounds
	// one request.
	flushBytes = 64 << 10
)

// queued is one line waiting to be sent, with its source.
type queued struct {
	source string
	line   proto.LogLine
}

// forwarder is the scripts.LogSink and scripts.RunSink of scripts and
// apps: each line is masked of the owner's secret values first, then goes
// to the agent's log at once and to the control plane in batches, in the
// order written. Runs go to a control plane that stores them (see
// proto.FeatureStartupLogs).
type forwarder struct {
	session func() *conn.Session
	log     *zap.Logger
	masker  atomic.Pointer[mask.Masker]
	// wake asks for a flush now (a run, or a full batch); queued says a
	// line is waiting, to be sent within flushEvery. An idle agent has no
	// timer running at all (issue 23: ~0 CPU when idle).
	wake   chan struct{}
	queued chan struct{}

	// mu guards the fields that follow.
	mu      sync.Mutex
	queue   []queued
	bytes   int
	dropped int
	runs    map[string]proto.Run
	order   []string // sources of runs, first reported first
	values  map[string]bool
}

func newForwarder(session func() *conn.Session, log *zap.Logger) *forwarder {
	return &forwarder{session: session, log: log.Named("output"), runs: map[string]proto.Run{},
		values: map[string]bool{}, wake: make(chan struct{}, 1), queued: make(chan struct{}, 1)}
}

// setSecrets adds the values of the owner's secrets to those masked. Values
// seen before stay masked: a process started before a change may still
// print an old value.
func (f *forwarder) setSecrets(values []string) {
	f.mu.Lock()
	changed := false
	for _, v := range values {
		if len(v) >= mask.MinBytes && !f.values[v] {
			f.values[v], changed = true, true
		}
	}
	if !changed && f.masker.Load() != nil {
		f.mu.Unlock()
		return
	}
	all := make([]string, 0, len(f.values))
	for v := range f.values {
		all = append(all, v)
	}
	f.mu.Unlock()
	m := mask.New(all)
	f.masker.Store(m)
	f.log.Debug("output masking updated", zap.Int("values", len(all)), zap.Int("forms", m.Forms()))
}

// Log implements scripts.LogSink. Safe for concurrent use.
func (f *forwarder) Log(source, stream, line string) {
	line = f.masker.Load().Mask(line)
	f.log.Info(line, zap.String("source", source), zap.String("stream", stream))
	f.mu.Lock()
	f.queue = append(f.queue, queued{source: source, line: proto.LogLine{At: time.Now().UTC(), Stream: stream, Text: line}})
	f.bytes += len(line)
	f.trimLocked()
	full := f.bytes >= flushBytes
	f.mu.Unlock()
	if full {
		f.poke()
		return
	}
	select {
	case f.queued <- struct{}{}:
	default:
	}
}

// Run implements scripts.RunSink. Only a source's latest run is kept.
func (f *forwarder) Run(r proto.Run) {
	f.mu.Lock()
	if _, ok := f.runs[r.Source]; !ok {
		f.order = append(f.order, r.Source)
	}
	f.runs[r.Source] = r
	f.mu.Unlock()
	f.poke()
}

func (f *forwarder) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// trimLocked drops the oldest lines past the bounds.
func (f *forwarder) trimLocked() {
	n := 0
	for len(f.queue)-n > maxQueuedLines || f.bytes > maxQueuedBytes {
		f.bytes -= len(f.queue[n].line.Text)
		n++
	}
	if n > 0 {
		f.queue = append(f.queue[:0:0], f.queue[n:]...)
		f.dropped += n
	}
}

// retryInterval is how soon what found no connection is tried again.
const retryInterval = 500 * time.Millisecond

// run flushes batches until ctx ends, then makes one last bounded attempt.
// Its timer runs only while something waits: flushEvery after the first
// line queued, retryInterval while a flush left something unsent.
func (f *forwarder) run(ctx context.Context) {
	timer := time.NewTimer(flushEvery)
	timer.Stop()
	defer timer.Stop()
	armed := false
	arm := func(d time.Duration) {
		if !armed {
			timer.Reset(d)
			armed = true
		}
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			f.flush(fctx)
			cancel()
			return
		case <-f.queued:
			arm(flushEvery)
			continue
		case <-f.wake:
		case <-timer.C:
			armed = false
		}
		if !f.flush(ctx) {
			arm(retryInterval)
		}
	}
}

// flush sends what is queued, in order, in requests of at most flushBytes;
// what a failed request held goes back to the front of the queue. It
// reports false when something is left to send (no connection, or a
// request failed).
func (f *forwarder) flush(ctx context.Context) bool {
	s := f.session()
	if s == nil {
		f.mu.Lock()
		idle := len(f.queue) == 0 && len(f.order) == 0
		f.mu.Unlock()
		return idle
	}
	stores := s.ControlHas(proto.FeatureStartupLogs)
	f.mu.Lock()
	batch, dropped := f.queue, f.dropped
	f.queue, f.bytes, f.dropped = nil, 0, 0
	var runs []proto.Run
	for _, src := range f.order {
		runs = append(runs, f.runs[src])
	}
	f.runs, f.order = map[string]proto.Run{}, nil
	f.mu.Unlock()
	if dropped > 0 {
		f.log.Warn("output lines dropped while the control plane could not take them", zap.Int("lines", dropped))
	}
	for len(batch) > 0 {
		n := chunk(batch, stores)
		rep := proto.LogReport{Source: batch[0].source, Lines: make([]proto.LogLine, n)}
		for i, q := range batch[:n] {
			rep.Lines[i] = q.line
			if stores {
				rep.Lines[i].Source = q.source
			}
		}
		if err := s.ReportLogs(ctx, rep); err != nil {
			f.log.Debug("could not forward output to the control plane", zap.Error(err))
			f.requeue(batch)
			return false
		}
		batch = batch[n:]
	}
	if stores && len(runs) > 0 {
		if err := s.ReportRuns(ctx, proto.RunReport{Runs: runs}); err != nil {
			f.log.Debug("could not report runs to the control plane", zap.Error(err))
			f.mu.Lock()
			for _, r := range runs {
				if _, newer := f.runs[r.Source]; !newer {
					f.order = append(f.order, r.Source)
					f.runs[r.Source] = r
				}
			}
			f.mu.Unlock()
			return false
		}
	}
	return true
}

// chunk is how many of batch's first lines go in one request: at most
// flushBytes of text (one line at least), and one source each unless the
// control plane takes per-line sources.
func chunk(batch []queued, perLineSource bool) int {
	size := 0
	for i, q := range batch {
		size += len(q.line.Text)
		if i > 0 && (size > flushBytes || (!perLineSource && q.source != batch[0].source)) {
			return i
		}
	}
	return len(batch)
}

// requeue puts unsent lines back before those queued since.
func (f *forwarder) requeue(unsent []queued) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range unsent {
		f.bytes += len(q.line.Text)
	}
	f.queue = append(unsent, f.queue...)
	f.trimLocked()
}

var (
	_ scripts.LogSink    = (*forwarder)(nil)
	_ scripts.RunSink    = (*forwarder)(nil)
	_ scripts.LineMasker = (*forwarder)(nil)
)

// MaskLine implements scripts.LineMasker: lines are masked whole before
// they are cut at scripts.MaxLineBytes (Log masks again, which is
// harmless).
func (f *forwarder) MaskLine(line string) string { return f.masker.Load().Mask(line) }
