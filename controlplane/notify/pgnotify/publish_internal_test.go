package pgnotify

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// TestPublishDoesNotWaitForFlush: the publishing connections commit their
// pg_notify transactions without waiting for the WAL flush (a hint needs
// no durability; the change it names is already durable), while the URL's
// own setting is left alone for everything else.
func TestPublishDoesNotWaitForFlush(t *testing.T) {
	n, err := New(Config{URL: pgtest.ServerURL(t), Channel: DefaultChannel, PingInterval: 1, MinBackoff: 1, MaxBackoff: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	for range 3 { // every connection of the pool, not only the first
		var v string
		if err := n.pool.QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "off" {
			t.Fatalf("synchronous_commit on a publishing connection = %q, want off", v)
		}
	}
	if err := n.Publish(t.Context(), "00000000-0000-0000-0000-000000000000"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// TestConcurrentPublishesShareStatements: publishes made while another is
// being sent join one batch, and every user published is heard, once per
// batch it was in.
func TestConcurrentPublishesShareStatements(t *testing.T) {
	url := pgtest.ServerURL(t)
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Channel = "courier_test_batch_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	ctx := t.Context()
	listen, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.Close(context.Background())
	if _, err := listen.Exec(ctx, "LISTEN "+pgx.Identifier{cfg.Channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	// Hold the send slot, so the publishes below all queue behind it.
	n.sendSem <- struct{}{}
	const users = 50
	errs := make(chan error, users)
	for i := range users {
		go func() { errs <- n.Publish(ctx, fmt.Sprintf("user-%02d", i)) }()
	}
	// Wait until all have joined one batch.
	for {
		n.pubMu.Lock()
		joined := 0
		if n.pending != nil {
			joined = len(n.pending.users)
		}
		n.pubMu.Unlock()
		if joined == users {
			break
		}
		time.Sleep(time.Millisecond)
	}
	<-n.sendSem
	for range users {
		if err := <-errs; err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	heard := map[string]bool{}
	for len(heard) < users {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		msg, err := listen.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("heard %d of %d users: %v", len(heard), users, err)
		}
		heard[msg.Payload] = true
	}
	for i := range users {
		if u := fmt.Sprintf("user-%02d", i); !heard[u] {
			t.Errorf("%s not heard", u)
		}
	}
}
