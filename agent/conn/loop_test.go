package conn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock fires every After at once and records the requested waits; its
// Now advances by each wait and by what a test adds.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}
func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (c *fakeClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// runLoop runs a Loop whose dial fails with errs[i] on attempt i and
// cancels after the last.
func runLoop(t *testing.T, cfg LoopConfig, attempts int, dialErr func(i int) error) (*fakeClock, *observer.ObservedLogs) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(0, 0)}
	core, logs := observer.New(zap.DebugLevel)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	i := 0
	cfg.Clock, cfg.Logger = clock, zap.New(core)
	cfg.Dial = func(context.Context) (*Session, error) {
		i++
		if i > attempts {
			cancel()
			return nil, ctx.Err()
		}
		return nil, dialErr(i)
	}
	if cfg.Serve == nil {
		cfg.Serve = func(context.Context, *Session) error { return nil }
	}
	l, err := NewLoop(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Run(ctx); err != nil {
		t.Fatalf("Run returned %v; cancellation is a clean exit", err)
	}
	return clock, logs
}

func TestBackoffGrowsJitteredAndCapped(t *testing.T) {
	cfg := LoopConfig{InitialInterval: 100 * time.Millisecond, MaxInterval: 2 * time.Second, FastWindow: -1}
	clock, logs := runLoop(t, cfg, 30, func(int) error { return errors.New("connection refused") })
	waits := clock.recorded()
	if len(waits) != 30 {
		t.Fatalf("%d waits, want 30", len(waits))
	}
	distinct := map[time.Duration]bool{}
	for i, w := range waits {
		if w <= 0 || w > cfg.MaxInterval {
			t.Fatalf("wait %d = %v, outside (0, %v]", i, w, cfg.MaxInterval)
		}
		distinct[w] = true
	}
	if waits[0] > 150*time.Millisecond || waits[0] < 50*time.Millisecond {
		t.Errorf("first wait %v, want 100ms ± 50%%", waits[0])
	}
	if waits[len(waits)-1] < cfg.MaxInterval/2 {
		t.Errorf("wait never grew: last %v", waits[len(waits)-1])
	}
	if len(distinct) < 10 {
		t.Errorf("waits are not jittered: %v", waits)
	}
	if logs.FilterMessageSnippet("cannot reach").Len() != 30 {
		t.Errorf("want one warning per failed attempt")
	}
}

func TestTokenRejectedWaitsTheCap(t *testing.T) {
	cfg := LoopConfig{InitialInterval: 100 * time.Millisecond, MaxInterval: 7 * time.Second}
	clock, logs := runLoop(t, cfg, 5, func(int) error { return fmt.Errorf("%w: bad", ErrTokenRejected) })
	for _, w := range clock.recorded() {
		if w != cfg.MaxInterval {
			t.Fatalf("token rejected: waited %v, want exactly the cap %v (no tight loop)", w, cfg.MaxInterval)
		}
	}
	// One error line says what to do; the repeats are debug lines.
	if n := logs.FilterMessageSnippet("refused the agent token").FilterField(zap.Duration("retry_in", 7*time.Second)).Len(); n != 1 {
		t.Errorf("%d clear token errors, want 1", n)
	}
	if n := logs.FilterMessageSnippet("still refused").FilterLevelExact(zap.DebugLevel).Len(); n != 4 {
		t.Errorf("%d repeated refusals at debug level, want 4", n)
	}
}

// TestRefusalLoggedAgainWhenTheCredentialChanges: a new token read from
// the token file that is refused too is a new situation, logged again; the
// same one is not.
func TestRefusalLoggedAgainWhenTheCredentialChanges(t *testing.T) {
	var gen atomic.Uint64
	cfg := LoopConfig{MaxInterval: time.Second, CredentialGeneration: gen.Load}
	_, logs := runLoop(t, cfg, 6, func(i int) error {
		if i == 3 {
			gen.Add(1)
		}
		return fmt.Errorf("%w: bad", ErrTokenRejected)
	})
	if n := logs.FilterMessageSnippet("refused the agent token").FilterLevelExact(zap.ErrorLevel).Len(); n != 2 {
		t.Errorf("%d refusal errors over two credentials, want 2", n)
	}
}

