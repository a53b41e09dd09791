package identity

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// fakeClock hands Run a channel the test ticks; asked receives every
// interval Run waits for, so the test knows when Run is waiting.
type fakeClock struct {
	tick  chan time.Time
	asked chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{tick: make(chan time.Time), asked: make(chan time.Duration, 100)}
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time { c.asked <- d; return c.tick }

// countingStore records every TouchAPITokens call; fail makes the next
// calls fail.
type countingStore struct {
	mu    sync.Mutex
	calls [][]store.APITokenUse
	fail  bool
}

func (s *countingStore) TouchAPITokens(_ context.Context, uses []store.APITokenUse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("database is down")
	}
	cp := append([]store.APITokenUse(nil), uses...)
	sort.Slice(cp, func(i, j int) bool { return cp[i].ID < cp[j].ID })
	s.calls = append(s.calls, cp)
	return nil
}

func (s *countingStore) snapshot() [][]store.APITokenUse {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]store.APITokenUse(nil), s.calls...)
}

func (s *countingStore) setFail(f bool) { s.mu.Lock(); s.fail = f; s.mu.Unlock() }

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// A burst of uses costs no write until the interval ends, then exactly
// one write with the latest use of each token.
func TestUseRecorderCoalesces(t *testing.T) {
	st, clk := &countingStore{}, newFakeClock()
	u := NewUseRecorder(UseRecorderConfig{Store: st, Clock: clk, Interval: 10 * time.Second})
	done := make(chan error, 1)
	go func() { done <- u.Run(context.Background()) }()
	if d := <-clk.asked; d != 10*time.Second {
		t.Fatalf("waits %v, want the interval", d)
	}
	for i := range 1000 {
		u.Record("a", t0.Add(time.Duration(i)*time.Millisecond), "10.0.0.1")
	}
	u.Record("b", t0, "10.0.0.2")
	u.Record("a", t0.Add(-time.Hour), "10.0.0.9") // older: ignored
	if n := len(st.snapshot()); n != 0 {
		t.Fatalf("%d writes before the interval ended", n)
	}
	if u.Pending() != 2 {
		t.Fatalf("pending %d, want 2", u.Pending())
	}
	clk.tick <- t0
	<-clk.asked // the write is done and Run waits again
	calls := st.snapshot()
	want := []store.APITokenUse{{ID: "a", At: t0.Add(999 * time.Millisecond), Addr: "10.0.0.1"}, {ID: "b", At: t0, Addr: "10.0.0.2"}}
	if len(calls) != 1 || len(calls[0]) != 2 || calls[0][0] != want[0] || calls[0][1] != want[1] {
		t.Fatalf("writes %+v, want one of %+v", calls, want)
	}
	// A quiet interval writes nothing.
	clk.tick <- t0
	<-clk.asked
	if n := len(st.snapshot()); n != 1 {
		t.Fatalf("%d writes after a quiet interval, want 1", n)
	}
	// A use then Close: written once more at Close.
	u.Record("c", t0, "10.0.0.3")
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	calls = st.snapshot()
	if len(calls) != 2 || len(calls[1]) != 1 || calls[1][0].ID != "c" {
		t.Fatalf("after Close: %+v", calls)
	}
	// After Close: dropped, and Run refuses to start.
	u.Record("d", t0, "x")
	if u.Pending() != 0 {
		t.Fatal("a use after Close was kept")
	}
	if err := u.Run(context.Background()); !errors.Is(err, ErrRecorderClosed) {
		t.Fatalf("Run after Close = %v", err)
	}
	if err := u.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A failed write keeps its uses for the next, where a newer use of the
// same token wins; the context ending writes what is left.
func TestUseRecorderRetriesAndFlushesAtCancel(t *testing.T) {
	st, clk := &countingStore{}, newFakeClock()
	u := NewUseRecorder(UseRecorderConfig{Store: st, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	<-clk.asked
	if err := u.Run(ctx); !errors.Is(err, ErrRecorderClosed) {
		t.Fatalf("a second Run = %v", err)
	}
	st.setFail(true)
	u.Record("a", t0, "old")
	u.Record("b", t0, "b")
	clk.tick <- t0
	<-clk.asked
	if u.Pending() != 2 {
		t.Fatalf("pending %d after a failed write, want 2", u.Pending())
	}
	u.Record("a", t0.Add(time.Second), "new")
	st.setFail(false)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	calls := st.snapshot()
	if len(calls) != 1 || len(calls[0]) != 2 || calls[0][0].Addr != "new" || calls[0][1].ID != "b" {
		t.Fatalf("writes %+v", calls)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if len(st.snapshot()) != 1 {
		t.Fatal("Close wrote again with nothing pending")
	}
}

// Without Run, Close writes everything recorded.
func TestUseRecorderCloseWithoutRun(t *testing.T) {
	st := &countingStore{}
	u := NewUseRecorder(UseRecorderConfig{Store: st})
	u.Record("a", t0, "x")
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if calls := st.snapshot(); len(calls) != 1 || calls[0][0].ID != "a" {
		t.Fatalf("writes %+v", calls)
	}
	st2 := &countingStore{fail: true}
	u2 := NewUseRecorder(UseRecorderConfig{Store: st2})
	u2.Record("a", t0, "x")
	if err := u2.Close(); err == nil {
		t.Fatal("a failed last write was not reported")
	}
}

// Record from many goroutines while Run writes: no race, nothing lost.
func TestUseRecorderConcurrent(t *testing.T) {
	st, clk := &countingStore{}, newFakeClock()
	u := NewUseRecorder(UseRecorderConfig{Store: st, Clock: clk})
	done := make(chan error, 1)
	go func() { done <- u.Run(context.Background()) }()
	<-clk.asked
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				u.Record(string(rune('a'+g)), t0.Add(time.Duration(i)), "addr")
			}
		})
	}
	clk.tick <- t0
	<-clk.asked
	wg.Wait()
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
	last := map[string]time.Time{}
	for _, c := range st.snapshot() {
		for _, use := range c {
			if use.At.After(last[use.ID]) {
				last[use.ID] = use.At
			}
		}
	}
	if len(last) != 8 {
		t.Fatalf("tokens written: %d, want 8", len(last))
	}
	for id, at := range last {
		if !at.Equal(t0.Add(199)) {
			t.Errorf("token %s last written at %v, want its last use", id, at)
		}
	}
}

