package startlogs

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/controlplane/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gatedStore counts appends and holds the first until gate is closed.
type gatedStore struct {
	store.Store
	appends atomic.Int32
	gate    chan struct{}
	entered chan struct{}
}

func (g *gatedStore) AppendWorkspaceLogs(ctx context.Context, id string, lines []store.LogLine, lim store.LogLimits) (int64, error) {
	if g.appends.Add(1) == 1 {
		close(g.entered)
		<-g.gate
	}
	return g.Store.AppendWorkspaceLogs(ctx, id, lines, lim)
}

func fixture(t *testing.T) (store.Store, string) {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	u := store.User{ID: "u1", Username: "u", Email: "u@x", CreatedAt: time.Now()}
	ws := store.Workspace{ID: "w1", Name: "dev", OwnerID: u.ID, AgentTokenHash: []byte("h"), CreatedAt: time.Now()}
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateWorkspace(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	return st, ws.ID
}

func line(text string) []store.LogLine {
	return []store.LogLine{{Source: "script:a", Stream: "stdout", At: time.Now(), Text: text}}
}

// TestAppendCoalesces: reports arriving while a write is under way are
// written together in one more transaction, and every request learns the
// outcome of its own batch.
func TestAppendCoalesces(t *testing.T) {
	st, id := fixture(t)
	g := &gatedStore{Store: st, gate: make(chan struct{}), entered: make(chan struct{})}
	l, err := New(Config{Store: g, MinInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	wg.Add(1)
	go func() { defer wg.Done(); errs <- l.Append(ctx, id, line("first")) }()
	<-g.entered
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- l.Append(ctx, id, line("later")) }()
	}
	// Wait until the five lines are pending, then let the first write end.
	for {
		l.mu.Lock()
		n := len(l.pending[id].batch.lines)
		l.mu.Unlock()
		if n == 5 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := g.appends.Load(); n != 2 {
		t.Errorf("%d store writes for 6 reports, want 2", n)
	}
	got, _ := st.WorkspaceLogs(ctx, id, store.LogQuery{})
	if len(got) != 6 || got[0].Text != "first" {
		t.Errorf("stored %d lines", len(got))
	}
}

// TestAppendError: a store failure reaches the request.
func TestAppendError(t *testing.T) {
	st, _ := fixture(t)
	l, _ := New(Config{Store: st, MinInterval: -1})
	if err := l.Append(context.Background(), "missing", line("x")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err %v, want ErrNotFound", err)
	}
}

// TestFollow: a follower gets lines written after it started, in order,
// and returns nil when its context ends.
func TestFollow(t *testing.T) {
	st, id := fixture(t)
	l, _ := New(Config{Store: st, MinInterval: -1, PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	if err := l.Append(ctx, id, line("before")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(ctx, id, store.LogQuery{After: 1}, func(lines []store.LogLine) error {
			for _, ln := range lines {
				got <- ln.Text
			}
			return nil
		})
	}()
	for _, text := range []string{"one", "two"} {
		if err := l.Append(ctx, id, line(text)); err != nil {
			t.Fatal(err)
		}
		if g := <-got; g != text {
			t.Fatalf("followed %q, want %q", g, text)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("no store: %v", err)
	}
	st, _ := fixture(t)
	if _, err := New(Config{Store: st, Limits: store.LogLimits{MaxLines: -1}}); !errors.Is(err, ErrConfig) {
		t.Errorf("negative limit: %v", err)
	}
	l, _ := New(Config{Store: st})
	if l.Limits() != (store.LogLimits{MaxLines: 10000, MaxBytes: 1 << 20}) {
		t.Errorf("default limits %+v", l.Limits())
	}
	c := l.Clean(store.LogLine{Text: string(make([]byte, MaxTextBytes+10)), Stream: "weird"})
	if len(c.Text) != MaxTextBytes || c.Stream != "stdout" || c.At.IsZero() {
		t.Errorf("Clean: %d bytes, stream %q", len(c.Text), c.Stream)
	}
}

// TestSweep: entries of idle workspaces are dropped once pending reaches
// its sweep size; one with lines waiting is kept.
func TestSweep(t *testing.T) {
	st, _ := fixture(t)
	l, _ := New(Config{Store: st, MinInterval: -1})
	l.mu.Lock()
	for i := range minSweep {
		l.pending[string(rune('a'+i%26))+time.Duration(i).String()] = &pending{turn: make(chan struct{}, 1),
			batch: &batch{done: make(chan struct{})}}
	}
	busy := &pending{turn: make(chan struct{}, 1), batch: &batch{done: make(chan struct{}), lines: line("waiting")}}
	l.pending["busy"] = busy
	l.sweepLocked()
	n, kept := len(l.pending), l.pending["busy"] == busy
	l.mu.Unlock()
	if n != 1 || !kept || l.sweepAt != minSweep {
		t.Fatalf("after the sweep: %d entries (busy kept: %v), next sweep at %d", n, kept, l.sweepAt)
	}
}
