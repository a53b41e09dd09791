package scripts

import (
	"bytes"
	"errors"
	"os/exec"
	"sync"
	"time"

	"github.com/courierhq/courier/agent/proto"
)

// LogSink receives the output of scripts and apps, one line at a time, with
// the trailing newline removed. source is "script:NAME" or "app:SLUG";
// stream is "stdout" or "stderr". Implementations must be safe for
// concurrent use: a process's two streams and every app write at once. The
// daemon forwards lines to its logger and to the control plane; output is
// the program's own and may hold anything it printed.
type LogSink interface {
	Log(source, stream, line string)
}

// RunSink, when a LogSink implements it too, receives each script's and
// app's run: a proto.RunRunning report when it starts, and one with how
// it ended. Implementations must be safe for concurrent use.
type RunSink interface {
	Run(r proto.Run)
}

// reportRun hands r to sink when it is a RunSink.
func reportRun(sink LogSink, r proto.Run) {
	if rs, ok := sink.(RunSink); ok {
		rs.Run(r)
	}
}

// exitCode is the exit status in err (nil: 0), -1 when there is none.
func exitCode(err error) int {
	if err == nil || errors.Is(err, exec.ErrWaitDelay) {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	var se *ScriptError
	if errors.As(err, &se) {
		return se.ExitCode
	}
	return -1
}

// ended is the run of source, started at start, that ended now with state
// and err's exit status.
func ended(source, state string, start, now time.Time, err error) proto.Run {
	return proto.Run{Source: source, State: state, ExitCode: exitCode(err), StartedAt: start.UTC(),
		DurationMS: now.Sub(start).Milliseconds()}
}

// Stream names passed to LogSink.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// MaxLineBytes bounds one line handed to a LogSink; a longer line is split.
const MaxLineBytes = 16 << 10

// NopSink discards every line.
type NopSink struct{}

// Log does nothing.
func (NopSink) Log(string, string, string) {}

// LineMasker, when a LogSink implements it too, masks a whole line before
// the line writer cuts it into MaxLineBytes pieces, so a secret value is
// not cut into two unmasked halves. Lines are then held up to
// MaxMaskedLineBytes before they are cut without their newline; a value
// straddling that cut is not masked.
type LineMasker interface {
	MaskLine(line string) string
}

// MaxMaskedLineBytes is how much of a line without a newline is held for a
// LineMasker: more than a secret value's largest base64 form.
const MaxMaskedLineBytes = 64 << 10

// lineWriter is an io.Writer that hands complete lines to a sink. Close
// flushes a final line without a newline. mu guards buf.
type lineWriter struct {
	sink           LogSink
	mask           LineMasker // nil: the sink does not mask
	source, stream string

	mu  sync.Mutex
	buf []byte
}

func newLineWriter(sink LogSink, source, stream string) *lineWriter {
	w := &lineWriter{sink: sink, source: source, stream: stream}
	w.mask, _ = sink.(LineMasker)
	return w
}

// hold is the longest line kept whole before it is cut.
func (w *lineWriter) hold() int {
	if w.mask != nil {
		return MaxMaskedLineBytes
	}
	return MaxLineBytes
}

// Write implements io.Writer; it never fails.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, hold := len(p), w.hold()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= hold {
				w.emit(w.buf[:hold])
				w.buf = append(w.buf[:0], w.buf[hold:]...)
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		p = p[i+1:]
		for len(w.buf) > hold {
			w.emit(w.buf[:hold])
			w.buf = w.buf[hold:]
		}
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
	return n, nil
}

// Close hands a pending partial line to the sink.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
	return nil
}

// emit masks line (when the sink masks) and hands it to the sink in pieces
// of at most MaxLineBytes.
func (w *lineWriter) emit(line []byte) {
	s := string(bytes.TrimSuffix(line, []byte{'\r'}))
	if w.mask != nil {
		s = w.mask.MaskLine(s)
	}
	for len(s) > MaxLineBytes {
		w.sink.Log(w.source, w.stream, s[:MaxLineBytes])
		s = s[MaxLineBytes:]
	}
	w.sink.Log(w.source, w.stream, s)
}