func TestVersionMismatchIsOneClearError(t *testing.T) {
	cfg := LoopConfig{MaxInterval: 3 * time.Second}
	clock, logs := runLoop(t, cfg, 2, func(int) error { return fmt.Errorf("%w: agent speaks 2, server 1", ErrVersionMismatch) })
	if w := clock.recorded(); w[0] != 3*time.Second {
		t.Errorf("waits %v", w)
	}
	e := logs.FilterMessageSnippet("protocol version").All()
	if len(e) != 2 || e[0].Level != zap.ErrorLevel {
		t.Errorf("version mismatch logs: %v", e)
	}
}

func TestBackoffResetsAfterStableConnection(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	attempt := 0
	l, err := NewLoop(LoopConfig{
		InitialInterval: 100 * time.Millisecond, MaxInterval: 10 * time.Second, StableAfter: time.Minute, Clock: clock,
		FastWindow: -1,
		Dial: func(context.Context) (*Session, error) {
			attempt++
			switch {
			case attempt <= 8:
				return nil, errors.New("down")
			case attempt == 9:
				return &Session{}, nil // served below for "2 minutes"
			case attempt == 10:
				return nil, errors.New("down again")
			}
			cancel()
			return nil, ctx.Err()
		},
		Serve: func(context.Context, *Session) error { clock.advance(2 * time.Minute); return errors.New("lost") },
	})
	if err != nil {
		t.Fatal(err)
	}
	l.closeSession = func(*Session) {}
	_ = l.Run(ctx)
	w := clock.recorded()
	// w[7] followed 8 failures: grown. w[8] follows a stable session: reset.
	if w[7] < time.Second || w[8] > 150*time.Millisecond {
		t.Fatalf("backoff not reset after a stable connection: %v", w)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []LoopConfig{
		{},
		{Dial: func(context.Context) (*Session, error) { return nil, nil }},
		{Dial: func(context.Context) (*Session, error) { return nil, nil }, Serve: func(context.Context, *Session) error { return nil }, InitialInterval: time.Hour, MaxInterval: time.Second},
	}
	for i, c := range bad {
		if _, err := NewLoop(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%d: err = %v", i, err)
		}
	}
	for _, c := range []Config{{}, {URL: "ftp://x", Token: "t"}, {URL: "http://x"}, {URL: "http://", Token: "t"}} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v", c, err)
		}
	}
}

