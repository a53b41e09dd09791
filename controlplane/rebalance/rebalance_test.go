package rebalance

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPlan(t *testing.T) {
	c := DefaultConfig() // 5% a step, 10% tolerance, 20 agents at least
	for _, tc := range []struct {
		name  string
		self  string
		loads map[string]int
		want  int
	}{
		{"killed replica back: 5% of 15,000", "a", map[string]int{"a": 15000, "b": 15000, "c": 0}, 750},
		{"the one that came back sheds nothing", "c", map[string]int{"a": 15000, "b": 15000, "c": 0}, 0},
		{"near the end: 5% still", "a", map[string]int{"a": 11500, "b": 11500, "c": 7000}, 575},
		{"within tolerance", "a", map[string]int{"a": 10900, "b": 10000, "c": 9100}, 0},
		{"small imbalance of a small fleet", "a", map[string]int{"a": 30, "b": 0}, 0},
		{"small fleet over the minimum", "a", map[string]int{"a": 60, "b": 0}, 3},
		{"many replicas, one holding all", "a", map[string]int{"a": 100, "b": 0, "c": 0, "d": 0, "e": 0, "f": 0, "g": 0, "h": 0, "i": 0, "j": 0, "k": 0, "l": 0, "m": 0, "n": 0, "o": 0, "p": 0, "q": 0, "r": 0, "s": 0, "t": 0, "u": 0, "v": 0, "w": 0, "x": 0, "y": 0, "z": 0}, 5},
		{"alone", "a", map[string]int{"a": 15000}, 0},
		{"not registered (expired)", "a", map[string]int{"b": 15000, "c": 0}, 0},
		{"nothing anywhere", "a", map[string]int{"a": 0, "b": 0}, 0},
		{"nil loads", "a", nil, 0},
		{"hostile: negative counts", "a", map[string]int{"a": 100, "b": -1000}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Plan(c, tc.self, tc.loads); got != tc.want {
				t.Fatalf("Plan(%s, %v) = %d, want %d", tc.self, tc.loads, got, tc.want)
			}
		})
	}
	// Never below the share: with a tolerance under the fraction, the
	// excess bounds the step.
	c.Tolerance = 0.01
	if got := Plan(c, "a", map[string]int{"a": 10300, "b": 10300, "c": 9400}); got != 300 {
		t.Fatalf("excess-bound plan = %d, want 300", got)
	}
}

func TestValidate(t *testing.T) {
	ok := func() Config {
		return Config{Self: "a", Loads: func(context.Context) (map[string]int, error) { return nil, nil }, Shed: func() bool { return true }}
	}
	for name, mod := range map[string]func(*Config){
		"no self":           func(c *Config) { c.Self = "" },
		"no loads":          func(c *Config) { c.Loads = nil },
		"no shed":           func(c *Config) { c.Shed = nil },
		"negative interval": func(c *Config) { c.Interval = -time.Second },
		"fraction above 1":  func(c *Config) { c.Fraction = 1.5 },
		"negative excess":   func(c *Config) { c.MinExcess = -1 },
		"negative settle":   func(c *Config) { c.Settle = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			c := ok()
			mod(&c)
			if _, err := New(c); !errors.Is(err, ErrConfig) {
				t.Fatalf("New = %v, want ErrConfig", err)
			}
		})
	}
	if _, err := New(ok()); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// fakeReplica is a replica's side of a Rebalancer: loads read from a map,
// sheds counted, waits recorded and not slept.
type fakeReplica struct {
	loads   map[string]int
	loadErr error
	held    int
	shed    int
	waits   []time.Duration
	now     time.Time // advanced by every wait
}

func (f *fakeReplica) config() Config {
	return Config{Self: "a", Interval: 10 * time.Second,
		Loads: func(context.Context) (map[string]int, error) { return f.loads, f.loadErr },
		Shed: func() bool {
			if f.held == 0 {
				return false
			}
			f.held--
			f.shed++
			return true
		},
		Settle: 15 * time.Second,
		Now:    func() time.Time { return f.now },
		After: func(d time.Duration) <-chan time.Time {
			f.waits = append(f.waits, d)
			f.now = f.now.Add(d)
			ch := make(chan time.Time, 1)
			ch <- time.Time{}
			return ch
		},
		Rand: func() float64 { return 0.5 },
	}
}

// TestStepWaitsForSettle: an imbalance seen for less than Settle is left
// alone (a killed replica is still registered for a while); seen at every
// look for Settle, the planned number is shed with waits that spread over
// one interval; a balanced look or a failed read starts the count again.
func TestStepWaitsForSettle(t *testing.T) {
	f := &fakeReplica{loads: map[string]int{"a": 15000, "b": 15000, "c": 0}, held: 15000, now: time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC)}
	r, err := New(f.config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	step := func(after time.Duration) (int, error) {
		f.now = f.now.Add(after)
		return r.Step(ctx)
	}
	for _, at := range []time.Duration{0, 10 * time.Second} {
		if n, err := step(at); n != 0 || err != nil {
			t.Fatalf("look after %s: shed %d, %v; want 0", at, n, err)
		}
	}
	if n, err := step(5 * time.Second); n != 750 || err != nil || f.shed != 750 {
		t.Fatalf("look 15s into the imbalance: shed %d (%d), %v; want 750", n, f.shed, err)
	}
	var total time.Duration
	for _, w := range f.waits {
		total += w
	}
	if len(f.waits) != 750 || total < 10*time.Second-time.Millisecond || total > 10*time.Second {
		t.Fatalf("%d waits over %s; want 750 over one interval (10s)", len(f.waits), total)
	}
	// Balanced now: nothing; a blip of imbalance seen once: nothing.
	f.loads = map[string]int{"a": 10000, "b": 10000, "c": 10000}
	if n, _ := step(time.Second); n != 0 {
		t.Fatalf("balanced: shed %d", n)
	}
	f.loads = map[string]int{"a": 15000, "b": 15000, "c": 0}
	if n, _ := step(20 * time.Second); n != 0 {
		t.Fatalf("imbalance seen once after a balanced look: shed %d", n)
	}
	f.loadErr = errors.New("database unavailable")
	if _, err := step(20 * time.Second); err == nil {
		t.Fatal("a failed read was not reported")
	}
	f.loadErr = nil
	if n, _ := step(20 * time.Second); n != 0 {
		t.Fatalf("imbalance seen once after a failed read: shed %d", n)
	}
	// Fewer sessions than planned: stops at the last.
	f.held = 10
	if n, _ := step(15 * time.Second); n != 10 {
		t.Fatalf("with 10 sessions left: shed %d, want 10", n)
	}
}

// TestRunStopsWithContext: Run returns nil when ctx ends.
func TestRunStopsWithContext(t *testing.T) {
	f := &fakeReplica{loads: map[string]int{"a": 1}}
	cfg := f.config()
	ctx, cancel := context.WithCancel(t.Context())
	steps := 0
	cfg.Loads = func(context.Context) (map[string]int, error) {
		if steps++; steps == 3 {
			cancel()
		}
		return f.loads, nil
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if steps < 3 {
		t.Fatalf("%d steps before the end, want 3", steps)
	}
	// The waits between steps are jittered around the interval.
	for _, w := range f.waits {
		if w < 7500*time.Millisecond || w > 12500*time.Millisecond {
			t.Fatalf("wait %s outside 10s ± 25%%", w)
		}
	}
}