// A store that stays down is warned about once, not at every interval,
// and its recovery is said once.
func TestUseRecorderWarnsOncePerOutage(t *testing.T) {
	st, clk := &countingStore{fail: true}, newFakeClock()
	core, logs := observer.New(zap.DebugLevel)
	u := NewUseRecorder(UseRecorderConfig{Store: st, Clock: clk, Log: zap.New(core)})
	done := make(chan error, 1)
	go func() { done <- u.Run(context.Background()) }()
	<-clk.asked
	for range 5 {
		u.Record("a", t0, "x")
		clk.tick <- t0
		<-clk.asked
	}
	st.setFail(false)
	clk.tick <- t0
	<-clk.asked
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
	if n := logs.FilterLevelExact(zap.WarnLevel).Len(); n != 1 {
		t.Errorf("%d warnings for one outage, want 1", n)
	}
	if n := logs.FilterMessage("recording the last use of API tokens again").Len(); n != 1 {
		t.Errorf("recovery logged %d times, want 1", n)
	}
	if calls := st.snapshot(); len(calls) != 1 || calls[0][0].ID != "a" {
		t.Fatalf("after recovery: %+v", calls)
	}
}

// Of the first-use drafts gathered between two writes the earliest is
// written, beside the latest use; a failed write keeps it for the next.
func TestUseRecorderKeepsEarliestFirstUse(t *testing.T) {
	st := &countingStore{}
	u := NewUseRecorder(UseRecorderConfig{Store: st})
	draft := func(reqID string, at time.Time) audit.Record {
		return audit.Record{Time: at, Action: "token.first_use", RequestID: reqID}
	}
	u.RecordFirst("a", t0.Add(2*time.Second), "10.0.0.2", draft("second", t0.Add(2*time.Second)))
	u.RecordFirst("a", t0.Add(time.Second), "10.0.0.1", draft("first", t0.Add(time.Second)))
	u.Record("a", t0.Add(3*time.Second), "10.0.0.3")
	st.setFail(true)
	if err := u.Flush(context.Background()); err == nil {
		t.Fatal("a failing store's write succeeded")
	}
	u.RecordFirst("a", t0.Add(4*time.Second), "10.0.0.4", draft("fourth", t0.Add(4*time.Second)))
	st.setFail(false)
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls := st.snapshot()
	if len(calls) != 1 || len(calls[0]) != 1 {
		t.Fatalf("writes %+v, want one use", calls)
	}
	got := calls[0][0]
	if !got.At.Equal(t0.Add(4*time.Second)) || got.Addr != "10.0.0.4" || got.FirstUse == nil || got.FirstUse.RequestID != "first" {
		t.Fatalf("written %+v (first use %+v), want the latest use and the earliest draft", got, got.FirstUse)
	}
}
