package pgnotify

import (
	"testing"

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
