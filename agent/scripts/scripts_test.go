package scripts

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/spawn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// line is one LogSink call.
type line struct{ source, stream, text string }

// recSink records lines and also delivers them on ch when set.
type recSink struct {
	mu    sync.Mutex
	lines []line
	ch    chan line
}

func (r *recSink) Log(source, stream, text string) {
	r.mu.Lock()
	r.lines = append(r.lines, line{source, stream, text})
	r.mu.Unlock()
	if r.ch != nil {
		r.ch <- line{source, stream, text}
	}
}

func (r *recSink) all() []line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]line(nil), r.lines...)
}

func newSpawner(t *testing.T) *spawn.Spawner {
	t.Helper()
	sp, err := spawn.New(spawn.Config{
		Base:      []string{"PATH=" + os.Getenv("PATH")},
		Shell:     "/bin/sh",
		Home:      t.TempDir(),
		WaitDelay: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	sp.Update(map[string]string{"GREETING": "hello"}, nil)
	return sp
}

func TestRunScriptsOrderAndOutput(t *testing.T) {
	sp := newSpawner(t)
	sink := &recSink{}
	err := RunScripts(context.Background(), sp, []proto.Script{
		{Name: "first", Script: `echo "$GREETING one"`},
		{Name: "second", Script: "echo two; echo oops >&2"},
		{Name: "third", Script: "printf 'no newline'"},
	}, sink)
	if err != nil {
		t.Fatal(err)
	}
	want := []line{
		{"script:first", StreamStdout, "hello one"},
		{"script:second", StreamStdout, "two"},
		{"script:second", StreamStderr, "oops"},
		{"script:third", StreamStdout, "no newline"},
	}
	got := sink.all()
	// stdout and stderr of one script are separate pipes: compare as sets
	// within a script, in order across scripts.
	if len(got) != len(want) {
		t.Fatalf("lines = %v, want %v", got, want)
	}
	order := map[string]int{"script:first": 0, "script:second": 1, "script:third": 2}
	for i := 1; i < len(got); i++ {
		if order[got[i].source] < order[got[i-1].source] {
			t.Fatalf("out of order: %v", got)
		}
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Fatalf("missing %v in %v", w, got)
		}
	}
}

func TestRunScriptsFailures(t *testing.T) {
	cases := []struct {
		name     string
		scripts  []proto.Script
		wantErr  error
		wantName string
		wantMsg  string
	}{
		{
			name: "non-zero exit stops the sequence",
			scripts: []proto.Script{
				{Name: "ok", Script: "true"},
				{Name: "bad", Script: "exit 3"},
				{Name: "never", Script: "echo never"},
			},
			wantErr: ErrScriptFailed, wantName: "bad", wantMsg: `"bad" exited with status 3`,
		},
		{
			name: "timeout kills and stops",
			scripts: []proto.Script{
				{Name: "slow", Script: "echo started; sleep 30; echo finished", TimeoutSeconds: 1},
				{Name: "never", Script: "echo never"},
			},
			wantErr: ErrScriptTimeout, wantName: "slow", wantMsg: `"slow" timed out after 1s`,
		},
		{
			name:    "missing program",
			scripts: []proto.Script{{Name: "nope", Script: "/no/such/program"}, {Name: "never", Script: "echo never"}},
			wantErr: ErrScriptFailed, wantName: "nope", wantMsg: "status 127",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink := &recSink{}
			err := RunScripts(context.Background(), newSpawner(t), c.scripts, sink)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			var se *ScriptError
			if !errors.As(err, &se) || se.Name != c.wantName {
				t.Fatalf("err = %#v, want a ScriptError for %q", err, c.wantName)
			}
			if !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("message %q lacks %q", err, c.wantMsg)
			}
			for _, l := range sink.all() {
				if l.text == "never" || l.text == "finished" {
					t.Fatalf("a script ran past the failure: %v", sink.all())
				}
			}
		})
	}
}

func TestRunScriptsContextCancelled(t *testing.T) {
	sp := newSpawner(t)
	ctx, cancel := context.WithCancel(context.Background())
	sink := &recSink{ch: make(chan line, 1)}
	done := make(chan error, 1)
	go func() {
		done <- RunScripts(ctx, sp, []proto.Script{{Name: "long", Script: "echo up; sleep 30"}}, sink)
	}()
	<-sink.ch
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", MaxLineBytes+10)
	cases := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"one line", []string{"a\n"}, []string{"a"}},
		{"split across writes", []string{"he", "llo\nwor", "ld\n"}, []string{"hello", "world"}},
		{"crlf", []string{"a\r\nb\r\n"}, []string{"a", "b"}},
		{"empty lines kept", []string{"\n\n"}, []string{"", ""}},
		{"partial flushed on close", []string{"tail"}, []string{"tail"}},
		{"long line split", []string{long + "\n"}, []string{long[:MaxLineBytes], long[MaxLineBytes:]}},
		{"long line no newline", []string{long}, []string{long[:MaxLineBytes], long[MaxLineBytes:]}},
		{"nul and escapes pass through", []string{"a\x00b\x1b[31m\n"}, []string{"a\x00b\x1b[31m"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink := &recSink{}
			w := newLineWriter(sink, "src", StreamStdout)
			for _, s := range c.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			_ = w.Close()
			var got []string
			for _, l := range sink.all() {
				got = append(got, l.text)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}
