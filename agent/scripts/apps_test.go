package scripts

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
)

// fakeClock hands every timer to the test, which fires it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers chan fakeTimer
}

type fakeTimer struct {
	d time.Duration
	c chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), timers: make(chan fakeTimer, 16)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c := make(chan time.Time, 1)
	f.timers <- fakeTimer{d: d, c: c}
	return c, func() bool { return true }
}

// fire advances the clock by the timer's duration and fires it.
func (f *fakeClock) fire(t fakeTimer) {
	f.mu.Lock()
	f.now = f.now.Add(t.d)
	now := f.now
	f.mu.Unlock()
	t.c <- now
}

func runSupervisor(t *testing.T, cfg SupervisorConfig) (cancel func() error) {
	t.Helper()
	s, err := NewSupervisor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() error {
		stop()
		return <-done
	}
}

func TestSupervisorRestartsWithCappedBackoff(t *testing.T) {
	clock := newFakeClock()
	sink := &recSink{ch: make(chan line, 16)}
	stop := runSupervisor(t, SupervisorConfig{
		Spawner:         newSpawner(t),
		Apps:            []proto.App{{Slug: "web", Command: "echo started; exit 3"}},
		Sink:            sink,
		Clock:           clock,
		InitialInterval: time.Second,
		MaxInterval:     4 * time.Second,
		StableAfter:     time.Hour,
	})
	var delays []time.Duration
	for run := 0; run < 6; run++ {
		if l := <-sink.ch; l != (line{"app:web", StreamStdout, "started"}) {
			t.Fatalf("run %d: line %v", run, l)
		}
		tm := <-clock.timers
		delays = append(delays, tm.d)
		clock.fire(tm)
	}
	<-sink.ch // the seventh start
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if delays[0] < 500*time.Millisecond || delays[0] > 1500*time.Millisecond {
		t.Fatalf("first delay %v not around InitialInterval", delays[0])
	}
	for i, d := range delays {
		if d > 4*time.Second {
			t.Fatalf("delay %d = %v is over the cap", i, d)
		}
	}
	if delays[5] < 2*time.Second {
		t.Fatalf("delays %v did not grow", delays)
	}
}

func TestSupervisorStopsRunningApps(t *testing.T) {
	sink := &recSink{ch: make(chan line, 16)}
	stop := runSupervisor(t, SupervisorConfig{
		Spawner: newSpawner(t),
		Apps: []proto.App{
			{Slug: "a", Command: "echo up; exec sleep 1000"},
			{Slug: "b", Command: "trap 'exit 0' TERM; echo up; while :; do sleep 0.05; done"},
		},
		Sink:  sink,
		Clock: newFakeClock(),
	})
	<-sink.ch
	<-sink.ch
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	// goleak in TestMain proves every goroutine ended.
}

func TestSupervisorStopsDuringBackoff(t *testing.T) {
	clock := newFakeClock()
	stop := runSupervisor(t, SupervisorConfig{
		Spawner: newSpawner(t),
		Apps:    []proto.App{{Slug: "crash", Command: "exit 1"}},
		Clock:   clock,
	})
	<-clock.timers // waiting to restart
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestSupervisorConfigValidate(t *testing.T) {
	sp := newSpawner(t)
	cases := []struct {
		name string
		cfg  SupervisorConfig
	}{
		{"no spawner", SupervisorConfig{}},
		{"empty command", SupervisorConfig{Spawner: sp, Apps: []proto.App{{Slug: "x"}}}},
		{"duplicate slug", SupervisorConfig{Spawner: sp, Apps: []proto.App{{Slug: "x", Command: "a"}, {Slug: "x", Command: "b"}}}},
		{"max below initial", SupervisorConfig{Spawner: sp, InitialInterval: time.Minute, MaxInterval: time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewSupervisor(c.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := NewSupervisor(SupervisorConfig{Spawner: sp}); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
}
