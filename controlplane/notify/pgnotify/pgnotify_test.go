package pgnotify_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/notify/notifytest"
	"github.com/courierhq/courier/controlplane/notify/pgnotify"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds one expected delivery; generous for a loaded CI machine.
const wait = 30 * time.Second

// start returns a running Notifier on a channel and application name of
// its own, closed at the end of the test.
func start(t *testing.T, url string) (*pgnotify.Notifier, pgnotify.Config) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	cfg := pgnotify.DefaultConfig()
	cfg.URL = url
	cfg.Channel = "courier_test_" + hex.EncodeToString(b)
	cfg.ApplicationName = cfg.Channel
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	// Pings between waits all through the tests: a ping that broke the
	// connection would show as an unexpected Resync.
	cfg.PingInterval = 20 * time.Millisecond
	n, err := pgnotify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = n.Close()
		// A test that closed n before Run started gets ErrClosed.
		if err := <-done; err != nil && !errors.Is(err, notify.ErrClosed) {
			t.Errorf("Run: %v", err)
		}
	})
	return n, cfg
}

func TestConformance(t *testing.T) {
	url := pgtest.ServerURL(t)
	notifytest.Run(t, func(t *testing.T) notify.Notifier {
		n, _ := start(t, url)
		return n
	})
}

// next reads one batch within the deadline.
func next(t *testing.T, s notify.Subscription) notify.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	b, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("waiting for a batch: %v", err)
	}
	return b
}

// TestCrossProcess: two Notifiers on one channel stand for two replicas: a
// publish on one reaches the other's subscription, naming the user.
func TestCrossProcess(t *testing.T) {
	url := pgtest.ServerURL(t)
	a, cfg := start(t, url)
	cfg.ApplicationName += "_b"
	b, err := pgnotify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sub := a.Subscribe()
	defer sub.Close()
	if first := next(t, sub); !first.Resync {
		t.Fatalf("first batch %+v: the first LISTEN must resync", first)
	}
	if err := b.Publish(t.Context(), "user-x"); err != nil {
		t.Fatal(err)
	}
	if got := next(t, sub); got.Resync || !slices.Equal(got.Users, []string{"user-x"}) {
		t.Fatalf("batch %+v, want user-x alone", got)
	}
}

// TestSilentConnectionIsPinged: after PingInterval of silence the
// listening connection is pinged (pg_stat_activity shows the ping as its
// last query), the ping does not cost a Resync, and publishes still
// arrive.
func TestSilentConnectionIsPinged(t *testing.T) {
	url := pgtest.ServerURL(t)
	n, cfg := start(t, url)
	sub := n.Subscribe()
	defer sub.Close()
	if first := next(t, sub); !first.Resync {
		t.Fatalf("first batch %+v: the first LISTEN must resync", first)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(wait)
	for {
		var q string
		err := conn.QueryRow(t.Context(), `SELECT query FROM pg_stat_activity WHERE application_name = $1`, cfg.ApplicationName).Scan(&q)
		if err == nil && q == "-- ping" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listening connection was never pinged (last query %q, %v)", q, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := n.Publish(t.Context(), "user-z"); err != nil {
		t.Fatal(err)
	}
	if got := next(t, sub); got.Resync || !slices.Equal(got.Users, []string{"user-z"}) {
		t.Fatalf("batch %+v after pings, want user-z alone and no Resync", got)
	}
}

// TestResyncAfterLostConnection: the server ends the listening connection
// (pg_terminate_backend); the Notifier reconnects and every subscription
// gets a Resync, and then hears publishes again.
func TestResyncAfterLostConnection(t *testing.T) {
	url := pgtest.ServerURL(t)
	n, cfg := start(t, url)
	sub := n.Subscribe()
	defer sub.Close()
	if first := next(t, sub); !first.Resync {
		t.Fatalf("first batch %+v: the first LISTEN must resync", first)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var killed int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT pg_terminate_backend(pid)
		FROM pg_stat_activity WHERE application_name = $1) k`, cfg.ApplicationName).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listening connections, want 1", killed)
	}
	if got := next(t, sub); !got.Resync {
		t.Fatalf("batch after the connection was killed: %+v, want a Resync", got)
	}
	if err := n.Publish(t.Context(), "user-y"); err != nil {
		t.Fatal(err)
	}
	got := next(t, sub)
	for !got.Resync && !slices.Contains(got.Users, "user-y") {
		got = next(t, sub)
	}
	if !slices.Contains(got.Users, "user-y") && !got.Resync {
		t.Fatalf("batch %+v after reconnect does not name user-y", got)
	}
}

// TestConfig: bad configs are refused before any connection, and the
// error never echoes the URL (it may hold a password).
func TestConfig(t *testing.T) {
	for name, mut := range map[string]func(*pgnotify.Config){
		"no url":     func(c *pgnotify.Config) { c.URL = "" },
		"no channel": func(c *pgnotify.Config) { c.Channel = "" },
		"long":       func(c *pgnotify.Config) { c.Channel = string(make([]byte, 64)) },
		"backoff":    func(c *pgnotify.Config) { c.MinBackoff = 0 },
		"bad url":    func(c *pgnotify.Config) { c.URL = "postgres://u:CANARY-pw@[::1" },
		"max < min":  func(c *pgnotify.Config) { c.MaxBackoff = time.Millisecond },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := pgnotify.DefaultConfig()
			cfg.URL = "postgres://u:CANARY-pw@127.0.0.1:1/db"
			mut(&cfg)
			n, err := pgnotify.New(cfg)
			if err == nil {
				_ = n.Close()
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "CANARY") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

// TestRunTwice: a second Run is refused; Run after Close too.
func TestRunTwice(t *testing.T) {
	url := pgtest.ServerURL(t)
	n, _ := start(t, url)
	sub := n.Subscribe()
	defer sub.Close()
	next(t, sub) // Run is listening
	if err := n.Run(t.Context()); !errors.Is(err, pgnotify.ErrRunning) {
		t.Fatalf("second Run: %v, want ErrRunning", err)
	}
}

// TestPoolParametersInTheURL: a URL carrying the pool's own parameters
// (pool_max_conns, documented in the README) still listens: they are the
// pool's, never sent to PostgreSQL as settings it would refuse.
func TestPoolParametersInTheURL(t *testing.T) {
	base := pgtest.ServerURL(t)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	n, _ := start(t, base+sep+"pool_max_conns=8&pool_min_conns=1")
	sub := n.Subscribe()
	defer sub.Close()
	if first := next(t, sub); !first.Resync {
		t.Fatalf("first batch %+v: want the LISTEN's resync", first)
	}
	if err := n.Publish(t.Context(), "user-p"); err != nil {
		t.Fatal(err)
	}
	if got := next(t, sub); !slices.Contains(got.Users, "user-p") {
		t.Fatalf("batch %+v, want user-p", got)
	}
}