// TestReplacedWaitsTheCapAndLogsOnce: a session the control plane closed
// because another agent replaced it is followed by the longest wait, not a
// quick reconnect; the first replacement of a streak is one error line,
// the next ones warnings; an ordinary loss afterwards backs off as usual.
func TestReplacedWaitsTheCapAndLogsOnce(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	core, logs := observer.New(zap.DebugLevel)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	attempt := 0
	replaced := fmt.Errorf("session ended: %w", ErrReplaced)
	l, err := NewLoop(LoopConfig{
		InitialInterval: 100 * time.Millisecond, MaxInterval: 30 * time.Second, StableAfter: time.Minute,
		Clock: clock, Logger: zap.New(core),
		Dial: func(context.Context) (*Session, error) {
			attempt++
			if attempt > 4 {
				cancel()
				return nil, ctx.Err()
			}
			return &Session{}, nil
		},
		Serve: func(context.Context, *Session) error {
			clock.advance(time.Second)
			if attempt <= 3 {
				return replaced
			}
			return errors.New("connection reset")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	l.closeSession = func(*Session) {}
	_ = l.Run(ctx)
	w := clock.recorded()
	if len(w) != 4 || w[0] != 30*time.Second || w[1] != 30*time.Second || w[2] != 30*time.Second || w[3] > 150*time.Millisecond {
		t.Fatalf("waits = %v; want the cap after each replacement, then the initial backoff", w)
	}
	errs := logs.FilterLevelExact(zap.ErrorLevel).All()
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "replaced this one") {
		t.Fatalf("error lines = %v; want exactly one about the replacement", errs)
	}
	if n := logs.FilterMessageSnippet("replaced again").Len(); n != 2 {
		t.Errorf("%d follow-up warnings, want 2", n)
	}
	if n := logs.FilterMessageSnippet("connection to the control plane lost").Len(); n != 1 {
		t.Errorf("%d ordinary loss lines, want 1 (the replacements are not ordinary losses)", n)
	}
}

// TestOutageTenSecondsBackWithinAFastInterval: a session that worked for
// two minutes is lost, the control plane stays down 10 s: every wait while
// the outage is young is in [FastInterval/2, FastInterval], so the agent
// reconnects at most FastInterval after the control plane is back; then
// after FastWindow of failures the backoff grows again.
func TestOutageTenSecondsBackWithinAFastInterval(t *testing.T) {
	for _, down := range []time.Duration{10 * time.Second, 10*time.Second + 333*time.Millisecond, 2 * time.Minute} {
		t.Run(down.String(), func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(0, 0)}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var lostAt, backAt time.Time
			attempt := 0
			l, err := NewLoop(LoopConfig{
				InitialInterval: 500 * time.Millisecond, MaxInterval: 30 * time.Second, Clock: clock,
				Dial: func(context.Context) (*Session, error) {
					attempt++
					switch {
					case attempt == 1:
						return &Session{}, nil
					case clock.Now().Before(lostAt.Add(down)):
						return nil, errors.New("connection refused")
					}
					backAt = clock.Now()
					cancel()
					return nil, ctx.Err()
				},
				Serve: func(context.Context, *Session) error {
					clock.advance(2 * time.Minute)
					lostAt = clock.Now()
					return errors.New("connection reset")
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			l.closeSession = func(*Session) {}
			_ = l.Run(ctx)
			w := clock.recorded()
			late := backAt.Sub(lostAt.Add(down))
			if down <= 30*time.Second {
				for i, d := range w {
					if d < 500*time.Millisecond || d > time.Second {
						t.Fatalf("wait %d = %v during a young outage, want within [0.5s, 1s]: %v", i, d, w)
					}
				}
				if late > time.Second {
					t.Errorf("reconnected %v after the control plane was back, want at most 1s", late)
				}
				return
			}
			if last := w[len(w)-1]; last <= time.Second {
				t.Errorf("after a 2-minute outage the wait is still %v; want the backoff to have grown: %v", last, w)
			}
		})
	}
}

// TestRetryAfterIsHonoured: a 503 with Retry-After waits at least that
// long, and at most a second more, never past the cap.
func TestRetryAfterIsHonoured(t *testing.T) {
	cfg := LoopConfig{InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second}
	clock, _ := runLoop(t, cfg, 20, func(i int) error {
		return &UnavailableError{RetryAfter: time.Duration(1+i%8) * time.Second, Message: "busy"}
	})
	for i, w := range clock.recorded() {
		ra := time.Duration(1+(i+1)%8) * time.Second
		if w < min(ra, cfg.MaxInterval) || w > min(ra+time.Second, cfg.MaxInterval) {
			t.Fatalf("wait %d = %v for Retry-After %v, want within [%v, %v] capped at %v", i, w, ra, ra, ra+time.Second, cfg.MaxInterval)
		}
	}
}

// TestFlappingSessionsBackOff: sessions that end at once do not open a
// window of fast retries, so a control plane that drops agents right away
// sees them back off.
func TestFlappingSessionsBackOff(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	attempt := 0
	l, err := NewLoop(LoopConfig{
		InitialInterval: 100 * time.Millisecond, MaxInterval: 10 * time.Second, Clock: clock,
		Dial: func(context.Context) (*Session, error) {
			attempt++
			switch {
			case attempt == 1: // past the start's window
				clock.advance(time.Minute)
				return nil, errors.New("down")
			case attempt <= 8:
				return &Session{}, nil
			}
			cancel()
			return nil, ctx.Err()
		},
		Serve: func(context.Context, *Session) error { clock.advance(time.Second); return errors.New("dropped") },
	})
	if err != nil {
		t.Fatal(err)
	}
	l.closeSession = func(*Session) {}
	_ = l.Run(ctx)
	w := clock.recorded()
	if last := w[len(w)-1]; last < 2*time.Second {
		t.Fatalf("flapping sessions: last wait %v, want a grown backoff: %v", last, w)
	}
}

// TestStatusErrorSaysWhatIsWrong: a 404 to the upgrade names the path tried
// and suggests the likely mistake; other statuses carry the server's
// message, with no empty gap when it sent none.
func TestStatusErrorSaysWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		err  *StatusError
		want string
	}{
		{&StatusError{Code: 404, Path: "/login/api/v2/workspaceagents/connect", Err: errors.New("bad status")},
			"HTTP 404: no agent endpoint at /login/api/v2/workspaceagents/connect; is the URL the control plane's base address?"},
		{&StatusError{Code: 502, Err: errors.New("bad status")}, "HTTP 502: bad status"},
		{&StatusError{Code: 500, Message: "internal server error", Err: errors.New("x")}, "HTTP 500: internal server error"},
	} {
		if got := tc.err.Error(); !strings.HasSuffix(got, tc.want) {
			t.Errorf("Error() = %q, want it to end with %q", got, tc.want)
		}
	}
}
