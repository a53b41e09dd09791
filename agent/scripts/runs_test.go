package scripts

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/courierhq/courier/agent/proto"
)

// runSink records lines and runs.
type runSink struct {
	recSink
	mu   sync.Mutex
	runs []proto.Run
}

func (r *runSink) Run(run proto.Run) {
	r.mu.Lock()
	r.runs = append(r.runs, run)
	r.mu.Unlock()
}

// TestRunsReported: each script that runs is reported running, then how
// it ended with its exit code; a script after a failure is not reported.
func TestRunsReported(t *testing.T) {
	sink := &runSink{}
	err := RunScripts(context.Background(), newSpawner(t), []proto.Script{
		{Name: "ok", Script: "echo fine"},
		{Name: "bad", Script: "exit 7"},
		{Name: "never", Script: "echo never"},
	}, sink)
	if !errors.Is(err, ErrScriptFailed) {
		t.Fatalf("err %v, want ErrScriptFailed", err)
	}
	want := []struct {
		source, state string
		code          int
	}{
		{"script:ok", proto.RunRunning, 0}, {"script:ok", proto.RunSucceeded, 0},
		{"script:bad", proto.RunRunning, 0}, {"script:bad", proto.RunFailed, 7},
	}
	if len(sink.runs) != len(want) {
		t.Fatalf("runs %+v, want %d", sink.runs, len(want))
	}
	for i, w := range want {
		r := sink.runs[i]
		if r.Source != w.source || r.State != w.state || r.ExitCode != w.code || r.StartedAt.IsZero() || r.DurationMS < 0 {
			t.Errorf("run %d: %+v, want %+v", i, r, w)
		}
	}
}

func TestRunTimedOut(t *testing.T) {
	sink := &runSink{}
	err := RunScripts(context.Background(), newSpawner(t), []proto.Script{
		{Name: "slow", Script: "sleep 30", TimeoutSeconds: 1},
	}, sink)
	if !errors.Is(err, ErrScriptTimeout) {
		t.Fatalf("err %v, want ErrScriptTimeout", err)
	}
	if n := len(sink.runs); n != 2 || sink.runs[1].State != proto.RunTimedOut || sink.runs[1].ExitCode != -1 {
		t.Errorf("runs %+v, want running then timed_out with -1", sink.runs)
	}
}

// maskSink masks one value, like the agent's forwarder.
type maskSink struct{ recSink }

func (m *maskSink) MaskLine(s string) string { return strings.ReplaceAll(s, "SECRET-VALUE-42", "***") }

// TestLineWriterMasksBeforeCutting: a value that straddles the 16 KiB cut
// of a long line is masked whole, with and without a newline.
func TestLineWriterMasksBeforeCutting(t *testing.T) {
	line := strings.Repeat("a", MaxLineBytes-5) + "SECRET-VALUE-42" + strings.Repeat("b", 100)
	for _, tail := range []string{"\n", ""} {
		sink := &maskSink{}
		w := newLineWriter(sink, "src", StreamStdout)
		_, _ = w.Write([]byte(line[:100]))
		_, _ = w.Write([]byte(line[100:] + tail))
		_ = w.Close()
		var got []string
		for _, l := range sink.all() {
			if len(l.text) > MaxLineBytes {
				t.Fatalf("a piece of %d bytes", len(l.text))
			}
			got = append(got, l.text)
		}
		joined := strings.Join(got, "")
		if len(got) != 2 || strings.Contains(joined, "SECRET") || strings.Contains(joined, "VALUE-42") || !strings.Contains(joined, "***") {
			t.Errorf("tail %q: %d pieces, masked %v", tail, len(got), strings.Contains(joined, "***"))
		}
	}
}
