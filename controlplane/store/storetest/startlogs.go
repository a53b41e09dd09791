package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

// startLogsTests are the conformance tests of startup logs (issue 21):
// cursors, filters, the per-workspace bounds and script runs.
var startLogsTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"StartLogsAppendRead", testStartLogsAppendRead},
	{"StartLogsBounds", testStartLogsBounds},
	{"StartLogsHostile", testStartLogsHostile},
	{"StartLogsConcurrent", testStartLogsConcurrent},
	{"ScriptRuns", testScriptRuns},
}

func logLines(source string, texts ...string) []store.LogLine {
	out := make([]store.LogLine, len(texts))
	for i, t := range texts {
		out[i] = store.LogLine{Source: source, Stream: "stdout", At: T0.Add(time.Duration(i) * time.Second), Text: t}
	}
	return out
}

func texts(lines []store.LogLine) string {
	var b []string
	for _, l := range lines {
		b = append(b, l.Text)
	}
	return strings.Join(b, ",")
}

func testStartLogsAppendRead(t *testing.T, s store.Store) {
	u := mkUser(t, s, "logan")
	w := mkWorkspace(t, s, u, "dev")
	other := mkWorkspace(t, s, u, "other")
	if got, err := s.WorkspaceLogs(ctx, w.ID, store.LogQuery{}); err != nil || len(got) != 0 {
		t.Fatalf("empty workspace: %v, %v", got, err)
	}
	last, err := s.AppendWorkspaceLogs(ctx, w.ID, logLines("script:a", "a1", "a2"), store.LogLimits{})
	if err != nil || last != 2 {
		t.Fatalf("first append: last %d, %v; want 2", last, err)
	}
	in := logLines("app:web", "w1")
	in[0].Stream = "stderr"
	if last, err = s.AppendWorkspaceLogs(ctx, w.ID, in, store.LogLimits{}); err != nil || last != 3 {
		t.Fatalf("second append: last %d, %v; want 3", last, err)
	}
	if _, err := s.AppendWorkspaceLogs(ctx, other.ID, logLines("script:a", "x"), store.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	all, err := s.WorkspaceLogs(ctx, w.ID, store.LogQuery{})
	if err != nil || texts(all) != "a1,a2,w1" {
		t.Fatalf("all lines: %q, %v", texts(all), err)
	}
	if all[0].Seq != 1 || all[2].Seq != 3 || all[2].Stream != "stderr" || all[2].Source != "app:web" || !all[1].At.Equal(T0.Add(time.Second)) {
		t.Errorf("fields not kept: %+v", all)
	}
	cases := []struct {
		name string
		q    store.LogQuery
		want string
	}{
		{"after cursor", store.LogQuery{After: 1}, "a2,w1"},
		{"after the last", store.LogQuery{After: 3}, ""},
		{"source", store.LogQuery{Source: "script:a"}, "a1,a2"},
		{"source and cursor", store.LogQuery{Source: "script:a", After: 1}, "a2"},
		{"unknown source", store.LogQuery{Source: "script:nope"}, ""},
		{"limit", store.LogQuery{Limit: 2}, "a1,a2"},
		{"negative cursor", store.LogQuery{After: -5}, "a1,a2,w1"},
	}
	for _, tc := range cases {
		got, err := s.WorkspaceLogs(ctx, w.ID, tc.q)
		if err != nil || texts(got) != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, texts(got), err, tc.want)
		}
	}
	if _, err := s.AppendWorkspaceLogs(ctx, "no-such-workspace", logLines("script:a", "x"), store.LogLimits{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("append to a missing workspace: %v, want ErrNotFound", err)
	}
	// Deleting the workspace deletes its output.
	if err := s.DeleteWorkspace(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.WorkspaceLogs(ctx, w.ID, store.LogQuery{}); len(got) != 0 {
		t.Errorf("output outlived its workspace: %q", texts(got))
	}
}

// testStartLogsBounds: the oldest lines go past either bound, in the store,
// and cursors keep growing across trims.
func testStartLogsBounds(t *testing.T, s store.Store) {
	u := mkUser(t, s, "bound")
	w := mkWorkspace(t, s, u, "dev")
	lim := store.LogLimits{MaxLines: 3, MaxBytes: 10}
	for i := range 5 {
		if _, err := s.AppendWorkspaceLogs(ctx, w.ID, logLines("script:a", fmt.Sprint(i)), lim); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.WorkspaceLogs(ctx, w.ID, store.LogQuery{})
	if texts(got) != "2,3,4" || got[0].Seq != 3 {
		t.Fatalf("line bound: %q (first seq %v), want 2,3,4 from seq 3", texts(got), got)
	}
	// Bytes: 4+4 fits 10, a third 4-byte line does not.
	if _, err := s.AppendWorkspaceLogs(ctx, w.ID, logLines("script:a", "aaaa", "bbbb"), lim); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.WorkspaceLogs(ctx, w.ID, store.LogQuery{}); texts(got) != "4,aaaa,bbbb" {
		t.Fatalf("byte bound: %q, want 4,aaaa,bbbb", texts(got))
	}
	// A batch larger than the bounds keeps its newest lines; only stored
	// lines get a seq.
	last, err := s.AppendWorkspaceLogs(ctx, w.ID, logLines("script:a", "1", "2", "3", "4", "5", "6"), lim)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = s.WorkspaceLogs(ctx, w.ID, store.LogQuery{})
	if texts(got) != "4,5,6" || got[2].Seq != last || last != 10 {
		t.Fatalf("big batch: %q last %d, want 4,5,6 ending at seq 10", texts(got), last)
	}
	// A reader at a cursor before the trim gets what is left, in order.
	if got, _ = s.WorkspaceLogs(ctx, w.ID, store.LogQuery{After: 2}); texts(got) != "4,5,6" {
		t.Errorf("stale cursor: %q", texts(got))
	}
}

// testStartLogsHostile: text an agent may send (NUL, invalid UTF-8, a long
// line) is stored and read back without an error.
func testStartLogsHostile(t *testing.T, s store.Store) {
	u := mkUser(t, s, "hostile")
	w := mkWorkspace(t, s, u, "dev")
	in := logLines("script:a", "nul\x00byte", "bad\xffutf8", strings.Repeat("x", 16<<10), "", "'; DROP TABLE workspace_logs; --")
	if _, err := s.AppendWorkspaceLogs(ctx, w.ID, in, store.LogLimits{}); err != nil {
		t.Fatalf("hostile lines: %v", err)
	}
	got, err := s.WorkspaceLogs(ctx, w.ID, store.LogQuery{})
	if err != nil || len(got) != len(in) {
		t.Fatalf("read back %d lines, %v; want %d", len(got), err, len(in))
	}
	if len(got[2].Text) != 16<<10 || got[4].Text != in[4].Text || !strings.HasPrefix(got[0].Text, "nul") {
		t.Errorf("text not kept: %q", []string{got[0].Text, got[4].Text})
	}
	if got, err := s.WorkspaceLogs(ctx, "bad\x00id", store.LogQuery{Source: "x\xff"}); err != nil || len(got) != 0 {
		t.Errorf("hostile lookup: %v, %v", got, err)
	}
}

// testStartLogsConcurrent: appends racing on one workspace (two replicas)
// get distinct, gapless cursors.
func testStartLogsConcurrent(t *testing.T, s store.Store) {
	u := mkUser(t, s, "racer")
	w := mkWorkspace(t, s, u, "dev")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AppendWorkspaceLogs(ctx, w.ID, logLines("script:a", fmt.Sprint(i), fmt.Sprint(i)), store.LogLimits{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.WorkspaceLogs(ctx, w.ID, store.LogQuery{})
	if len(got) != 16 {
		t.Fatalf("%d lines, want 16", len(got))
	}
	for i, l := range got {
		if l.Seq != int64(i+1) {
			t.Fatalf("line %d has seq %d", i, l.Seq)
		}
	}
}

func testScriptRuns(t *testing.T, s store.Store) {
	u := mkUser(t, s, "runner")
	w := mkWorkspace(t, s, u, "dev")
	if got, err := s.ScriptRuns(ctx, w.ID); err != nil || len(got) != 0 {
		t.Fatalf("no runs yet: %v, %v", got, err)
	}
	runs := []store.ScriptRun{
		{Source: "script:b", State: "running", StartedAt: T0.Add(time.Second), UpdatedAt: T0.Add(time.Second)},
		{Source: "script:a", State: "failed", ExitCode: 3, StartedAt: T0, Duration: 1500 * time.Millisecond, UpdatedAt: T0},
	}
	for _, r := range runs {
		if err := s.SetScriptRun(ctx, w.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	// The later report of script:b replaces the first.
	done := store.ScriptRun{Source: "script:b", State: "succeeded", StartedAt: T0.Add(time.Second), Duration: 2 * time.Second,
		UpdatedAt: T0.Add(3 * time.Second)}
	if err := s.SetScriptRun(ctx, w.ID, done); err != nil {
		t.Fatal(err)
	}
	got, err := s.ScriptRuns(ctx, w.ID)
	if err != nil || len(got) != 2 {
		t.Fatalf("runs: %+v, %v", got, err)
	}
	if got[0] != runs[1] && !(got[0].Source == "script:a" && got[0].ExitCode == 3 && got[0].Duration == 1500*time.Millisecond &&
		got[0].StartedAt.Equal(T0) && got[0].State == "failed") {
		t.Errorf("first run: %+v, want %+v", got[0], runs[1])
	}
	if got[1].Source != "script:b" || got[1].State != "succeeded" || got[1].Duration != 2*time.Second || !got[1].UpdatedAt.Equal(done.UpdatedAt) {
		t.Errorf("second run: %+v, want %+v", got[1], done)
	}
	if err := s.SetScriptRun(ctx, "no-such-workspace", done); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("run of a missing workspace: %v, want ErrNotFound", err)
	}
}
